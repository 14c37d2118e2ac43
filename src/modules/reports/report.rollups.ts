import { fieldsFor, findField, RECORD_TABLE, type FieldSpec, type RecordType } from '../kernel';
import { storedConditionSql } from '../sharing';

/**
 * A rollup's dimension: a field kept as it is (same column name as in the record table, so the record filter language
 * and sharing criteria run on rollup rows unchanged), or a date field cut into months.
 */
export interface RollupDimension {
  spec: FieldSpec;
  bucket?: 'month';
  /** The rollup's column. */
  column: string;
}

/**
 * Count, and per measure the count of values, sum, min and max, by (company, owner, dimensions). AVG is sum / count,
 * so rows compose: summing rows answers any subset of the dimensions, and a month answers its quarter and year.
 */
export interface RollupDefinition {
  name: string;
  entityType: RecordType;
  table: string;
  dimensions: RollupDimension[];
  measures: FieldSpec[];
}

/** Months of timestamps are cut in UTC: a report in another zone cannot be answered from them. */
export const ROLLUP_TIME_ZONE = 'UTC';

function rollup(
  entityType: RecordType,
  name: string,
  dimensions: string[],
  measures: string[],
): RollupDefinition {
  const spec = (field: string, use: 'facet' | 'aggregate') => {
    const found = findField(entityType, field, use);
    if (!found) throw new Error(`rollup ${name}: ${field} is not a ${use} field of ${entityType}`);
    return found;
  };
  return {
    name,
    entityType,
    table: `report_rollup_${name}`,
    dimensions: dimensions.map((key) => {
      const [field, bucket] = key.split(':') as [string, 'month' | undefined];
      const found = spec(field, 'facet');
      return { spec: found, bucket, column: bucket ? `${found.column}_${bucket}` : found.column };
    }),
    measures: measures.map((field) => spec(field, 'aggregate')),
  };
}

/**
 * The presets, smallest first (the first rollup that covers a report answers it). Changing this list, or the criteria
 * fields and comparisons the triggers compile in (`storedConditionSql`), changes the schema: it needs a new migration
 * that drops the old tables and triggers and installs these, its SQL copied from `rollupSchemaSql`
 * (report.rollup-schema.ts). A test compares the installed schema with what that file generates now.
 */
export const ROLLUPS: readonly RollupDefinition[] = [
  rollup('LEAD', 'lead_status', ['status'], ['score', 'estimatedValue']),
  rollup('LEAD', 'lead_source', ['source'], ['score', 'estimatedValue']),
  rollup('LEAD', 'lead_created_month', ['createdAt:month', 'status'], ['score', 'estimatedValue']),
  rollup('DEAL', 'deal_stage', ['stage'], ['amount', 'probability']),
  rollup('DEAL', 'deal_close_month', ['closeDate:month', 'stage'], ['amount', 'probability']),
  rollup('ACCOUNT', 'account_industry', ['industry'], ['annualRevenue', 'employees']),
  rollup('ACCOUNT', 'account_country', ['country'], ['annualRevenue', 'employees']),
];

export function rollupsOf(entityType: RecordType): RollupDefinition[] {
  return ROLLUPS.filter((definition) => definition.entityType === entityType);
}

/** A dimension's value computed from a record row `alias`. */
export function rollupDimensionOfRecord(dimension: RollupDimension, alias: string): string {
  const column = `${alias}.${dimension.spec.column}`;
  if (!dimension.bucket) return column;
  return dimension.spec.kind === 'timestamp'
    ? `date_trunc('month', ${column} AT TIME ZONE '${ROLLUP_TIME_ZONE}')::date`
    : `date_trunc('month', ${column})::date`;
}

/** A rollup's grouping columns: its unique key. */
export const keyColumns = (definition: RollupDefinition) => [
  'company_id',
  'owner_id',
  'rule_mask',
  ...definition.dimensions.map((d) => d.column),
];

/** The grouping keys of a rollup computed from record rows `alias`, in `keyColumns` order. */
export function recordKeys(
  definition: RollupDefinition,
  alias: string,
  mask = ruleMaskSql(definition, alias),
): string[] {
  return [
    `${alias}.company_id`,
    `${alias}.owner_id`,
    mask,
    ...definition.dimensions.map((d) => rollupDimensionOfRecord(d, alias)),
  ];
}

/**
 * The bits (report_criteria_rules.bit) of the company's materialized criteria rules that record `alias` meets, among
 * those the rollup carries (`rollups`), so a rollup can answer for a user whom a criteria rule shares records with.
 * A rebuild decides which rules a rollup carries: not those reading only its own plain dimensions (the dimensions
 * answer them), and none when splitting its groups by rule would make it too large.
 */
export function ruleMaskSql(definition: RollupDefinition, alias: string): string {
  const condition = storedConditionSql(definition.entityType, 'c.value', alias);
  return (
    `coalesce((SELECT bit_or(1::bigint << b.bit) FROM report_criteria_rules b` +
    ` WHERE b.company_id = ${alias}.company_id AND b.object_type = '${definition.entityType}'` +
    ` AND '${definition.name}' = ANY(b.rollups)` +
    ` AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(b.bound) c WHERE (${condition}) IS NOT TRUE)), 0)`
  );
}

/** Whether a rollup can carry a rule at all: not when the rule reads only the rollup's plain dimensions. */
export function carriesRule(definition: RollupDefinition, fields: readonly string[]): boolean {
  const plain = new Set(definition.dimensions.filter((d) => !d.bucket).map((d) => d.spec.name));
  return !fields.every((field) => plain.has(field));
}

/** The record columns every rollup of a record type reads (a rebuild copies them once). */
export function recordColumnsOf(entityType: RecordType): string[] {
  return [...new Set(rollupsOf(entityType).flatMap(recordColumns))];
}

/** Rules a company can have materialized per record type (one bit each of a bigint). */
export const MAX_MATERIALIZED_RULES = 63;

/**
 * The aggregate columns, and how each is computed from record rows `alias` that carry, per measure, their group's
 * extremes (`<column>_lo`, `<column>_hi`: see `rollupRowsSql`).
 */
function aggregateColumns(definition: RollupDefinition, alias: string): Array<[column: string, sql: string]> {
  return [
    ['record_count', 'count(*)'],
    ...definition.measures.flatMap((measure): Array<[string, string]> => {
      const value = `${alias}.${measure.column}`;
      return [
        [`${measure.column}_count`, `count(${value})`],
        [`${measure.column}_sum`, `sum(${value})`],
        [`${measure.column}_min`, `min(${value})`],
        [`${measure.column}_max`, `max(${value})`],
        [`${measure.column}_min_n`, `count(*) FILTER (WHERE ${value} = ${alias}.${measure.column}_lo)`],
        [`${measure.column}_max_n`, `count(*) FILTER (WHERE ${value} = ${alias}.${measure.column}_hi)`],
      ];
    }),
  ];
}

/** The columns `rollupRowsSql` fills, in its order. */
export function rollupColumns(definition: RollupDefinition): string[] {
  return [...keyColumns(definition), ...aggregateColumns(definition, 't').map(([column]) => column)];
}

/**
 * How many records of a group hold its minimum and its maximum of a measure (`<measure>_min_n`, `_max_n`): a record
 * that leaves with the extreme's value takes the extreme with it only when it was the last to hold it, so only then
 * is the group repaired from its records (at 1M leads, scores 0-100 and 3,600 leads an owner and status, a lead
 * leaving with the group's lowest score left it stale at about one write in 25; counted, at about one in 370).
 */
export function extremeCountColumns(definition: RollupDefinition): string[] {
  return definition.measures.flatMap((m) => [`${m.column}_min_n`, `${m.column}_max_n`]);
}

/**
 * SELECT of the rollup's rows computed from the record rows of `from` (aliased `t`) that pass `where`; `mask`
 * replaces the rule-mask expression (a rebuild computes the masks once per record). The records are grouped twice:
 * a window over each group gives every record its group's extremes, so the grouping counts the records that hold them.
 */
export function rollupRowsSql(
  definition: RollupDefinition,
  from: string,
  where = 'true',
  mask?: string,
): string {
  const keys = recordKeys(definition, 't', mask);
  const groupKeys = keys.map((_, i) => `k${i + 1}`);
  const measures = definition.measures.map((m) => m.column);
  const records =
    `SELECT ${[...keys.map((key, i) => `${key} AS ${groupKeys[i]}`), ...measures.map((c) => `t.${c}`)].join(', ')}` +
    ` FROM ${from} t WHERE ${where}`;
  const withExtremes =
    `SELECT x.*, ${measures.flatMap((c) => [`min(x.${c}) OVER g AS ${c}_lo`, `max(x.${c}) OVER g AS ${c}_hi`]).join(', ')}` +
    ` FROM (${records}) x WINDOW g AS (PARTITION BY ${groupKeys.map((k) => `x.${k}`).join(', ')})`;
  const aggregates = aggregateColumns(definition, 't').map(([, sql]) => sql);
  const groups = keys.map((_, i) => `${i + 1}`).join(', ');
  return `SELECT ${[...groupKeys.map((k) => `t.${k}`), ...aggregates].join(', ')} FROM (${withExtremes}) t GROUP BY ${groups} ORDER BY ${groups}`;
}

/** The record columns a rollup reads: a change to any other column leaves it alone. */
export function recordColumns(definition: RollupDefinition): string[] {
  // Criteria fields decide the rule mask.
  const criteria = Object.values(fieldsFor(definition.entityType, 'criteria')).map((spec) => spec.column);
  return [
    ...new Set([
      'company_id',
      'owner_id',
      ...definition.dimensions.map((d) => d.spec.column),
      ...definition.measures.map((m) => m.column),
      ...criteria,
    ]),
  ];
}

/** Lock key of one record table's rollups in one company: writes take it shared, a rebuild exclusively. */
export function rollupLockSql(table: string, companyColumn: string): string {
  return `hashtextextended('report_rollups:${table}:' || ${companyColumn}, 0)`;
}

/** The unlogged table where a transaction's statements leave the record rows its commit applies to the rollups. */
export function pendingTable(entityType: RecordType): string {
  return `report_rollup_pending_${RECORD_TABLE[entityType]}`;
}
