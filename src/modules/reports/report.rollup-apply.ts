import { RECORD_TABLE } from '../kernel';
import {
  extremeCountColumns,
  keyColumns,
  pendingTable,
  recordColumns,
  recordKeys,
  ROLLUP_TIME_ZONE,
  rollupDimensionOfRecord,
  rollupsOf,
  ROLLUPS,
  ruleMaskSql,
  type RollupDefinition,
  type RollupDimension,
} from './report.rollups';

/*
 * The commit-time apply, as SQL: the one plpgsql function a writing transaction's commit runs, its upserts of the
 * rollup groups and the repair of groups that lost an extreme. `report.rollup-schema.ts` installs it with the tables
 * and triggers it serves; like the rest of the schema it runs only through migrations, which hold literal copies.
 */
/**
 * Applies a statement's change to the rollup in ONE upsert, its groups in key order: the rows that came (`came`, a
 * relation of record rows) count +1, the rows that went (`gone`) -1. One sorted pass means two writers lock the groups
 * they share in the same order (no deadlock when two updates move records in opposite directions). Each group keeps
 * how many of its records hold its minimum and its maximum (`*_min_n`, `*_max_n`); a group that lost the last holder
 * of an extreme (or emptied) is marked stale for `repairSql`. The extremes that left, and how many rows took each,
 * travel in the transient `*_gone_*` columns, which never keep a value; the `came` extremes' counts in `*_min_n`.
 * `mask` replaces the rule-mask expression (0 when the companies written hold no rules of the record type). It
 * returns each group's `stale` as it left it.
 */
function applySql(
  definition: RollupDefinition,
  came: string | null,
  gone: string | null,
  mask?: string,
): string {
  const r = definition.table;
  const cols = recordColumns(definition);
  const sides = [
    ...(came ? [`SELECT 1 AS sign, ${cols.join(', ')} FROM ${came}`] : []),
    ...(gone ? [`SELECT -1 AS sign, ${cols.join(', ')} FROM ${gone}`] : []),
  ];
  const keys = recordKeys(definition, 't', mask);
  const groupKeys = keys.map((_, i) => `k${i + 1}`);
  const values = definition.measures.map((m) => m.column);
  // The rows with their group keys, then each with its group's extremes per side (a window over the group).
  const rows = `SELECT t.sign, ${[...keys.map((key, i) => `${key} AS ${groupKeys[i]}`), ...values.map((c) => `t.${c}`)].join(', ')} FROM (${sides.join(' UNION ALL ')}) t`;
  const withExtremes =
    `SELECT x.*, ${values
      .flatMap((c) => [
        `min(x.${c}) FILTER (WHERE x.sign > 0) OVER g AS ${c}_came_lo`,
        `max(x.${c}) FILTER (WHERE x.sign > 0) OVER g AS ${c}_came_hi`,
        `min(x.${c}) FILTER (WHERE x.sign < 0) OVER g AS ${c}_gone_lo`,
        `max(x.${c}) FILTER (WHERE x.sign < 0) OVER g AS ${c}_gone_hi`,
      ])
      .join(', ')}` +
    ` FROM (${rows}) x WINDOW g AS (PARTITION BY ${groupKeys.map((k) => `x.${k}`).join(', ')})`;
  const measures = values.flatMap((c) => {
    const v = `t.${c}`;
    return [
      `coalesce(sum(t.sign) FILTER (WHERE ${v} IS NOT NULL), 0)`,
      `sum(t.sign * ${v})`,
      `min(${v}) FILTER (WHERE t.sign > 0)`,
      `max(${v}) FILTER (WHERE t.sign > 0)`,
      `min(${v}) FILTER (WHERE t.sign < 0)`,
      `max(${v}) FILTER (WHERE t.sign < 0)`,
      `count(*) FILTER (WHERE t.sign > 0 AND ${v} = t.${c}_came_lo)`,
      `count(*) FILTER (WHERE t.sign > 0 AND ${v} = t.${c}_came_hi)`,
      `nullif(count(*) FILTER (WHERE t.sign < 0 AND ${v} = t.${c}_gone_lo), 0)`,
      `nullif(count(*) FILTER (WHERE t.sign < 0 AND ${v} = t.${c}_gone_hi), 0)`,
    ];
  });
  const columns = [
    ...keyColumns(definition),
    'record_count',
    ...values.flatMap((c) => [
      `${c}_count`,
      `${c}_sum`,
      `${c}_min`,
      `${c}_max`,
      `${c}_gone_min`,
      `${c}_gone_max`,
      `${c}_min_n`,
      `${c}_max_n`,
      `${c}_gone_min_n`,
      `${c}_gone_max_n`,
    ]),
  ];
  const groups = keys.map((_, i) => `${i + 1}`).join(', ');
  // Of a group's holders of its extreme, those left after the rows that went with the extreme's value.
  const remaining = (c: string, side: 'min' | 'max') =>
    `${r}.${c}_${side}_n - CASE WHEN EXCLUDED.${c}_gone_${side} = ${r}.${c}_${side} THEN coalesce(EXCLUDED.${c}_gone_${side}_n, 0) ELSE 0 END`;
  const holders = (c: string, side: 'min' | 'max') => {
    const beyond = side === 'min' ? '<' : '>';
    return (
      `${c}_${side}_n = CASE WHEN EXCLUDED.${c}_${side} IS NOT NULL AND (${r}.${c}_${side} IS NULL OR EXCLUDED.${c}_${side} ${beyond} ${r}.${c}_${side}) THEN EXCLUDED.${c}_${side}_n` +
      ` WHEN ${r}.${c}_${side} IS NULL THEN 0` +
      ` ELSE ${remaining(c, side)} + CASE WHEN EXCLUDED.${c}_${side} = ${r}.${c}_${side} THEN EXCLUDED.${c}_${side}_n ELSE 0 END END`
    );
  };
  const merged = values.flatMap((c) => [
    `${c}_count = ${r}.${c}_count + EXCLUDED.${c}_count`,
    `${c}_sum = CASE WHEN ${r}.${c}_count + EXCLUDED.${c}_count = 0 THEN NULL ELSE coalesce(${r}.${c}_sum, 0) + coalesce(EXCLUDED.${c}_sum, 0) END`,
    `${c}_min = least(${r}.${c}_min, EXCLUDED.${c}_min)`,
    `${c}_max = greatest(${r}.${c}_max, EXCLUDED.${c}_max)`,
    holders(c, 'min'),
    holders(c, 'max'),
    `${c}_gone_min = NULL`,
    `${c}_gone_max = NULL`,
    `${c}_gone_min_n = NULL`,
    `${c}_gone_max_n = NULL`,
  ]);
  // An extreme is lost only when rows left with its value (or below it: a drifted group), no value that came in
  // reaches it (a value that goes and comes back, as when another column of the record changes, leaves the extremes as
  // they were), and no other record still holds it.
  const lost = [
    `${r}.record_count + EXCLUDED.record_count = 0`,
    ...values.flatMap((c) => [
      `(EXCLUDED.${c}_gone_min <= ${r}.${c}_min AND NOT coalesce(EXCLUDED.${c}_min <= ${r}.${c}_min, false)` +
        ` AND (EXCLUDED.${c}_gone_min < ${r}.${c}_min OR ${remaining(c, 'min')} <= 0))`,
      `(EXCLUDED.${c}_gone_max >= ${r}.${c}_max AND NOT coalesce(EXCLUDED.${c}_max >= ${r}.${c}_max, false)` +
        ` AND (EXCLUDED.${c}_gone_max > ${r}.${c}_max OR ${remaining(c, 'max')} <= 0))`,
    ]),
  ];
  return (
    `INSERT INTO ${r} (${columns.join(', ')})` +
    ` SELECT ${[...groupKeys.map((k) => `t.${k}`), 'sum(t.sign)', ...measures].join(', ')} FROM (${withExtremes}) t` +
    ` GROUP BY ${groups} ORDER BY ${groups}` +
    ` ON CONFLICT (${keyColumns(definition).join(', ')}) DO UPDATE SET record_count = ${r}.record_count + EXCLUDED.record_count,` +
    ` ${merged.join(', ')}, stale = ${r}.stale OR ${lost.map((condition) => `coalesce(${condition}, false)`).join(' OR ')}` +
    ' RETURNING stale, ctid'
  );
}

/**
 * The two conditions on record rows `t`, one of which holds for every record of the rollup group `r`, that an index
 * on the records' (company_id, owner_id, dimension columns...) can serve: a plain dimension compared with `=`, a month
 * as the range of its instants or days; or, for the group of missing values, IS NULL (a one-time test on `r` first,
 * so the alternative that cannot hold is not read). The exact group test (`IS NOT DISTINCT FROM` on the computed
 * dimension) stays beside them.
 */
function dimensionRangeSql(dimension: RollupDimension): [present: string, missing: string] {
  const column = `t.${dimension.spec.column}`;
  const group = `r.${dimension.column}`;
  const missing = `${group} IS NULL AND ${column} IS NULL`;
  if (!dimension.bucket) return [`${column} = ${group}`, missing];
  const [from, to] =
    dimension.spec.kind === 'timestamp'
      ? [
          `${group}::timestamp AT TIME ZONE '${ROLLUP_TIME_ZONE}'`,
          `(${group} + interval '1 month') AT TIME ZONE '${ROLLUP_TIME_ZONE}'`,
        ]
      : [group, `(${group} + interval '1 month')::date`];
  return [`${column} >= ${from} AND ${column} < ${to}`, missing];
}

/**
 * Every combination of one condition of each dimension (`dimensionRangeSql`): the group's records are those of the
 * one combination that can hold, each read through the index alone, without an OR that would read them by bitmap.
 */
function dimensionBranches(dimensions: readonly RollupDimension[]): string[][] {
  return dimensions.reduce<string[][]>(
    (branches, dimension) =>
      branches.flatMap((branch) => dimensionRangeSql(dimension).map((c) => [...branch, c])),
    [[]],
  );
}

/**
 * Drops the emptied groups among `lost` (the rows the transaction's upsert left stale, by ctid: the transaction holds
 * their row locks, so nobody else moves them before its commit) and recomputes the extremes of the others (those
 * that lost the last holder of a minimum or maximum: `applySql` marks only those), and how many records hold each,
 * from the records of that group alone: the records of its owner and dimensions, read through the record table's
 * (company_id, owner_id, dimensions) index, then its rule mask. `masked` false: the companies written hold no rules
 * of the record type, every record's mask is 0, and the statement leaves the mask out, so the index (which carries the
 * measures) answers alone.
 */
function repairSql(definition: RollupDefinition, lost: string, masked = true): string[] {
  const source = RECORD_TABLE[definition.entityType];
  const table = definition.table;
  const extremes = [
    ...definition.measures.flatMap((m) => [`${m.column}_min`, `${m.column}_max`]),
    ...extremeCountColumns(definition),
  ];
  const computed = [
    ...definition.measures.flatMap((m) => [`min(t.${m.column})`, `max(t.${m.column})`]),
    ...definition.measures.flatMap((m) => [
      `count(*) FILTER (WHERE t.${m.column} = t.${m.column}_lo)`,
      `count(*) FILTER (WHERE t.${m.column} = t.${m.column}_hi)`,
    ]),
  ];
  // The group's records, each with the group's extremes (a window over them), so the holders of each are counted.
  const withExtremes = definition.measures.flatMap((m) => [
    `min(t.${m.column}) OVER () AS ${m.column}_lo`,
    `max(t.${m.column}) OVER () AS ${m.column}_hi`,
  ]);
  const noRules =
    `NOT EXISTS (SELECT 1 FROM report_criteria_rules b WHERE b.company_id = r.company_id` +
    ` AND b.object_type = '${definition.entityType}' AND '${definition.name}' = ANY(b.rollups))`;
  const groupRecords = [
    't.company_id = r.company_id',
    't.owner_id = r.owner_id',
    ...definition.dimensions.map(
      (d) => `${rollupDimensionOfRecord(d, 't')} IS NOT DISTINCT FROM r.${d.column}`,
    ),
    // Without rules every record's mask is 0: only the group of mask 0 has records, and the records' index holding
    // the group's columns and measures answers alone.
    masked
      ? `((r.rule_mask = 0 AND ${noRules}) OR ${ruleMaskSql(definition, 't')} = r.rule_mask)`
      : 'r.rule_mask = 0',
  ];
  const measures = definition.measures.map((m) => `t.${m.column}`);
  return [
    `DELETE FROM ${table} WHERE ctid = ANY(${lost}) AND record_count = 0`,
    `UPDATE ${table} r SET (${extremes.join(', ')}) = (SELECT ${computed.join(', ')} FROM (SELECT ${[...measures, ...withExtremes].join(', ')}` +
      ` FROM (${dimensionBranches(definition.dimensions)
        .map(
          (branch) =>
            `SELECT ${measures.join(', ')} FROM ${source} t WHERE ${[...groupRecords, ...branch].join(' AND ')}`,
        )
        .join(' UNION ALL ')}) t) t), stale = false WHERE r.ctid = ANY(${lost}) AND r.stale`,
  ];
}

/** The plpgsql variable where the commit-time apply keeps the rows of a rollup that its upsert left stale. */
const lostVariable = (definition: RollupDefinition) => `${definition.name}_lost`;

/**
 * The commit-time step of a transaction that wrote records (`tx`): per record type in one fixed order, each rollup
 * gets the transaction's rows in ONE upsert in key order (then the repair of groups whose extremes may have moved),
 * and the pending rows go. Every writer takes its rollup groups in the same global order, at commit, after its last
 * statement: no deadlock on them, and each group is held only for the commit. Its statements run on generic plans:
 * planned for each commit (their parameters change every time), the criteria masks' CASE expressions cost more to
 * plan than the statements take to run.
 *
 * What a commit pays is mostly starting those statements (a generic plan's expressions are set up again at every
 * execution, and a rule mask's are large), not running them, so a commit starts only the statements it needs:
 * - the upserts compute no rule mask when the companies written hold no rule of the record type (the mask of every
 *   record is then 0, which is what the mask expression would give); the rules cannot change under the commit, since
 *   a rebuild replaces them under the exclusive rollup lock that the writer's statements took shared;
 * - the repair runs for a rollup only when its upsert left a group stale (lost the last holder of an extreme, or
 *   emptied), which the upsert returns: most writes move no extreme, and the repair's statements are not started;
 *   without rules it reads the group's columns and measures from the records' index alone (migration 1765600000000
 *   gave those indexes the measures).
 */
export function applyFunctionSql(replace = false): string {
  const entities = [...new Set(ROLLUPS.map((definition) => definition.entityType))];
  const steps = entities.map((entityType) => {
    const pending = pendingTable(entityType);
    const side = (sign: string) => `(SELECT * FROM ${pending} WHERE txid = tx AND sign ${sign}) AS p`;
    const definitions = rollupsOf(entityType);
    const difference = (definition: RollupDefinition, from: string, minus: string) => {
      const cols = recordColumns(definition).join(', ');
      return `(SELECT ${cols} FROM ${from} EXCEPT ALL SELECT ${cols} FROM ${minus}) AS changed`;
    };
    const upserts = (indent: string, mask?: string) =>
      definitions
        .map(
          (definition) =>
            `${indent}WITH applied AS (${applySql(definition, difference(definition, side('> 0'), side('< 0')), difference(definition, side('< 0'), side('> 0')), mask)})` +
            ` SELECT coalesce(array_agg(ctid) FILTER (WHERE stale), '{}') INTO ${lostVariable(definition)} FROM applied;`,
        )
        .join('\n');
    const repair = (definition: RollupDefinition, masked: boolean) =>
      repairSql(definition, lostVariable(definition), masked)
        .map((step) => `              ${step};`)
        .join('\n');
    const repairs = definitions
      .map(
        (definition) => `          IF cardinality(${lostVariable(definition)}) > 0 THEN
            IF masked THEN
${repair(definition, true)}
            ELSE
${repair(definition, false)}
            END IF;
          END IF;`,
      )
      .join('\n');
    return `      IF EXISTS (SELECT 1 FROM ${pending} WHERE txid = tx) THEN
        masked := EXISTS (SELECT 1 FROM report_criteria_rules b WHERE b.object_type = '${entityType}'
                      AND b.company_id IN (SELECT p.company_id FROM ${pending} p WHERE p.txid = tx));
        IF masked THEN
${upserts('          ')}
        ELSE
${upserts('          ', '0::bigint')}
        END IF;
        IF ${definitions.map((definition) => `cardinality(${lostVariable(definition)}) > 0`).join(' OR ')} THEN
${repairs}
        END IF;
        DELETE FROM ${pending} WHERE txid = tx;
      END IF;`;
  });
  return `
    ${replace ? 'CREATE OR REPLACE FUNCTION' : 'CREATE FUNCTION'} report_rollups_apply(tx xid8) RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
    DECLARE
      masked boolean;
${ROLLUPS.map((definition) => `      ${lostVariable(definition)} tid[];`).join('\n')}
    BEGIN
${steps.join('\n')}
    END
    $fn$;`;
}
