import { bindNamed, RECORD_TABLE } from '../kernel';
import type { ReadScope } from '../sharing';
import {
  dimensionSql,
  groupAndOrder,
  groupBy,
  recordConditions,
  SqlValues,
  type AggregateType,
  type Dimension,
  type ValidAggregate,
  type ValidReport,
} from './report.model';
import { ROLLUP_TIME_ZONE, rollupsOf, type RollupDefinition } from './report.rollups';

/** Why an aggregate was not answered from a rollup (the metric's label). */
export type RollupMiss = 'not_covered' | 'too_large' | 'costlier' | 'live_requested';

export interface RollupPlan {
  definition: RollupDefinition;
  /** The rollup's month column, and the months a date range keeps (inclusive, exclusive), as YYYY-MM-DD. */
  range?: { column: string; from?: string; to?: string };
}

const COARSER_THAN_MONTH = new Set(['month', 'quarter', 'year']);

/** YYYY-MM-DD of an instant in a zone. */
function localDay(at: Date, zone: string): string {
  return new Intl.DateTimeFormat('en-CA', {
    timeZone: zone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(at);
}

/**
 * The month a date-range bound falls on when it is a month's first day (a day field, in the report's zone) or first
 * instant (a timestamp, in the rollup's UTC), or null: a bound inside a month cannot be read from monthly rows.
 */
function monthBound(at: Date, kind: string, zone: string): string | null {
  if (kind === 'timestamp')
    return /^\d{4}-\d{2}-01T00:00:00\.000Z$/.test(at.toISOString()) ? at.toISOString().slice(0, 10) : null;
  const day = localDay(at, zone);
  return day.endsWith('-01') ? day : null;
}

/** Whether a rollup's monthly column can answer a date dimension, in the report's zone. */
function bucketCovered(definition: RollupDefinition, dimension: Dimension, zone: string): boolean {
  const month = definition.dimensions.find((d) => d.bucket && d.spec.name === dimension.spec.name);
  if (!month || !dimension.bucket || !COARSER_THAN_MONTH.has(dimension.bucket)) return false;
  return dimension.spec.kind === 'day' || zone === ROLLUP_TIME_ZONE;
}

/**
 * The first rollup (presets are listed smallest first) that holds every dimension, filter, date-range bound and
 * measure of the aggregate, among those `usable` (not refused for their size); null when none does.
 */
export function coveringRollup(
  report: ValidReport,
  aggregate: ValidAggregate,
  usable: (definition: RollupDefinition) => boolean,
): RollupPlan | null {
  for (const definition of rollupsOf(report.entityType)) {
    if (!usable(definition)) continue;
    const plain = new Set([
      'ownerId',
      ...definition.dimensions.filter((d) => !d.bucket).map((d) => d.spec.name),
    ]);
    if (aggregate.field && !definition.measures.some((m) => m.name === aggregate.field!.name)) continue;
    if (!report.filters.every((filter) => plain.has(filter.field))) continue;
    const dimensionsHeld = aggregate.dimensions.every((dimension) =>
      dimension.bucket
        ? bucketCovered(definition, dimension, report.timeZone)
        : plain.has(dimension.spec.name),
    );
    if (!dimensionsHeld) continue;
    const range = report.dateRange;
    if (!range) return { definition };
    const month = definition.dimensions.find((d) => d.bucket && d.spec.name === range.spec.name);
    if (!month) continue;
    const from = range.from ? monthBound(range.from, range.spec.kind, report.timeZone) : undefined;
    const to = range.to ? monthBound(range.to, range.spec.kind, report.timeZone) : undefined;
    if (from === null || to === null) continue;
    return { definition, range: { column: month.column, from, to } };
  }
  return null;
}

/** What each side selects for an aggregate type, and how the two are combined. */
const COMBINE: Record<
  AggregateType,
  { rollup: (m: string) => string[]; records: (m: string) => string[]; result: string }
> = {
  COUNT: {
    rollup: () => ['sum(r.record_count)'],
    records: () => ['count(*)'],
    result: 'coalesce(sum(u.v), 0)',
  },
  SUM: { rollup: (m) => [`sum(r.${m}_sum)`], records: (m) => [`sum(r.${m})`], result: 'sum(u.v)' },
  MIN: { rollup: (m) => [`min(r.${m}_min)`], records: (m) => [`min(r.${m})`], result: 'min(u.v)' },
  MAX: { rollup: (m) => [`max(r.${m}_max)`], records: (m) => [`max(r.${m})`], result: 'max(u.v)' },
  AVG: {
    rollup: (m) => [`sum(r.${m}_sum)`, `sum(r.${m}_count)`],
    records: (m) => [`sum(r.${m})`, `count(r.${m})`],
    result: 'sum(u.v) / nullif(sum(u.w), 0)',
  },
};

/**
 * An aggregate from a rollup, exact under the caller's visibility. The rows of the owners the caller sees (and, when
 * every criteria rule reads only the rollup's dimensions, the rows those rules match) are summed from the rollup; the
 * records the caller sees only through the rest (manual shares, criteria on other fields) and not already counted
 * are aggregated live and merged in. The text depends only on the shape, as for live SQL.
 */
export function rollupAggregateSql(
  report: ValidReport,
  aggregate: ValidAggregate,
  plan: RollupPlan,
  scope: ReadScope,
): { text: string; values: unknown[] } {
  const { definition } = plan;
  const sql = new SqlValues(report.timeZone);
  const company = `${sql.bind(scope.companyId)}::uuid`;
  const plain = new Set(definition.dimensions.filter((d) => !d.bucket).map((d) => d.spec.name));
  const criteriaOnRollup = scope.criteriaFields.every((fields) => fields.every((field) => plain.has(field)));
  const onRollup = scope.clauses('r', { owners: true, criteria: criteriaOnRollup, shares: false });
  const beyond = scope.clauses('r', { owners: false, criteria: !criteriaOnRollup, shares: true });
  const measure = aggregate.field?.column ?? '';
  const combine = COMBINE[aggregate.type];
  const names = ['v', 'w'];

  const rollupDimensions = aggregate.dimensions.map((dimension, i) => {
    if (!dimension.bucket) return `r.${dimension.spec.column} AS d${i}`;
    const month = definition.dimensions.find((d) => d.bucket && d.spec.name === dimension.spec.name)!;
    return `to_char(date_trunc('${dimension.bucket}', r.${month.column}::timestamp), 'YYYY-MM-DD') AS d${i}`;
  });
  const rollupWhere = [`r.company_id = ${company}`, ...recordConditionsOnRollup(report, sql)];
  if (onRollup) rollupWhere.push(bindNamed(onRollup, sql.bind));
  if (plan.range?.from) rollupWhere.push(`r.${plan.range.column} >= ${sql.bind(plan.range.from)}::date`);
  if (plan.range?.to) rollupWhere.push(`r.${plan.range.column} < ${sql.bind(plan.range.to)}::date`);
  const group = groupBy(aggregate.dimensions.length);
  const parts = [
    `SELECT ${[...rollupDimensions, ...combine.rollup(measure).map((s, i) => `${s} AS ${names[i]}`)].join(', ')}` +
      ` FROM ${definition.table} r WHERE ${rollupWhere.join(' AND ')}${group}`,
  ];
  if (beyond) {
    // Not counted above: visible only through what the rollup cannot tell (IS NOT TRUE: a NULL criteria field).
    const where = [
      `r.company_id = ${company}`,
      ...recordConditions(report, sql),
      bindNamed(beyond, sql.bind),
      ...(onRollup ? [`${bindNamed(onRollup, sql.bind)} IS NOT TRUE`] : []),
    ];
    const dimensions = aggregate.dimensions.map((dimension, i) => `${dimensionSql(dimension, sql)} AS d${i}`);
    parts.push(
      `SELECT ${[...dimensions, ...combine.records(measure).map((s, i) => `${s} AS ${names[i]}`)].join(', ')}` +
        ` FROM ${RECORD_TABLE[report.entityType]} r WHERE ${where.join(' AND ')}${group}`,
    );
  }
  const outer = aggregate.dimensions.map((_, i) => `u.d${i}`);
  const text =
    `SELECT ${[...outer, `${combine.result} AS value`].join(', ')} FROM (${parts.join(' UNION ALL ')}) u` +
    groupAndOrder(aggregate.dimensions.length);
  return { text, values: sql.values };
}

/** The report's filters on rollup rows (covered filters name only plain dimensions, whose columns keep their names). */
function recordConditionsOnRollup(report: ValidReport, sql: SqlValues): string[] {
  return recordConditions({ ...report, dateRange: undefined }, sql);
}
