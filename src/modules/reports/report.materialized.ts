import { bindNamed, RECORD_TABLE } from '../kernel';
import type { ReadClauses, ReadScope } from '../sharing';
import {
  localTimestamp,
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

/**
 * The month a date-range bound falls on when it is a month's first instant in UTC (a timestamp in the rollup's UTC
 * months, or a day field's day, which validation keeps at midnight UTC), or null: a bound inside a month cannot be
 * read from monthly rows.
 */
function monthBound(at: Date): string | null {
  return /^\d{4}-\d{2}-01T00:00:00\.000Z$/.test(at.toISOString()) ? at.toISOString().slice(0, 10) : null;
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
    const from = range.from ? monthBound(range.from) : undefined;
    const to = range.to ? monthBound(range.to) : undefined;
    if (from === null || to === null) continue;
    return { definition, range: { column: month.column, from, to } };
  }
  return null;
}

/** What each side selects for an aggregate type, and how the two (named `v` and `w` in the union) are combined. */
const COMBINE: Record<
  AggregateType,
  {
    rollup: (m: string) => string[];
    records: (m: string) => string[];
    result: (v: string, w: string) => string;
  }
> = {
  COUNT: {
    rollup: () => ['sum(r.record_count)'],
    records: () => ['count(*)'],
    result: (v) => `coalesce(sum(u.${v}), 0)`,
  },
  SUM: { rollup: (m) => [`sum(r.${m}_sum)`], records: (m) => [`sum(r.${m})`], result: (v) => `sum(u.${v})` },
  MIN: { rollup: (m) => [`min(r.${m}_min)`], records: (m) => [`min(r.${m})`], result: (v) => `min(u.${v})` },
  MAX: { rollup: (m) => [`max(r.${m}_max)`], records: (m) => [`max(r.${m})`], result: (v) => `max(u.${v})` },
  AVG: {
    rollup: (m) => [`sum(r.${m}_sum)`, `sum(r.${m}_count)`],
    records: (m) => [`sum(r.${m})`, `count(r.${m})`],
    result: (v, w) => `sum(u.${v}) / nullif(sum(u.${w}), 0)`,
  },
};

/**
 * The union's column names of the `k`th of `count` aggregates read together, and the name of its result column:
 * one aggregate alone keeps `v`, `w` and `value`; several get `v0`, `w0`, `value0` and so on.
 */
export function measureColumns(k: number, count: number): { v: string; w: string; value: string } {
  return count === 1 ? { v: 'v', w: 'w', value: 'value' } : { v: `v${k}`, w: `w${k}`, value: `value${k}` };
}

/** The union's columns of each aggregate on one side (the rollup's rows, or the records of a correction). */
function measuresOf(aggregates: readonly ValidAggregate[], side: 'rollup' | 'records'): string[] {
  return aggregates.flatMap((aggregate, k) => {
    const names = measureColumns(k, aggregates.length);
    const select = COMBINE[aggregate.type][side];
    return select(aggregate.field?.column ?? '').map((sql, i) => `${sql} AS ${i === 0 ? names.v : names.w}`);
  });
}

/**
 * An aggregate from a rollup, exact under the caller's visibility. Summed from the rollup: the rows of the owners the
 * caller sees, the rows their criteria rules on the rollup's own dimensions match, and the rows whose rule mask holds a
 * materialized criteria rule of theirs (one whose conditions are still those the rollups were built with). Aggregated
 * live and merged in: the records only a criteria rule not materialized (new or changed since the last rebuild), or
 * a manual share, lets them see, each record once. The text depends only on the shape, as for live SQL.
 */
export function rollupAggregateSql(
  report: ValidReport,
  aggregates: readonly ValidAggregate[],
  plan: RollupPlan,
  scope: ReadScope,
  /** Rules this process last saw the rollup hold: only the estimate leaves out their (then idle) corrections. */
  held: (rule: { ruleId: string; conditions: readonly unknown[] }) => boolean = () => false,
): { text: string; values: unknown[]; pricing: { text: string; values: unknown[] } } {
  // The corrections of held rules are gated by a subquery Postgres evaluates once at run time, but the planner prices
  // them in full: the estimate that picks the path is made on the statement without them.
  return {
    ...buildRollupSql(report, aggregates, plan, scope, () => false),
    pricing: buildRollupSql(report, aggregates, plan, scope, held),
  };
}

/**
 * Aggregates of one report that read the same rows of the same rollup: its grouping (the same dimensions) and the
 * report's filters, range and visibility, which every aggregate of a report shares. One statement answers them all.
 */
export function sameRollupRows(a: ValidAggregate, b: ValidAggregate): boolean {
  return (
    a.dimensions.length === b.dimensions.length &&
    a.dimensions.every((d, i) => d.key === b.dimensions[i]!.key)
  );
}

function buildRollupSql(
  report: ValidReport,
  aggregates: readonly ValidAggregate[],
  plan: RollupPlan,
  scope: ReadScope,
  omit: (rule: { ruleId: string; conditions: readonly unknown[] }) => boolean,
): { text: string; values: unknown[] } {
  const { definition } = plan;
  const { dimensions } = aggregates[0]!;
  const sql = new SqlValues(report.timeZone);
  const company = `${sql.bind(scope.companyId)}::uuid`;
  const visibility = visibilityParts(report, definition, scope, sql, company, omit);

  const rollupDimensions = dimensions.map((dimension, i) => {
    if (!dimension.bucket) return `r.${dimension.spec.column} AS d${i}`;
    const month = definition.dimensions.find((d) => d.bucket && d.spec.name === dimension.spec.name)!;
    // Grouped as dates here and formatted once at the end: formatting every rollup row costs more than the sums.
    return dimension.bucket === 'month'
      ? `r.${month.column} AS d${i}`
      : `date_trunc('${dimension.bucket}', r.${month.column}::timestamp)::date AS d${i}`;
  });
  const rollupWhere = [`r.company_id = ${company}`, ...recordConditionsOnRollup(report, sql)];
  if (visibility.onRollup) rollupWhere.push(visibility.onRollup);
  if (plan.range?.from) rollupWhere.push(`r.${plan.range.column} >= ${sql.bind(plan.range.from)}::date`);
  if (plan.range?.to) rollupWhere.push(`r.${plan.range.column} < ${sql.bind(plan.range.to)}::date`);
  const group = groupBy(dimensions.length);
  const parts = [
    `SELECT ${[...rollupDimensions, ...measuresOf(aggregates, 'rollup')].join(', ')}` +
      ` FROM ${definition.table} r WHERE ${rollupWhere.join(' AND ')}${group}`,
  ];
  for (const correction of visibility.corrections) {
    const where = [`r.company_id = ${company}`, ...recordConditions(report, sql), ...correction];
    const recordDimensions = dimensions.map((dimension, i) =>
      dimension.bucket
        ? `date_trunc('${dimension.bucket}', ${localTimestamp(dimension, sql)})::date AS d${i}`
        : `r.${dimension.spec.column} AS d${i}`,
    );
    parts.push(
      `SELECT ${[...recordDimensions, ...measuresOf(aggregates, 'records')].join(', ')}` +
        ` FROM ${RECORD_TABLE[report.entityType]} r WHERE ${where.join(' AND ')}${group}`,
    );
  }
  const outer = dimensions.map((dimension, i) =>
    dimension.bucket ? `to_char(u.d${i}, 'YYYY-MM-DD') AS d${i}` : `u.d${i}`,
  );
  const results = aggregates.map((aggregate, k) => {
    const { v, w, value } = measureColumns(k, aggregates.length);
    return `${COMBINE[aggregate.type].result(v, w)} AS ${value}`;
  });
  const text =
    `SELECT ${[...outer, ...results].join(', ')} FROM (${parts.join(' UNION ALL ')}) u` +
    groupAndOrder(dimensions.length);
  return { text, values: sql.values };
}

/**
 * The caller's visibility split for a rollup: the condition on its rows, and the conditions of each live correction
 * over the records (each a list ANDed): one for the criteria rules the rollup does not hold, one for manual shares.
 * Each skips what the rollup or the part before counted (IS NOT TRUE: a NULL criteria field is not a match), so a
 * record is counted once. A rule's "held" test is a subquery without record columns: Postgres evaluates it once, and
 * skips the rules part entirely when the rollup holds them all.
 */
function visibilityParts(
  report: ValidReport,
  definition: RollupDefinition,
  scope: ReadScope,
  sql: SqlValues,
  company: string,
  omit: (rule: { ruleId: string; conditions: readonly unknown[] }) => boolean,
): { onRollup: string | null; corrections: string[][] } {
  if (scope.everything) return { onRollup: null, corrections: [] };
  const plain = new Set(definition.dimensions.filter((d) => !d.bucket).map((d) => d.spec.name));
  const rules = scope.criteriaRules.map((rule, index) => ({
    ...rule,
    index,
    onDimensions: rule.fields.every((field) => plain.has(field)),
  }));
  const masked = rules.filter((rule) => !rule.onDimensions);
  const clause = (parts: ReadClauses) => {
    const predicate = scope.clauses('r', parts);
    return predicate ? bindNamed(predicate, sql.bind) : null;
  };
  const rulesOf = (indexes: number[]) =>
    indexes.length ? clause({ owners: false, criteria: indexes, shares: false }) : null;
  const owners = clause({ owners: true, criteria: false, shares: false })!;
  const onDimensions = rulesOf(rules.filter((rule) => rule.onDimensions).map((rule) => rule.index));
  const held = (rule: (typeof rules)[number]) =>
    `EXISTS (SELECT 1 FROM report_criteria_rules b WHERE b.company_id = ${company}` +
    ` AND b.object_type = '${report.entityType}' AND '${definition.name}' = ANY(b.rollups)` +
    ` AND b.rule_id = ${sql.bind(rule.ruleId)}::uuid` +
    ` AND b.conditions = ${sql.bind(JSON.stringify(rule.conditions))}::jsonb)`;

  const onRollup = [owners, ...(onDimensions ? [onDimensions] : [])];
  if (masked.length)
    onRollup.push(
      `(r.rule_mask & (SELECT coalesce(bit_or(1::bigint << b.bit), 0) FROM report_criteria_rules b` +
        ` WHERE b.company_id = ${company} AND b.object_type = '${report.entityType}'` +
        ` AND '${definition.name}' = ANY(b.rollups) AND (b.rule_id, b.conditions) IN (SELECT * FROM unnest(${sql.bind(masked.map((rule) => rule.ruleId))}::uuid[],` +
        ` ${sql.bind(masked.map((rule) => JSON.stringify(rule.conditions)))}::jsonb[])))) <> 0`,
    );
  const base = [owners, ...(onDimensions ? [onDimensions] : [])];
  // One part for the rules the rollup does not hold (each rule's clause bound once or twice, not once per pair): the
  // records they match that nothing the rollup holds counts. Skipped as a whole when the rollup holds every rule.
  const corrections: string[][] = [];
  const unheld = masked.filter((rule) => !omit(rule));
  if (unheld.length)
    corrections.push([
      `NOT (${unheld.map(held).join(' AND ')})`,
      `(${unheld.map((rule) => `(${rulesOf([rule.index])!} AND NOT ${held(rule)})`).join(' OR ')})`,
      `(${[...base, ...masked.map((rule) => `(${rulesOf([rule.index])!} AND ${held(rule)})`)].join(' OR ')}) IS NOT TRUE`,
    ]);
  const shares = clause({ owners: false, criteria: false, shares: true });
  if (shares) {
    const counted = [...base, ...masked.map((rule) => rulesOf([rule.index])!)];
    corrections.push([shares, `(${counted.join(' OR ')}) IS NOT TRUE`]);
  }
  return { onRollup: `(${onRollup.join(' OR ')})`, corrections };
}

/** The report's filters on rollup rows (covered filters name only plain dimensions, whose columns keep their names). */
function recordConditionsOnRollup(report: ValidReport, sql: SqlValues): string[] {
  return recordConditions({ ...report, dateRange: undefined }, sql);
}
