import { GraphQLJSON } from 'graphql-scalars';
import { Field, InputType } from 'type-graphql';
import { ValidationError, type FieldViolation } from '../../platform/errors/app-error';
import { findField, fieldsFor, type FieldKind, type FieldSpec } from './field-catalog';
import { bindableValue, scalarProblem, SQL_CAST } from './field-values';
import { graphqlEnum, type EnumValue } from './graphql-enum';
import type { RecordType } from './record.enums';

export const FilterOperator = graphqlEnum(
  'FilterOperator',
  ['EQ', 'NE', 'IN', 'RANGE', 'GTE', 'LTE', 'PREFIX', 'IS_NULL'],
  'How a record filter compares: RANGE takes from/to (inclusive), IN takes values, IS_NULL takes value true or false',
);
export type FilterOperator = EnumValue<typeof FilterOperator>;

export const SortDirection = graphqlEnum('SortDirection', ['ASC', 'DESC']);
export type SortDirection = EnumValue<typeof SortDirection>;

/** One condition of the record filter language that search, reports and exports share (a conjunction of them). */
@InputType('RecordFilterInput', { description: 'A condition on an allow-listed field; filters are ANDed' })
export class RecordFilter {
  @Field(() => String)
  field!: string;

  @Field(() => FilterOperator)
  op!: FilterOperator;

  @Field(() => GraphQLJSON, {
    nullable: true,
    description: 'EQ NE GTE LTE PREFIX: a value; IS_NULL: true/false',
  })
  value?: unknown;

  @Field(() => [GraphQLJSON], { nullable: true, description: 'IN: 1 to 100 values' })
  values?: unknown[] | null;

  @Field(() => GraphQLJSON, { nullable: true, description: 'RANGE: lower bound (inclusive)' })
  from?: unknown;

  @Field(() => GraphQLJSON, { nullable: true, description: 'RANGE: upper bound (inclusive)' })
  to?: unknown;
}

@InputType('RecordSortInput', { description: 'An allow-listed sort field; id breaks ties' })
export class RecordSort {
  @Field(() => String)
  field!: string;

  @Field(() => SortDirection, { defaultValue: SortDirection.ASC })
  direction!: SortDirection;
}

const OPERATORS: Readonly<Record<FieldKind, readonly FilterOperator[]>> = {
  text: ['EQ', 'NE', 'IN', 'PREFIX', 'IS_NULL'],
  enum: ['EQ', 'NE', 'IN', 'IS_NULL'],
  uuid: ['EQ', 'NE', 'IN', 'IS_NULL'],
  int: ['EQ', 'NE', 'IN', 'RANGE', 'GTE', 'LTE', 'IS_NULL'],
  number: ['EQ', 'NE', 'IN', 'RANGE', 'GTE', 'LTE', 'IS_NULL'],
  money: ['EQ', 'NE', 'IN', 'RANGE', 'GTE', 'LTE', 'IS_NULL'],
  timestamp: ['RANGE', 'GTE', 'LTE', 'IS_NULL'],
  day: ['EQ', 'NE', 'RANGE', 'GTE', 'LTE', 'IS_NULL'],
};

const MAX_FILTERS = 20;
const MAX_IN_VALUES = 100;
const MAX_SORTS = 3;

/** Orders values of a kind, so a RANGE can be checked for from <= to. */
function ordinal(kind: FieldKind, value: unknown): number | string {
  if (kind === 'timestamp') return new Date(String(value)).getTime();
  if (kind === 'int' || kind === 'number' || kind === 'money') return Number(value);
  return String(value);
}

/** Checks filters against the field catalog; one ValidationError names every bad condition, before any SQL runs. */
export function validateFilters(
  recordType: RecordType,
  filters: readonly RecordFilter[],
  path = 'input.filters',
): void {
  const violations = filterViolations(recordType, filters, path);
  if (violations.length > 0) throw new ValidationError(violations);
}

/** What `validateFilters` would refuse, for callers that gather every problem of an input into one error. */
export function filterViolations(
  recordType: RecordType,
  filters: readonly RecordFilter[],
  path = 'input.filters',
): FieldViolation[] {
  const violations: FieldViolation[] = [];
  if (filters.length > MAX_FILTERS)
    violations.push({ field: path, rule: `must hold at most ${MAX_FILTERS} conditions` });
  filters.forEach((filter, index) => {
    const at = `${path}[${index}]`;
    const spec = findField(recordType, filter.field, 'filter');
    if (!spec) {
      violations.push({
        field: `${at}.field`,
        rule: `must be one of ${Object.keys(fieldsFor(recordType, 'filter')).join(', ')} for ${recordType}`,
      });
      return;
    }
    const problem = operandProblem(spec, filter);
    if (problem) violations.push({ field: `${at}.${problem.part}`, rule: problem.rule });
  });
  return violations;
}

function operandProblem(spec: FieldSpec, filter: RecordFilter): { part: string; rule: string } | undefined {
  if (!OPERATORS[spec.kind].includes(filter.op))
    return { part: 'op', rule: `must be one of ${OPERATORS[spec.kind].join(', ')} for ${spec.name}` };
  switch (filter.op) {
    case 'IN': {
      const list = filter.values;
      if (!Array.isArray(list) || list.length === 0 || list.length > MAX_IN_VALUES)
        return { part: 'values', rule: `must be a list of 1 to ${MAX_IN_VALUES} values for IN` };
      const problem = list.map((item) => scalarProblem(spec, item)).find(Boolean);
      return problem ? { part: 'values', rule: `each value ${problem}` } : undefined;
    }
    case 'RANGE': {
      if (filter.from == null && filter.to == null)
        return { part: 'from', rule: 'or to must be given for RANGE' };
      for (const part of ['from', 'to'] as const) {
        const problem = filter[part] == null ? undefined : scalarProblem(spec, filter[part]);
        if (problem) return { part, rule: problem };
      }
      if (
        filter.from != null &&
        filter.to != null &&
        ordinal(spec.kind, filter.from) > ordinal(spec.kind, filter.to)
      )
        return { part: 'from', rule: 'must not be greater than to' };
      return undefined;
    }
    case 'IS_NULL':
      return typeof filter.value === 'boolean'
        ? undefined
        : { part: 'value', rule: 'must be true or false for IS_NULL' };
    case 'PREFIX':
      return typeof filter.value === 'string' && filter.value.length > 0 && filter.value.length <= 200
        ? undefined
        : { part: 'value', rule: 'must be a string of 1 to 200 characters for PREFIX' };
    default: {
      const problem = scalarProblem(spec, filter.value);
      return problem ? { part: 'value', rule: problem } : undefined;
    }
  }
}

/** `LIKE` pattern for a literal prefix: `%`, `_` and the escape character match themselves. */
function likePrefix(prefix: string): string {
  return `${prefix.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * Compiles validated filters to one SQL condition over `alias` (columns from the catalog, every value bound through
 * `bind`, which returns a placeholder). An empty list is `true`.
 */
export function filtersToSql(
  recordType: RecordType,
  filters: readonly RecordFilter[],
  alias: string,
  bind: (value: unknown) => string,
): string {
  const parts = filters.map((filter) => {
    const spec = findField(recordType, filter.field, 'filter');
    if (!spec) throw new Error(`filter field ${filter.field} is not allowed for ${recordType}`);
    const column = `${alias}.${spec.column}`;
    const cast = SQL_CAST[spec.kind];
    const value = (raw: unknown) => `${bind(bindableValue(spec.kind, raw))}${cast}`;
    switch (filter.op) {
      case 'EQ':
        return `${column} = ${value(filter.value)}`;
      case 'NE':
        return `${column} IS DISTINCT FROM ${value(filter.value)}`;
      case 'IN':
        return `${column} = ANY(${bind((filter.values ?? []).map((v) => bindableValue(spec.kind, v)))}${cast}[])`;
      case 'GTE':
        return `${column} >= ${value(filter.value)}`;
      case 'LTE':
        return `${column} <= ${value(filter.value)}`;
      case 'RANGE':
        return [
          filter.from == null ? undefined : `${column} >= ${value(filter.from)}`,
          filter.to == null ? undefined : `${column} <= ${value(filter.to)}`,
        ]
          .filter(Boolean)
          .join(' AND ');
      case 'PREFIX':
        return `lower(${column}) LIKE ${bind(likePrefix(String(filter.value)))}`;
      case 'IS_NULL':
        return `${column} IS ${filter.value ? '' : 'NOT '}NULL`;
    }
  });
  return parts.length === 0 ? 'true' : `(${parts.join(' AND ')})`;
}

/** Checks a sort list (allow-listed fields, no repeats); returns the ORDER BY terms with id as the tie-breaker. */
export function sortToSql(
  recordType: RecordType,
  sort: readonly RecordSort[],
  alias: string,
  path = 'input.sort',
): string {
  const violations: FieldViolation[] = [];
  if (sort.length > MAX_SORTS)
    violations.push({ field: path, rule: `must hold at most ${MAX_SORTS} fields` });
  const seen = new Set<string>();
  const terms: string[] = [];
  sort.forEach((term, index) => {
    const spec = findField(recordType, term.field, 'sort');
    if (!spec) {
      violations.push({
        field: `${path}[${index}].field`,
        rule: `must be one of ${Object.keys(fieldsFor(recordType, 'sort')).join(', ')} for ${recordType}`,
      });
      return;
    }
    if (seen.has(spec.name)) violations.push({ field: `${path}[${index}].field`, rule: 'must not repeat' });
    seen.add(spec.name);
    terms.push(`${alias}.${spec.column} ${term.direction === 'DESC' ? 'DESC' : 'ASC'} NULLS LAST`);
  });
  if (violations.length > 0) throw new ValidationError(violations);
  const last = sort.at(-1)?.direction === 'DESC' ? 'DESC' : 'ASC';
  return [...terms, `${alias}.id ${last}`].join(', ');
}
