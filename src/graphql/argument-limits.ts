import {
  GraphQLError,
  isInputObjectType,
  isListType,
  isNonNullType,
  isScalarType,
  Kind,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  type DocumentNode,
  type GraphQLInputType,
  type GraphQLSchema,
  type ValueNode,
} from 'graphql';
import { ErrorCode, ValidationError } from '../platform/errors/app-error';
import { limitError, LimitErrorCode, type OperationLimits } from './operation-limits';

/** The scalars whose values are free-form JSON (graphql-scalars' JSON and JSONObject). */
const JSON_SCALARS = new Set(['JSON', 'JSONObject']);
const PAGE_ARGUMENTS = new Set(['pageSize', 'first', 'limit']);

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
  // Long by choice: one flat loop over a stack of pending values (no recursion, so no input can overflow the stack);
  // each value kind is a branch of the same loop sharing its counters, and would not stand alone.
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
 * The first argument of the document whose value breaks a limit (a page size over the maximum, nesting deeper than
 * `maxInputDepth`, JSON over `maxJsonValues` or not finite), with the request's variables; undefined when none does.
 */
export function checkArguments(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown>,
  limits: OperationLimits,
): GraphQLError | undefined {
  for (const site of argumentSites(schema, document)) {
    const argumentName = site.path.slice(site.path.lastIndexOf('.') + 1);
    const refused =
      PAGE_ARGUMENTS.has(argumentName) && pageNumber(site.value, true, variables) > limits.maxPageSize
        ? pageError(site.path, limits)
        : checkArgument(site, variables, limits);
    if (refused) return refused;
  }
  return undefined;
}
