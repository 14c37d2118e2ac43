import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  GraphQLError,
  isInputObjectType,
  isListType,
  isNonNullType,
  isScalarType,
  Kind,
  Lexer,
  NoSchemaIntrospectionCustomRule,
  parse,
  Source,
  TokenKind,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  type ASTVisitor,
  type DocumentNode,
  type GraphQLInputType,
  type GraphQLSchema,
  type ParseOptions,
  type ValidationContext,
  type ValidationRule,
  type ValueNode,
} from 'graphql';
import { fieldExtensionsEstimator, getComplexity, simpleEstimator } from 'graphql-query-complexity';
import { ErrorCode, ValidationError } from '../platform/errors/app-error';

export interface OperationLimits {
  /** Deepest selection nesting allowed outside `__schema` (leaves count; fragments add no level). Default 10. */
  maxDepth: number;
  /**
   * Deepest nesting allowed for a whole operation, introspection included. The introspection query graphql-js,
   * Sandbox and codegen send is 15 deep. Default 20.
   */
  maxIntrospectionDepth: number;
  /** Aliased fields allowed per operation, counted through fragments. Default 15. */
  maxAliases: number;
  /** Directives allowed per operation, counted through fragments. Default 50. */
  maxDirectives: number;
  /** Lexical tokens allowed in one document; parsing stops at the first token over. Default 5000. */
  maxTokens: number;
  /** Fragment definitions allowed in one document. Default 100. */
  maxFragments: number;
  /** Complexity budget per operation (type-graphql `complexity` on fields; lists multiply by page size). */
  maxComplexity: number;
  /** Largest `pageSize`/`first` any argument may ask for. Default 200. */
  maxPageSize: number;
  /**
   * Deepest nesting of one argument's value (input objects, lists and JSON values, literal or variable; the argument
   * itself is level 0). Default 32.
   */
  maxInputDepth: number;
  /** Values (objects, lists, strings, numbers, booleans, nulls) one argument's JSON-scalar values may hold. Default 100,000. */
  maxJsonValues: number;
}

/**
 * Bracket nesting a document may have before it is parsed: graphql-js's parser recurses per level and overflows the
 * stack a few thousand levels down. Far above any depth the validation rules allow, so they still word the refusal.
 */
const MAX_DOCUMENT_NESTING = 128;
/** The scalars whose values are free-form JSON (graphql-scalars' JSON and JSONObject). */
const JSON_SCALARS = new Set(['JSON', 'JSONObject']);

/**
 * Field selections the complexity estimate may visit for one operation. It follows fragment spreads afresh each time
 * (graphql-query-complexity has no memo), so this bound is what keeps a fan-out of fragments linear.
 */
const MAX_COMPLEXITY_NODES = 10_000;
const PAGE_ARGUMENTS = new Set(['pageSize', 'first', 'limit']);

/** The codes of the operation limits (this layer's own, beside platform's shared ones). */
export const LimitErrorCode = {
  QUERY_TOO_DEEP: 'QUERY_TOO_DEEP',
  TOO_MANY_ALIASES: 'TOO_MANY_ALIASES',
  TOO_MANY_DIRECTIVES: 'TOO_MANY_DIRECTIVES',
  QUERY_TOO_LARGE: 'QUERY_TOO_LARGE',
  QUERY_TOO_COMPLEX: 'QUERY_TOO_COMPLEX',
  PAGE_SIZE_TOO_LARGE: 'PAGE_SIZE_TOO_LARGE',
} as const;

function limitError(code: string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status: 400 } } });
}

/** Options for graphql-js `parse` (Apollo's `parseOptions`): the token cap stops a huge document before any rule. */
export function createParseOptions(limits: OperationLimits): ParseOptions {
  return { maxTokens: limits.maxTokens };
}

/**
 * A document whose brackets nest deeper than the parser can safely recurse, found by a flat pass of graphql-js's own
 * lexer (no recursion; stops at the token cap, which `parse` then reports).
 */
export function documentNestingError(query: string, limits: OperationLimits): GraphQLError | undefined {
  const lexer = new Lexer(new Source(query));
  let nesting = 0;
  try {
    for (let tokens = 0; tokens <= limits.maxTokens; tokens++) {
      const token = lexer.advance();
      if (token.kind === TokenKind.EOF) return undefined;
      if (
        token.kind === TokenKind.BRACE_L ||
        token.kind === TokenKind.BRACKET_L ||
        token.kind === TokenKind.PAREN_L
      ) {
        if (++nesting > MAX_DOCUMENT_NESTING)
          return limitError(
            LimitErrorCode.QUERY_TOO_DEEP,
            `Query document nests brackets more than ${MAX_DOCUMENT_NESTING} levels deep`,
          );
      } else if (
        token.kind === TokenKind.BRACE_R ||
        token.kind === TokenKind.BRACKET_R ||
        token.kind === TokenKind.PAREN_R
      ) {
        nesting--;
      }
    }
  } catch {
    return undefined; // a syntax error: parse words it
  }
  return undefined;
}

/**
 * graphql-js `parse` with the document limits every transport applies before any rule walks the document: the
 * bracket nesting the parser can take, then the token cap. Throws the GraphQLError to answer.
 */
export function parseDocument(query: string, limits: OperationLimits): DocumentNode {
  const tooDeep = documentNestingError(query, limits);
  if (tooDeep) throw tooDeep;
  return parse(query, createParseOptions(limits));
}

/** graphql-armor's visitors report through callbacks; the gateway reports its own codes and wording. */
function reportAs(code: string, describe: (found: string) => string) {
  return {
    exposeLimits: true,
    propagateOnRejection: false,
    onReject: [
      (context: ValidationContext | null, error: GraphQLError) => {
        const found = /found (\d+)/.exec(error.message)?.[1] ?? 'more';
        context?.reportError(limitError(code, describe(found)));
      },
    ],
  };
}

/**
 * Validation rules that need no variables: run by Apollo (`validationRules`) and by graphql-ws alike. Each runs in
 * time linear in the document: graphql-armor's visitors compute every fragment once and reuse the result per spread.
 */
export function createLimitRules(limits: OperationLimits): Array<(context: ValidationContext) => ASTVisitor> {
  const fragmentCount = (context: ValidationContext): ASTVisitor => {
    let fragments = 0;
    return {
      FragmentDefinition() {
        fragments++;
        if (fragments === limits.maxFragments + 1) {
          context.reportError(
            limitError(
              LimitErrorCode.QUERY_TOO_LARGE,
              `Query document defines more than ${limits.maxFragments} fragments`,
            ),
          );
        }
      },
    };
  };
  return [
    fragmentCount,
    maxDepthRule({
      n: limits.maxDepth,
      ignoreIntrospection: true,
      flattenFragments: true,
      ...reportAs(
        LimitErrorCode.QUERY_TOO_DEEP,
        (found) => `Query depth ${found} exceeds the limit of ${limits.maxDepth}`,
      ),
    }),
    maxDepthRule({
      n: limits.maxIntrospectionDepth,
      ignoreIntrospection: false,
      flattenFragments: true,
      ...reportAs(
        LimitErrorCode.QUERY_TOO_DEEP,
        (found) =>
          `Query depth ${found} (introspection included) exceeds the limit of ${limits.maxIntrospectionDepth}`,
      ),
    }),
    maxAliasesRule({
      n: limits.maxAliases,
      allowList: [],
      ...reportAs(
        LimitErrorCode.TOO_MANY_ALIASES,
        (found) => `Query uses ${found} aliases; the limit is ${limits.maxAliases}`,
      ),
    }),
    maxDirectivesRule({
      n: limits.maxDirectives,
      ...reportAs(
        LimitErrorCode.TOO_MANY_DIRECTIVES,
        (found) => `Query uses ${found} directives; the limit is ${limits.maxDirectives}`,
      ),
    }),
  ];
}

/**
 * The validation rules every transport runs besides graphql-js's `specifiedRules` (Apollo adds those itself; the fast
 * path and graphql-ws add them): the operation limits and, when introspection is off, no `__schema`/`__type`.
 */
export function createValidationRules(
  limits: OperationLimits,
  options: { introspection: boolean },
): ValidationRule[] {
  return [...createLimitRules(limits), ...(options.introspection ? [] : [NoSchemaIntrospectionCustomRule])];
}

/** One field argument of a document: where it is (`field.argument`), its declared type and its value. */
interface ArgumentSite {
  path: string;
  type: GraphQLInputType;
  value: ValueNode;
}

const argumentSitesBySchema = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, ArgumentSite[]>>();

/** The field arguments of a document with their types, found once per document (documents are cached parsed). */
function argumentSites(schema: GraphQLSchema, document: DocumentNode): ArgumentSite[] {
  let byDocument = argumentSitesBySchema.get(schema);
  if (!byDocument) argumentSitesBySchema.set(schema, (byDocument = new WeakMap()));
  let sites = byDocument.get(document);
  if (sites) return sites;
  const found: ArgumentSite[] = [];
  const typeInfo = new TypeInfo(schema);
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Argument(node) {
        const argument = typeInfo.getArgument();
        const field = typeInfo.getFieldDef();
        if (argument && field && !typeInfo.getDirective())
          found.push({ path: `${field.name}.${argument.name}`, type: argument.type, value: node.value });
      },
    }),
  );
  byDocument.set(document, (sites = found));
  return sites;
}

/** What a declared input type asks of the walk; worked out once per type (graphql-js's type guards are slow in dev). */
type InputShape =
  | { kind: 'leaf' }
  | { kind: 'json' }
  | { kind: 'list'; of: GraphQLInputType }
  | { kind: 'object'; fields: Record<string, GraphQLInputType> };

const shapes = new WeakMap<GraphQLInputType, InputShape>();

function shapeOf(declared: GraphQLInputType): InputShape {
  let shape = shapes.get(declared);
  if (shape) return shape;
  const type = isNonNullType(declared) ? declared.ofType : declared;
  if (isListType(type)) shape = { kind: 'list', of: type.ofType };
  else if (isInputObjectType(type))
    shape = {
      kind: 'object',
      fields: Object.fromEntries(Object.values(type.getFields()).map((field) => [field.name, field.type])),
    };
  else if (isScalarType(type) && JSON_SCALARS.has(type.name)) shape = { kind: 'json' };
  else shape = { kind: 'leaf' };
  shapes.set(declared, shape);
  return shape;
}

/**
 * A value still to look at: an AST literal or a variable's value, with its declared shape. Its path is built only
 * when a refusal names it (from `parent` and `key`), not for each of thousands of elements.
 */
interface PendingValue {
  value: unknown;
  literal: boolean;
  /** undefined inside a JSON value. */
  type: GraphQLInputType | undefined;
  depth: number;
  parent: PendingValue | undefined;
  key: string | number;
  /** The first JSON value on the way here (what a refusal about JSON names). */
  json: PendingValue | undefined;
}

function pathOf(item: PendingValue): string {
  const parts: string[] = [];
  for (let at: PendingValue | undefined = item; at; at = at.parent)
    parts.push(typeof at.key === 'number' ? `[${at.key}]` : at.parent ? `.${at.key}` : at.key);
  return parts.reverse().join('');
}

function rootOf(item: PendingValue): PendingValue {
  let at = item;
  while (at.parent) at = at.parent;
  return at;
}

function inputError(field: string, rule: string): GraphQLError {
  const violation = new ValidationError([{ field, rule }]);
  return new GraphQLError(violation.message, {
    originalError: violation,
    extensions: { code: ErrorCode.BAD_USER_INPUT, http: { status: 400 } },
  });
}

function pageError(path: string, limits: OperationLimits): GraphQLError {
  return limitError(LimitErrorCode.PAGE_SIZE_TOO_LARGE, `${path} must be at most ${limits.maxPageSize}`);
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** The items of a list and the entries of an object, literal or not. */
function listItems(value: unknown, literal: boolean): readonly unknown[] {
  return literal ? (value as { values: readonly ValueNode[] }).values : (value as unknown[]);
}
function objectEntries(value: unknown, literal: boolean): Array<readonly [string, unknown]> {
  return literal
    ? (value as { fields: ReadonlyArray<{ name: { value: string }; value: ValueNode }> }).fields.map(
        (field) => [field.name.value, field.value] as const,
      )
    : Object.entries(value as Record<string, unknown>);
}

/**
 * Walks one argument's value without recursion, with its declared type: page sizes over the limit, nesting deeper
 * than `maxInputDepth`, JSON values that hold more than `maxJsonValues` or a number JSON cannot carry. Plain scalars
 * are left to graphql-js; only what can nest is queued.
 */
function checkArgument(
  site: ArgumentSite,
  variables: Record<string, unknown>,
  limits: OperationLimits,
): GraphQLError | undefined {
  const pending: PendingValue[] = [
    {
      value: site.value,
      literal: true,
      type: site.type,
      depth: 0,
      parent: undefined,
      key: site.path,
      json: undefined,
    },
  ];
  let jsonValues = 0;
  while (pending.length > 0) {
    const item = pending.pop()!;
    let { value, literal } = item;
    if (literal && (value as ValueNode).kind === Kind.VARIABLE) {
      value = variables[(value as { name: { value: string } }).name.value];
      literal = false;
      if (value === undefined) continue;
    }
    if (item.depth > limits.maxInputDepth)
      return inputError(
        pathOf(item.json ?? rootOf(item)),
        `must not nest deeper than ${limits.maxInputDepth} levels`,
      );
    const node = literal ? (value as ValueNode) : undefined;
    const isList = node ? node.kind === Kind.LIST : Array.isArray(value);
    const isObject = node ? node.kind === Kind.OBJECT : isPlainObject(value);
    const shape: InputShape = item.type === undefined ? { kind: 'json' } : shapeOf(item.type);
    if (shape.kind === 'json') {
      const json = item.json ?? item;
      if (item.json === undefined) jsonValues++;
      const number = node
        ? node.kind === Kind.INT || node.kind === Kind.FLOAT
          ? Number(node.value)
          : undefined
        : value;
      if (typeof number === 'number' && !Number.isFinite(number))
        return inputError(pathOf(item), 'must be a finite number');
      if (!isList && !isObject) continue;
      const children: Array<readonly [string | number, unknown]> = isList
        ? listItems(value, literal).map((inner, index) => [index, inner] as const)
        : objectEntries(value, literal);
      // Counted as they are found, before they are queued: a huge list is refused without a huge queue.
      jsonValues += children.length;
      if (jsonValues > limits.maxJsonValues)
        return inputError(pathOf(json), `must hold at most ${limits.maxJsonValues} JSON values`);
      for (const [key, inner] of children) {
        const leaf = inner === null || typeof inner !== 'object';
        if (leaf && (typeof inner !== 'number' || Number.isFinite(inner))) continue; // nothing more to see
        pending.push({
          value: inner,
          literal,
          type: undefined,
          depth: item.depth + 1,
          parent: item,
          key,
          json,
        });
      }
    } else if (shape.kind === 'list') {
      if (!isList) {
        pending.push({ ...item, value, literal, type: shape.of }); // one value stands for a list of one
        continue;
      }
      const of = shapeOf(shape.of);
      // A list of plain scalars or enums (a vector, field names) holds nothing to walk: graphql-js checks each item.
      if (of.kind === 'leaf') continue;
      listItems(value, literal).forEach((inner, index) =>
        pending.push({
          value: inner,
          literal,
          type: shape.of,
          depth: item.depth + 1,
          parent: item,
          key: index,
          json: undefined,
        }),
      );
    } else if (shape.kind === 'object' && isObject) {
      for (const [key, inner] of objectEntries(value, literal)) {
        const type = shape.fields[key];
        if (!type) continue; // graphql-js refuses unknown fields
        if (PAGE_ARGUMENTS.has(key) && pageNumber(inner, literal, variables) > limits.maxPageSize)
          return pageError(`${pathOf(item)}.${key}`, limits);
        if (shapeOf(type).kind === 'leaf') continue;
        pending.push({
          value: inner,
          literal,
          type,
          depth: item.depth + 1,
          parent: item,
          key,
          json: undefined,
        });
      }
    }
  }
  return undefined;
}

/** A page-size value as a number (a literal, a variable, or a variable's value); NaN when it is none. */
function pageNumber(value: unknown, literal: boolean, variables: Record<string, unknown>): number {
  if (!literal) return typeof value === 'number' ? value : NaN;
  const node = value as ValueNode;
  if (node.kind === Kind.INT || node.kind === Kind.FLOAT) return Number(node.value);
  if (node.kind === Kind.VARIABLE) {
    const inner = variables[node.name.value];
    return typeof inner === 'number' ? inner : NaN;
  }
  return NaN;
}

/**
 * Checks that need the variables (page sizes, complexity). Returns the errors; empty means the operation may run.
 * Called by Apollo after the operation is resolved and by graphql-ws before execution.
 */
export function checkVariableLimits(options: {
  schema: GraphQLSchema;
  document: DocumentNode;
  variables: Record<string, unknown> | null | undefined;
  operationName?: string | null;
  limits: OperationLimits;
}): GraphQLError[] {
  const variables = options.variables ?? {};
  const { limits } = options;
  const errors: GraphQLError[] = [];

  for (const site of argumentSites(options.schema, options.document)) {
    const argumentName = site.path.slice(site.path.lastIndexOf('.') + 1);
    const refused =
      PAGE_ARGUMENTS.has(argumentName) && pageNumber(site.value, true, variables) > limits.maxPageSize
        ? pageError(site.path, limits)
        : checkArgument(site, variables, limits);
    if (refused) return [refused];
  }

  try {
    const complexity = getComplexity({
      schema: options.schema,
      query: options.document,
      variables,
      operationName: options.operationName ?? undefined,
      estimators: [fieldExtensionsEstimator(), simpleEstimator({ defaultComplexity: 1 })],
      maxQueryNodes: MAX_COMPLEXITY_NODES,
    });
    if (complexity > limits.maxComplexity) {
      errors.push(
        limitError(
          LimitErrorCode.QUERY_TOO_COMPLEX,
          `Query complexity ${complexity} exceeds the budget of ${limits.maxComplexity}; ask for fewer fields or smaller pages`,
        ),
      );
    }
  } catch (error) {
    const tooManyNodes = /maximum allowed number of nodes/.test((error as Error).message);
    errors.push(
      tooManyNodes
        ? limitError(
            LimitErrorCode.QUERY_TOO_COMPLEX,
            `Query selects more than ${MAX_COMPLEXITY_NODES} fields once its fragments are expanded`,
          )
        : limitError(ErrorCode.BAD_USER_INPUT, (error as Error).message),
    );
  }
  return errors;
}
