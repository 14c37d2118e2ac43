/**
 * A small JSONata-like expression language for `transform.map`, parsed and evaluated here (never `eval`): paths
 * (`input.lead.score`, `steps.fetch.body.items[0]`), literals, `+ - * / %`, `&` (string join), comparisons, `and`,
 * `or`, `not`, `cond ? a : b`, and the functions in FUNCTIONS (`workflow-expression.functions.ts`). Only own properties of plain
 * data are reachable.
 */
import { FUNCTIONS, text } from './workflow-expression.functions';

export class ExpressionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExpressionError';
  }
}

type Node =
  | { type: 'literal'; value: unknown }
  | { type: 'path'; root: string; steps: Array<string | Node> }
  | { type: 'call'; name: string; args: Node[] }
  | { type: 'unary'; op: string; operand: Node }
  | { type: 'binary'; op: string; left: Node; right: Node }
  | { type: 'conditional'; test: Node; then: Node; otherwise: Node };

interface Token {
  kind: 'number' | 'string' | 'name' | 'function' | 'op' | 'end';
  value: string;
  at: number;
}

const MAX_LENGTH = 2000;
const MAX_DEPTH = 32;
const FORBIDDEN_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const char = source[i]!;
    if (/\s/.test(char)) {
      i++;
      continue;
    }
    const start = i;
    if (/[0-9]/.test(char)) {
      while (i < source.length && /[0-9.]/.test(source[i]!)) i++;
      tokens.push({ kind: 'number', value: source.slice(start, i), at: start });
    } else if (char === '"' || char === "'") {
      i++;
      let text = '';
      while (i < source.length && source[i] !== char) {
        if (source[i] === '\\' && i + 1 < source.length) i++;
        text += source[i++];
      }
      if (i >= source.length) throw new ExpressionError(`unterminated string at ${start}`);
      i++;
      tokens.push({ kind: 'string', value: text, at: start });
    } else if (/[A-Za-z_$]/.test(char)) {
      i++;
      while (i < source.length && /[A-Za-z0-9_]/.test(source[i]!)) i++;
      const word = source.slice(start, i);
      tokens.push({ kind: word.startsWith('$') ? 'function' : 'name', value: word, at: start });
    } else {
      const two = source.slice(i, i + 2);
      if (['!=', '<=', '>='].includes(two)) {
        tokens.push({ kind: 'op', value: two, at: start });
        i += 2;
      } else if ('+-*/%&=<>?:().,[]'.includes(char)) {
        tokens.push({ kind: 'op', value: char, at: start });
        i++;
      } else throw new ExpressionError(`unexpected "${char}" at ${start}`);
    }
  }
  tokens.push({ kind: 'end', value: '', at: source.length });
  return tokens;
}

const PRECEDENCE: Record<string, number> = {
  or: 1,
  and: 2,
  '=': 3,
  '!=': 3,
  '<': 4,
  '<=': 4,
  '>': 4,
  '>=': 4,
  '&': 5,
  '+': 6,
  '-': 6,
  '*': 7,
  '/': 7,
  '%': 7,
};

class Parser {
  private position = 0;
  private depth = 0;

  constructor(private readonly tokens: Token[]) {}

  parse(): Node {
    const node = this.expression();
    const next = this.peek();
    if (next.kind !== 'end') throw new ExpressionError(`unexpected "${next.value}" at ${next.at}`);
    return node;
  }

  private peek(): Token {
    return this.tokens[this.position]!;
  }

  private take(): Token {
    return this.tokens[this.position++]!;
  }

  private expect(value: string): void {
    const token = this.take();
    if (token.value !== value) throw new ExpressionError(`expected "${value}" at ${token.at}`);
  }

  private expression(): Node {
    if (++this.depth > MAX_DEPTH) throw new ExpressionError(`nests deeper than ${MAX_DEPTH}`);
    const test = this.binary(0);
    let node = test;
    if (this.peek().value === '?') {
      this.take();
      const then = this.expression();
      this.expect(':');
      node = { type: 'conditional', test, then, otherwise: this.expression() };
    }
    this.depth--;
    return node;
  }

  private binary(minimum: number): Node {
    let left = this.unary();
    for (;;) {
      const token = this.peek();
      const precedence = (token.kind === 'op' || token.kind === 'name') && PRECEDENCE[token.value];
      if (!precedence || precedence <= minimum) return left;
      this.take();
      left = { type: 'binary', op: token.value, left, right: this.binary(precedence) };
    }
  }

  private unary(): Node {
    const token = this.peek();
    if (token.value === '-' || (token.kind === 'name' && token.value === 'not')) {
      this.take();
      return { type: 'unary', op: token.value, operand: this.unary() };
    }
    return this.primary();
  }

  private primary(): Node {
    const token = this.take();
    if (token.kind === 'number') {
      const value = Number(token.value);
      if (!Number.isFinite(value)) throw new ExpressionError(`bad number "${token.value}" at ${token.at}`);
      return { type: 'literal', value };
    }
    if (token.kind === 'string') return { type: 'literal', value: token.value };
    if (token.value === '(') {
      const inner = this.expression();
      this.expect(')');
      return inner;
    }
    if (token.kind === 'function') {
      if (!Object.hasOwn(FUNCTIONS, token.value))
        throw new ExpressionError(
          `unknown function ${token.value} (known: ${Object.keys(FUNCTIONS).join(', ')})`,
        );
      this.expect('(');
      const args: Node[] = [];
      if (this.peek().value !== ')') {
        do args.push(this.expression());
        while (this.peek().value === ',' && this.take());
      }
      this.expect(')');
      return { type: 'call', name: token.value, args };
    }
    if (token.kind === 'name') {
      if (token.value === 'true' || token.value === 'false')
        return { type: 'literal', value: token.value === 'true' };
      if (token.value === 'null') return { type: 'literal', value: null };
      const steps: Array<string | Node> = [];
      for (;;) {
        const next = this.peek();
        if (next.value === '.') {
          this.take();
          const name = this.take();
          if (name.kind !== 'name') throw new ExpressionError(`expected a field name at ${name.at}`);
          steps.push(name.value);
        } else if (next.value === '[') {
          this.take();
          steps.push(this.expression());
          this.expect(']');
        } else break;
      }
      return { type: 'path', root: token.value, steps };
    }
    throw new ExpressionError(
      token.kind === 'end' ? 'ends too early' : `unexpected "${token.value}" at ${token.at}`,
    );
  }
}

function member(container: unknown, key: unknown): unknown {
  if (container === null || typeof container !== 'object') return undefined;
  if (Array.isArray(container)) {
    if (typeof key !== 'number' || !Number.isInteger(key)) return undefined;
    return container[key < 0 ? container.length + key : key];
  }
  const name = String(key);
  if (FORBIDDEN_KEYS.has(name) || !Object.hasOwn(container, name)) return undefined;
  return (container as Record<string, unknown>)[name];
}

function evaluate(node: Node, scope: Record<string, unknown>): unknown {
  switch (node.type) {
    case 'literal':
      return node.value;
    case 'path': {
      let value = member(scope, node.root);
      for (const step of node.steps)
        value = member(value, typeof step === 'string' ? step : evaluate(step, scope));
      return value === undefined ? null : value;
    }
    case 'call':
      return FUNCTIONS[node.name]!(...node.args.map((arg) => evaluate(arg, scope)));
    case 'unary': {
      const operand = evaluate(node.operand, scope);
      return node.op === '-' ? -Number(operand) : !operand;
    }
    case 'conditional':
      return evaluate(node.test, scope) ? evaluate(node.then, scope) : evaluate(node.otherwise, scope);
    case 'binary': {
      if (node.op === 'and')
        return Boolean(evaluate(node.left, scope)) && Boolean(evaluate(node.right, scope));
      if (node.op === 'or')
        return Boolean(evaluate(node.left, scope)) || Boolean(evaluate(node.right, scope));
      const left = evaluate(node.left, scope);
      const right = evaluate(node.right, scope);
      switch (node.op) {
        case '&':
          return text(left) + text(right);
        case '=':
          return left === right;
        case '!=':
          return left !== right;
        case '<':
          return (left as number) < (right as number);
        case '<=':
          return (left as number) <= (right as number);
        case '>':
          return (left as number) > (right as number);
        case '>=':
          return (left as number) >= (right as number);
      }
      const a = Number(left);
      const b = Number(right);
      const result =
        node.op === '+'
          ? a + b
          : node.op === '-'
            ? a - b
            : node.op === '*'
              ? a * b
              : node.op === '/'
                ? a / b
                : a % b;
      return Number.isFinite(result) ? result : null;
    }
  }
}

/** Parses an expression once (throws ExpressionError saying where it is wrong). */
export function compileExpression(source: string): (scope: Record<string, unknown>) => unknown {
  if (source.length > MAX_LENGTH) throw new ExpressionError(`is longer than ${MAX_LENGTH} characters`);
  const tree = new Parser(tokenize(source)).parse();
  return (scope) => evaluate(tree, scope);
}

/**
 * The step outputs an expression reads: `steps.fetch.body` names `fetch`; `steps[input.which]` is `computed` (which
 * step it reads is known only when it runs). A bare `steps` names none.
 */
export interface StepReferences {
  named: Set<string>;
  computed: boolean;
}

function collectStepReferences(tree: Node, into: StepReferences): void {
  const pending: Node[] = [tree];
  for (let node = pending.pop(); node; node = pending.pop()) {
    switch (node.type) {
      case 'path': {
        const [first] = node.steps;
        if (node.root === 'steps' && first !== undefined) {
          if (typeof first === 'string') into.named.add(first);
          else if (first.type === 'literal' && typeof first.value === 'string') into.named.add(first.value);
          else into.computed = true;
        }
        for (const step of node.steps) if (typeof step !== 'string') pending.push(step);
        break;
      }
      case 'call':
        pending.push(...node.args);
        break;
      case 'unary':
        pending.push(node.operand);
        break;
      case 'binary':
        pending.push(node.left, node.right);
        break;
      case 'conditional':
        pending.push(node.test, node.then, node.otherwise);
        break;
      case 'literal':
        break;
    }
  }
}

/** Every step output the expressions of a mapping read (throws ExpressionError as compileMapping would). */
export function stepReferences(mapping: Mapping): StepReferences {
  const references: StepReferences = { named: new Set(), computed: false };
  const pending: Mapping[] = [mapping];
  for (let value = pending.pop(); value !== undefined; value = pending.pop()) {
    if (typeof value === 'string') {
      if (value.length > MAX_LENGTH) throw new ExpressionError(`is longer than ${MAX_LENGTH} characters`);
      collectStepReferences(new Parser(tokenize(value)).parse(), references);
    } else if (Array.isArray(value)) pending.push(...value);
    else if (value && typeof value === 'object') pending.push(...Object.values(value));
  }
  return references;
}

/** A mapping: an object (or array) whose string leaves are expressions; other leaves are kept as they are. */
export type Mapping = string | number | boolean | null | Mapping[] | { [key: string]: Mapping };

/** Compiles every expression of a mapping, so errors surface before anything runs. */
export function compileMapping(
  mapping: Mapping,
  path = 'mapping',
): (scope: Record<string, unknown>) => unknown {
  if (typeof mapping === 'string') {
    try {
      return compileExpression(mapping);
    } catch (error) {
      throw new ExpressionError(`${path} ${(error as Error).message}`);
    }
  }
  if (Array.isArray(mapping)) {
    const items = mapping.map((item, i) => compileMapping(item, `${path}[${i}]`));
    return (scope) => items.map((item) => item(scope));
  }
  if (mapping && typeof mapping === 'object') {
    const entries = Object.entries(mapping).map(([key, value]) => {
      if (FORBIDDEN_KEYS.has(key)) throw new ExpressionError(`${path} may not set "${key}"`);
      return [key, compileMapping(value, `${path}.${key}`)] as const;
    });
    return (scope) => Object.fromEntries(entries.map(([key, value]) => [key, value(scope)]));
  }
  return () => mapping;
}
