import { ValidationError, type FieldViolation } from '../../platform/errors/app-error';
import {
  bindableValue,
  fieldsFor,
  RecordType,
  scalarProblem,
  SQL_CAST,
  type FieldKind,
  type FieldSpec,
} from '../kernel';

export const CriteriaOperator = {
  eq: 'eq',
  ne: 'ne',
  in: 'in',
  gt: 'gt',
  gte: 'gte',
  lt: 'lt',
  lte: 'lte',
  contains: 'contains',
} as const;
export type CriteriaOperator = (typeof CriteriaOperator)[keyof typeof CriteriaOperator];

export interface CriteriaCondition {
  field: string;
  operator: CriteriaOperator;
  value: unknown;
}

/** The only fields a criteria rule may name, per record type: those the field catalog marks for criteria. */
const CRITERIA_FIELDS: Readonly<Record<RecordType, Readonly<Record<string, FieldSpec>>>> = {
  LEAD: fieldsFor(RecordType.LEAD, 'criteria'),
  DEAL: fieldsFor(RecordType.DEAL, 'criteria'),
  ACCOUNT: fieldsFor(RecordType.ACCOUNT, 'criteria'),
};

const OPERATORS: Record<FieldKind, readonly CriteriaOperator[]> = {
  text: ['eq', 'ne', 'in', 'contains'],
  enum: ['eq', 'ne', 'in'],
  uuid: ['eq', 'ne', 'in'],
  int: ['eq', 'ne', 'in', 'gt', 'gte', 'lt', 'lte'],
  number: ['eq', 'ne', 'in', 'gt', 'gte', 'lt', 'lte'],
  money: ['eq', 'ne', 'in', 'gt', 'gte', 'lt', 'lte'],
  timestamp: ['eq', 'ne', 'gt', 'gte', 'lt', 'lte'],
  day: ['eq', 'ne', 'gt', 'gte', 'lt', 'lte'],
};

const MAX_CONDITIONS = 10;
const MAX_IN_VALUES = 100;
/** Checks a criteria list against the allow-list; throws one ValidationError naming every bad condition. */
export function validateCriteria(
  objectType: RecordType,
  conditions: readonly CriteriaCondition[],
  path = 'input.criteria',
): void {
  const violations: FieldViolation[] = [];
  if (conditions.length === 0) violations.push({ field: path, rule: 'must hold at least one condition' });
  if (conditions.length > MAX_CONDITIONS)
    violations.push({ field: path, rule: `must hold at most ${MAX_CONDITIONS} conditions` });
  const fields = CRITERIA_FIELDS[objectType];
  conditions.forEach((condition, index) => {
    const at = `${path}[${index}]`;
    const spec = Object.hasOwn(fields, condition.field) ? fields[condition.field] : undefined;
    if (!spec) {
      violations.push({
        field: `${at}.field`,
        rule: `must be one of ${Object.keys(fields).join(', ')} for ${objectType}`,
      });
      return;
    }
    if (!OPERATORS[spec.kind].includes(condition.operator)) {
      violations.push({
        field: `${at}.operator`,
        rule: `must be one of ${OPERATORS[spec.kind].join(', ')} for ${condition.field}`,
      });
      return;
    }
    if (condition.operator === 'in') {
      const list = condition.value;
      if (!Array.isArray(list) || list.length === 0 || list.length > MAX_IN_VALUES) {
        violations.push({
          field: `${at}.value`,
          rule: `must be a list of 1 to ${MAX_IN_VALUES} values for "in"`,
        });
        return;
      }
      const problem = list.map((item) => scalarProblem(spec, item)).find(Boolean);
      if (problem) violations.push({ field: `${at}.value`, rule: `each value ${problem}` });
      return;
    }
    if (
      condition.operator === 'contains' &&
      (typeof condition.value !== 'string' || condition.value.length === 0)
    ) {
      violations.push({ field: `${at}.value`, rule: 'must be a non-empty string for "contains"' });
      return;
    }
    const problem = scalarProblem(spec, condition.value);
    if (problem) violations.push({ field: `${at}.value`, rule: problem });
  });
  if (violations.length > 0) throw new ValidationError(violations);
}

const SQL_OPERATOR: Partial<Record<CriteriaOperator, string>> = { gt: '>', gte: '>=', lt: '<', lte: '<=' };

/**
 * Compiles a (validated) conjunction to SQL over `alias`. Columns come from the allow-list; every value is a bound
 * parameter named `${paramPrefix}${n}`.
 */
export function criteriaToSql(
  objectType: RecordType,
  conditions: readonly CriteriaCondition[],
  alias: string,
  paramPrefix: string,
  params: Record<string, unknown>,
): string {
  const fields = CRITERIA_FIELDS[objectType];
  const parts = conditions.map((condition) => {
    const spec = fields[condition.field];
    if (!spec) throw new Error(`criteria field ${condition.field} is not allowed for ${objectType}`);
    const name = `${paramPrefix}${Object.keys(params).length}`;
    params[name] = boundCondition(objectType, condition).value;
    return comparisonSql(spec, condition.operator, criteriaColumn(spec, alias), `:${name}`, `:${name}`);
  });
  return `(${parts.join(' AND ')})`;
}

/**
 * One condition's comparison of `column` with a value expression (`value` for a scalar, `list` for an IN list), the
 * only place the criteria operators become SQL: bound parameters and stored rules compare alike.
 */
function comparisonSql(
  spec: FieldSpec,
  operator: CriteriaOperator,
  column: string,
  value: string,
  list: string,
): string {
  const cast = SQL_CAST[spec.kind];
  switch (operator) {
    case 'eq':
      return `${column} = ${value}${cast}`;
    case 'ne':
      return `${column} IS DISTINCT FROM ${value}${cast}`;
    case 'in':
      return `${column} = ANY(${list}${cast}[])`;
    case 'contains':
      return `position(${value}::text in lower(${column})) > 0`;
    default:
      return `${column} ${SQL_OPERATOR[operator]} ${value}${cast}`;
  }
}

/** Instants compare at millisecond precision, as JavaScript Dates (criteriaMatch) do. */
function criteriaColumn(spec: FieldSpec, alias: string): string {
  return spec.kind === 'timestamp'
    ? `date_trunc('milliseconds', ${alias}.${spec.column})`
    : `${alias}.${spec.column}`;
}

/** A condition with its value as `criteriaToSql` binds it: instants in UTC, `contains` lower-cased, IN lists mapped. */
export function boundCondition(objectType: RecordType, condition: CriteriaCondition): CriteriaCondition {
  const spec = CRITERIA_FIELDS[objectType][condition.field];
  if (!spec) throw new Error(`criteria field ${condition.field} is not allowed for ${objectType}`);
  const bind = (value: unknown) => bindableValue(spec.kind, value);
  const value =
    condition.operator === 'in'
      ? (condition.value as unknown[]).map(bind)
      : condition.operator === 'contains'
        ? String(condition.value).toLowerCase()
        : bind(condition.value);
  return { field: condition.field, operator: condition.operator, value };
}

/**
 * SQL that is true when record `alias` meets `condition`, a jsonb expression holding a `boundCondition` (field,
 * operator, value): the same comparisons as `criteriaToSql`, for SQL that evaluates stored rules itself (report
 * rollups' triggers). Only the catalog's criteria fields and this module's operators are recognised; anything else is
 * NULL, which never matches.
 */
export function storedConditionSql(objectType: RecordType, condition: string, alias: string): string {
  const value = `(${condition} ->> 'value')`;
  const list = `ARRAY(SELECT jsonb_array_elements_text(${condition} -> 'value'))`;
  const branches = Object.values(CRITERIA_FIELDS[objectType]).map((spec) => {
    const column = criteriaColumn(spec, alias);
    const operators = OPERATORS[spec.kind].map(
      (operator) => `WHEN '${operator}' THEN ${comparisonSql(spec, operator, column, value, list)}`,
    );
    return `WHEN '${spec.name}' THEN CASE ${condition} ->> 'operator' ${operators.join(' ')} END`;
  });
  return `CASE ${condition} ->> 'field' ${branches.join(' ')} END`;
}

/** Record fields and rule values are scalars (or Dates); anything else never matches. */
function comparable(kind: FieldKind, value: unknown): number | string | null {
  if (value instanceof Date) return kind === 'day' ? value.toISOString().slice(0, 10) : value.getTime();
  if (typeof value !== 'string' && typeof value !== 'number') return null;
  if (kind === 'timestamp') return new Date(value).getTime();
  if (kind === 'day') return String(value).slice(0, 10);
  if (kind === 'int' || kind === 'number' || kind === 'money') return Number(value);
  return String(value);
}

/** The same conjunction evaluated on a loaded record (entity property names), matching SQL's NULL semantics. */
export function criteriaMatch(
  objectType: RecordType,
  conditions: readonly CriteriaCondition[],
  record: Record<string, unknown>,
): boolean {
  const fields = CRITERIA_FIELDS[objectType];
  return conditions.every((condition) => {
    const spec = fields[condition.field];
    if (!spec) return false;
    const actual = comparable(spec.kind, record[condition.field]);
    switch (condition.operator) {
      case 'ne':
        return actual !== comparable(spec.kind, condition.value);
      case 'in':
        return (
          actual !== null &&
          (condition.value as unknown[]).some((item) => comparable(spec.kind, item) === actual)
        );
      case 'contains':
        return (
          actual !== null && String(actual).toLowerCase().includes(String(condition.value).toLowerCase())
        );
      default: {
        if (actual === null) return false;
        const expected = comparable(spec.kind, condition.value)!;
        if (condition.operator === 'eq') return actual === expected;
        if (condition.operator === 'gt') return actual > expected;
        if (condition.operator === 'gte') return actual >= expected;
        if (condition.operator === 'lt') return actual < expected;
        return actual <= expected;
      }
    }
  });
}
