import { ValidationError, type FieldViolation } from '../../platform/errors/app-error';
import {
  isTimeZone,
  fieldsFor,
  filtersToSql,
  findField,
  graphqlEnum,
  filterViolations,
  type EnumValue,
  type FieldSpec,
  type RecordFilter,
  type RecordType,
} from '../kernel';

export const AggregateType = graphqlEnum('AggregateType', ['COUNT', 'SUM', 'AVG', 'MIN', 'MAX']);
export type AggregateType = EnumValue<typeof AggregateType>;

export const ReportSource = graphqlEnum(
  'ReportSource',
  ['MATERIALIZED', 'LIVE'],
  'MATERIALIZED: from precomputed rollups; LIVE: computed from the records now',
);
export type ReportSource = EnumValue<typeof ReportSource>;

export const DATE_BUCKETS = ['day', 'week', 'month', 'quarter', 'year'] as const;
export type DateBucket = (typeof DATE_BUCKETS)[number];

export const ReportLimits = { maxAggregates: 20, maxDimensions: 5 } as const;

export interface AggregateInput {
  name: string;
  type: AggregateType;
  field?: string | null;
  dimensions?: readonly string[] | null;
}

export interface ReportInput {
  entityType: RecordType;
  aggregates: readonly AggregateInput[];
  filters?: readonly RecordFilter[] | null;
  dateRange?: { field: string; from?: Date | null; to?: Date | null } | null;
  /** IANA zone the date buckets are cut in. Default UTC. */
  timeZone?: string | null;
  /** Where the figures must come from; by default the rollups when they hold the report and cost less. */
  source?: ReportSource | null;
}

/** A dimension as validated: a field, or a date field cut into buckets. */
export interface Dimension {
  /** As the caller wrote it (`stage`, `createdAt:month`): the key in each row's `dimensions`. */
  key: string;
  spec: FieldSpec;
  bucket?: DateBucket;
}

export interface ValidAggregate {
  name: string;
  type: AggregateType;
  field?: FieldSpec;
  dimensions: Dimension[];
}

export interface ValidReport {
  entityType: RecordType;
  aggregates: ValidAggregate[];
  filters: readonly RecordFilter[];
  dateRange?: { spec: FieldSpec; from?: Date | null; to?: Date | null };
  timeZone: string;
  source: ReportSource | null;
}

const NUMERIC = new Set(['int', 'number', 'money']);
const DATES = new Set(['timestamp', 'day']);

/** Checks a report against the field catalog; one ValidationError names every problem, before any SQL runs. */
export function validateReport(input: ReportInput): ValidReport {
  const violations: FieldViolation[] = [];
  const type = input.entityType;
  if (input.aggregates.length === 0 || input.aggregates.length > ReportLimits.maxAggregates)
    violations.push({
      field: 'input.aggregates',
      rule: `must hold 1 to ${ReportLimits.maxAggregates} aggregates`,
    });
  const names = new Set<string>();
  const aggregates = input.aggregates.map((aggregate, index): ValidAggregate => {
    const at = `input.aggregates[${index}]`;
    if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(aggregate.name))
      violations.push({
        field: `${at}.name`,
        rule: 'must be a letter followed by up to 63 letters, digits or _',
      });
    else if (names.has(aggregate.name))
      violations.push({ field: `${at}.name`, rule: `"${aggregate.name}" is the name of another aggregate` });
    names.add(aggregate.name);
    const field = validateMeasure(type, aggregate, at, violations);
    const dimensions = validateDimensions(type, aggregate.dimensions ?? [], at, violations);
    return { name: aggregate.name, type: aggregate.type, field, dimensions };
  });
  const filters = input.filters ?? [];
  violations.push(...filterViolations(type, filters, 'input.filters'));
  const dateRange = input.dateRange ? validateDateRange(type, input.dateRange, violations) : undefined;
  const timeZone = input.timeZone ?? 'UTC';
  if (!isTimeZone(timeZone))
    violations.push({ field: 'input.timeZone', rule: 'must be an IANA time zone such as Europe/Berlin' });
  if (violations.length > 0) throw new ValidationError(violations);
  return { entityType: type, aggregates, filters, dateRange, timeZone, source: input.source ?? null };
}

/** The field an aggregate measures (none for COUNT), at `at` in the input; problems go to `violations`. */
function validateMeasure(
  type: RecordType,
  aggregate: AggregateInput,
  at: string,
  violations: FieldViolation[],
): FieldSpec | undefined {
  if (aggregate.type === 'COUNT') {
    if (aggregate.field)
      violations.push({ field: `${at}.field`, rule: 'must be left out for COUNT (it counts records)' });
    return undefined;
  }
  if (!aggregate.field) {
    violations.push({ field: `${at}.field`, rule: `is required for ${aggregate.type}` });
    return undefined;
  }
  const field = findField(type, aggregate.field, 'aggregate');
  if (!field || !NUMERIC.has(field.kind))
    violations.push({
      field: `${at}.field`,
      rule: `must be a numeric field of ${type} for ${aggregate.type} (${Object.keys(fieldsFor(type, 'aggregate')).join(', ')})`,
    });
  return field;
}

/** An aggregate's dimensions, at `at` in the input; those in error are left out and named in `violations`. */
function validateDimensions(
  type: RecordType,
  requested: readonly string[],
  at: string,
  violations: FieldViolation[],
): Dimension[] {
  if (requested.length > ReportLimits.maxDimensions)
    violations.push({
      field: `${at}.dimensions`,
      rule: `must hold at most ${ReportLimits.maxDimensions} dimensions`,
    });
  const seen = new Set<string>();
  return requested.flatMap((key, d): Dimension[] => {
    const where = `${at}.dimensions[${d}]`;
    if (seen.has(key)) {
      violations.push({ field: where, rule: `"${key}" appears twice` });
      return [];
    }
    seen.add(key);
    const dimension = parseDimension(type, key);
    if (typeof dimension === 'string') {
      violations.push({ field: where, rule: dimension });
      return [];
    }
    return [dimension];
  });
}

/** A dimension key (`stage`, `createdAt:month`) as a dimension, or the rule it breaks. */
function parseDimension(type: RecordType, key: string): Dimension | string {
  const [name, bucket, extra] = key.split(':');
  const spec = findField(type, name ?? '', 'facet');
  if (!spec || extra !== undefined)
    return `must be one of ${Object.keys(fieldsFor(type, 'facet')).join(', ')} for ${type}, or a date field with :day, :week, :month, :quarter or :year`;
  if (bucket !== undefined) {
    if (!DATES.has(spec.kind)) return `${name} is not a date: it cannot be cut into ${bucket}s`;
    if (!(DATE_BUCKETS as readonly string[]).includes(bucket))
      return `the bucket must be one of ${DATE_BUCKETS.join(', ')}`;
    return { key, spec, bucket: bucket as DateBucket };
  }
  if (DATES.has(spec.kind)) return `${name} is a date: name a bucket, e.g. ${name}:month`;
  return { key, spec };
}

/** The report's date range; undefined (and named in `violations`) when in error. */
function validateDateRange(
  type: RecordType,
  range: NonNullable<ReportInput['dateRange']>,
  violations: FieldViolation[],
): ValidReport['dateRange'] {
  const spec = findField(type, range.field, 'filter');
  if (!spec || !DATES.has(spec.kind)) {
    violations.push({ field: 'input.dateRange.field', rule: `must be a date field of ${type}` });
    return undefined;
  }
  if (range.from && range.to && range.from > range.to) {
    violations.push({ field: 'input.dateRange.from', rule: 'must not be after to' });
    return undefined;
  }
  // A day is the same in every zone: a day field's bounds are days, written as midnight UTC, so no zone can
  // move them (an instant such as 2026-02-28T15:00:00Z would be 28 February or 1 March depending on timeZone).
  for (const bound of ['from', 'to'] as const) {
    const at = range[bound];
    if (spec.kind === 'day' && at && !/T00:00:00\.000Z$/.test(at.toISOString()))
      violations.push({
        field: `input.dateRange.${bound}`,
        rule: `must be a day, written as midnight UTC (e.g. ${at.toISOString().slice(0, 10)}T00:00:00Z), for the day field ${spec.name}`,
      });
  }
  return { spec, from: range.from, to: range.to };
}

const AGGREGATE_SQL: Record<AggregateType, (column: string) => string> = {
  COUNT: () => 'count(*)',
  SUM: (column) => `sum(${column})`,
  AVG: (column) => `avg(${column})`,
  MIN: (column) => `min(${column})`,
  MAX: (column) => `max(${column})`,
};

/** Collects bound values; the zone is bound once, when something reads it (Postgres refuses unread parameters). */
export class SqlValues {
  readonly values: unknown[] = [];
  private zoneParam = '';

  constructor(private readonly timeZone: string) {}

  bind = (value: unknown): string => `$${this.values.push(value)}`;

  zone(): string {
    return (this.zoneParam ||= `${this.bind(this.timeZone)}::text`);
  }
}

/** A dimension's SQL over record alias `r`: the column, or its bucket's first day as YYYY-MM-DD in the report's zone. */
export function dimensionSql(dimension: Dimension, sql: SqlValues): string {
  if (!dimension.bucket) return `r.${dimension.spec.column}`;
  return `to_char(date_trunc('${dimension.bucket}', ${localTimestamp(dimension, sql)}), 'YYYY-MM-DD')`;
}

/** A date dimension's column over record alias `r` as a local timestamp: an instant in the report's zone, or a day. */
export function localTimestamp(dimension: Dimension, sql: SqlValues): string {
  const column = `r.${dimension.spec.column}`;
  return dimension.spec.kind === 'timestamp'
    ? `(${column} AT TIME ZONE ${sql.zone()})`
    : `${column}::timestamp`;
}

/** The report's filters and date range over record alias `r`. */
export function recordConditions(report: ValidReport, sql: SqlValues): string[] {
  const conditions = [filtersToSql(report.entityType, report.filters, 'r', sql.bind)];
  const range = report.dateRange;
  if (range) {
    const column = `r.${range.spec.column}`;
    // A day field compares with the bound's day (validated to be midnight UTC); a timestamp, with the instant.
    const bound = (at: Date) =>
      range.spec.kind === 'day'
        ? `${sql.bind(at.toISOString().slice(0, 10))}::date`
        : `${sql.bind(at.toISOString())}::timestamptz`;
    if (range.from) conditions.push(`${column} >= ${bound(range.from)}`);
    if (range.to) conditions.push(`${column} < ${bound(range.to)}`);
  }
  return conditions;
}

/** GROUP BY of the `count` dimensions selected first; empty without dimensions. */
export function groupBy(count: number): string {
  return count ? ` GROUP BY ${Array.from({ length: count }, (_, i) => i + 1).join(', ')}` : '';
}

/** GROUP BY and ORDER BY of the `count` dimensions selected first, missing values last. */
export function groupAndOrder(count: number): string {
  const order = Array.from({ length: count }, (_, i) => `${i + 1} NULLS LAST`);
  return count ? `${groupBy(count)} ORDER BY ${order.join(', ')}` : '';
}

/**
 * One aggregate as parameterized SQL: the same input shape always yields the same text (values only ever bound), so
 * the text is the key of the plan cache and the name of its prepared statement.
 */
export function aggregateSql(
  report: ValidReport,
  aggregate: ValidAggregate,
  table: string,
  visible: (bind: (value: unknown) => string) => string,
): { text: string; values: unknown[] } {
  const sql = new SqlValues(report.timeZone);
  const conditions = [visible(sql.bind), ...recordConditions(report, sql)];
  const dimensions = aggregate.dimensions.map((dimension, i) => `${dimensionSql(dimension, sql)} AS d${i}`);
  const measure = AGGREGATE_SQL[aggregate.type](aggregate.field ? `r.${aggregate.field.column}` : '');
  const text =
    `SELECT ${[...dimensions, `${measure} AS value`].join(', ')} FROM ${table} r WHERE ${conditions.join(' AND ')}` +
    groupAndOrder(aggregate.dimensions.length);
  return { text, values: sql.values };
}
