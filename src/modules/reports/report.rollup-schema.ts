import { RECORD_TABLE, type FieldKind, type RecordType } from '../kernel';
import {
  keyColumns,
  recordColumnsOf,
  MAX_MATERIALIZED_RULES,
  recordColumns,
  recordKeys,
  rollupColumns,
  ROLLUP_TIME_ZONE,
  rollupDimensionOfRecord,
  rollupLockSql,
  rollupRowsSql,
  rollupsOf,
  ROLLUPS,
  ruleMaskSql,
  type RollupDefinition,
  type RollupDimension,
} from './report.rollups';

/*
 * The schema the rollups need, as SQL: their tables, and the statement triggers that keep them exact. Nothing runs
 * it at run time. A migration that installs the rollups holds a literal copy of what `rollupSchemaSql` returned when
 * it was written (a migration never imports live code, or it would change meaning when this file does); the test
 * in test/integration/report-rollups.test.ts builds this schema beside the installed one and compares them, so a
 * change here without a migration fails there. To print it for a new migration, after `npm run build`:
 *   node -e "console.log(require('./dist/src/modules/reports/report.rollup-schema').rollupSchemaSql().join(';\n'))"
 */

/**
 * Applies a statement's change to the rollup in ONE upsert, its groups in key order: the rows that came (`came`, a
 * relation of record rows) count +1, the rows that went (`gone`) -1. One sorted pass means two writers lock the groups
 * they share in the same order (no deadlock when two updates move records in opposite directions). A group that may
 * have lost its minimum or maximum, or emptied, is marked stale for `repairSql`; the extremes that left travel in the
 * transient `*_gone_*` columns, which never keep a value.
 */
function applySql(definition: RollupDefinition, came: string | null, gone: string | null): string {
  const r = definition.table;
  const cols = recordColumns(definition);
  const sides = [
    ...(came ? [`SELECT 1 AS sign, ${cols.join(', ')} FROM ${came}`] : []),
    ...(gone ? [`SELECT -1 AS sign, ${cols.join(', ')} FROM ${gone}`] : []),
  ];
  const keys = recordKeys(definition, 't');
  const measures = definition.measures.flatMap((m) => {
    const v = `t.${m.column}`;
    return [
      `coalesce(sum(t.sign) FILTER (WHERE ${v} IS NOT NULL), 0)`,
      `sum(t.sign * ${v})`,
      `min(${v}) FILTER (WHERE t.sign > 0)`,
      `max(${v}) FILTER (WHERE t.sign > 0)`,
      `min(${v}) FILTER (WHERE t.sign < 0)`,
      `max(${v}) FILTER (WHERE t.sign < 0)`,
    ];
  });
  const columns = [
    ...keyColumns(definition),
    'record_count',
    ...definition.measures.flatMap((m) => {
      const c = m.column;
      return [`${c}_count`, `${c}_sum`, `${c}_min`, `${c}_max`, `${c}_gone_min`, `${c}_gone_max`];
    }),
  ];
  const groups = keys.map((_, i) => `${i + 1}`).join(', ');
  const merged = definition.measures.flatMap((m) => {
    const c = m.column;
    return [
      `${c}_count = ${r}.${c}_count + EXCLUDED.${c}_count`,
      `${c}_sum = CASE WHEN ${r}.${c}_count + EXCLUDED.${c}_count = 0 THEN NULL ELSE coalesce(${r}.${c}_sum, 0) + coalesce(EXCLUDED.${c}_sum, 0) END`,
      `${c}_min = least(${r}.${c}_min, EXCLUDED.${c}_min)`,
      `${c}_max = greatest(${r}.${c}_max, EXCLUDED.${c}_max)`,
      `${c}_gone_min = NULL`,
      `${c}_gone_max = NULL`,
    ];
  });
  // An extreme may have left only when no value that came in reaches it (a value that goes and comes back, as when
  // another column of the record changes, leaves the extremes as they were).
  const lost = [
    `${r}.record_count + EXCLUDED.record_count = 0`,
    ...definition.measures.flatMap((m) => {
      const c = m.column;
      return [
        `(EXCLUDED.${c}_gone_min <= ${r}.${c}_min AND NOT coalesce(EXCLUDED.${c}_min <= ${r}.${c}_min, false))`,
        `(EXCLUDED.${c}_gone_max >= ${r}.${c}_max AND NOT coalesce(EXCLUDED.${c}_max >= ${r}.${c}_max, false))`,
      ];
    }),
  ];
  return (
    `INSERT INTO ${r} (${columns.join(', ')})` +
    ` SELECT ${[...keys, 'sum(t.sign)', ...measures].join(', ')} FROM (${sides.join(' UNION ALL ')}) t` +
    ` GROUP BY ${groups} ORDER BY ${groups}` +
    ` ON CONFLICT (${keyColumns(definition).join(', ')}) DO UPDATE SET record_count = ${r}.record_count + EXCLUDED.record_count,` +
    ` ${merged.join(', ')}, stale = ${r}.stale OR ${lost.map((condition) => `coalesce(${condition}, false)`).join(' OR ')}`
  );
}

/**
 * A condition on record rows `t` that holds for every record of the rollup group `r` and that an index on the
 * records' (company_id, owner_id, dimension columns...) can serve: a plain dimension compared with `=` (or IS NULL
 * for the group of missing values), a month as the range of its instants or days. The exact group test
 * (`IS NOT DISTINCT FROM` on the computed dimension) stays beside it.
 */
function dimensionRangeSql(dimension: RollupDimension): string {
  const column = `t.${dimension.spec.column}`;
  const group = `r.${dimension.column}`;
  const missing = `(${group} IS NULL AND ${column} IS NULL)`;
  if (!dimension.bucket) return `(${column} = ${group} OR ${missing})`;
  const [from, to] =
    dimension.spec.kind === 'timestamp'
      ? [
          `${group}::timestamp AT TIME ZONE '${ROLLUP_TIME_ZONE}'`,
          `(${group} + interval '1 month') AT TIME ZONE '${ROLLUP_TIME_ZONE}'`,
        ]
      : [group, `(${group} + interval '1 month')::date`];
  return `((${column} >= ${from} AND ${column} < ${to}) OR ${missing})`;
}

/**
 * Drops the emptied groups of the companies written and recomputes the extremes of their stale groups (those that
 * lost a minimum or maximum: `applySql` marks only those) from the records of that group alone: per stale group,
 * the records of its owner and dimensions, found through the record table's (company_id, owner_id, dimensions)
 * index, then its rule mask. The mask is computed per record only when the company holds rules in this rollup;
 * without them every record's mask is 0.
 */
function repairSql(definition: RollupDefinition, companies: string): string[] {
  const source = RECORD_TABLE[definition.entityType];
  const table = definition.table;
  const extremes = definition.measures.flatMap((m) => [`${m.column}_min`, `${m.column}_max`]);
  const computed = definition.measures.flatMap((m) => [`min(t.${m.column})`, `max(t.${m.column})`]);
  const stale = `stale AND company_id = ANY(${companies})`;
  const noRules =
    `NOT EXISTS (SELECT 1 FROM report_criteria_rules b WHERE b.company_id = r.company_id` +
    ` AND b.object_type = '${definition.entityType}' AND '${definition.name}' = ANY(b.rollups))`;
  const groupRecords = [
    't.company_id = r.company_id',
    't.owner_id = r.owner_id',
    ...definition.dimensions.map(dimensionRangeSql),
    ...definition.dimensions.map(
      (d) => `${rollupDimensionOfRecord(d, 't')} IS NOT DISTINCT FROM r.${d.column}`,
    ),
    `((r.rule_mask = 0 AND ${noRules}) OR ${ruleMaskSql(definition, 't')} = r.rule_mask)`,
  ];
  return [
    `DELETE FROM ${table} WHERE ${stale} AND record_count = 0`,
    `UPDATE ${table} r SET (${extremes.join(', ')}) = (SELECT ${computed.join(', ')} FROM ${source} t` +
      ` WHERE ${groupRecords.join(' AND ')}), stale = false WHERE r.stale AND r.company_id = ANY(${companies})`,
  ];
}

/** The column type a plain dimension keeps (the record's own), so it compares and sorts as in the records. */
const SQL_TYPE: Record<FieldKind, string> = {
  text: 'text',
  enum: 'text',
  uuid: 'uuid',
  int: 'integer',
  number: 'numeric',
  money: 'numeric',
  day: 'date',
  timestamp: 'timestamptz',
};

/** The rollup table, its unique key and the index that finds stale groups. */
function tableSql(definition: RollupDefinition): string {
  const dimensionType = (d: RollupDimension) => (d.bucket ? 'date' : SQL_TYPE[d.spec.kind]);
  const measures = definition.measures.flatMap((m) => [
    `${m.column}_count bigint NOT NULL DEFAULT 0`,
    `${m.column}_sum numeric`,
    `${m.column}_min numeric`,
    `${m.column}_max numeric`,
    `${m.column}_gone_min numeric`,
    `${m.column}_gone_max numeric`,
  ]);
  return `
    CREATE TABLE ${definition.table} (
      company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
      owner_id uuid NOT NULL,
      rule_mask bigint NOT NULL,
      ${definition.dimensions.map((d) => `${d.column} ${dimensionType(d)}`).join(',\n      ')},
      record_count bigint NOT NULL,
      ${measures.join(',\n      ')},
      stale boolean NOT NULL DEFAULT false
    );
    CREATE UNIQUE INDEX ${definition.table}_key ON ${definition.table} (${keyColumns(definition).join(', ')}) NULLS NOT DISTINCT;
    CREATE INDEX ${definition.table}_stale ON ${definition.table} (company_id) WHERE stale;`;
}

/** The unlogged table where a transaction's statements leave the record rows its commit applies to the rollups. */
export function pendingTable(entityType: RecordType): string {
  return `report_rollup_pending_${RECORD_TABLE[entityType]}`;
}

/**
 * Rows that came (+1) and went (-1), as the record columns the type's rollups read, per writing transaction (`txid`).
 * Typed as the record table's columns (a CREATE TABLE AS that reads no rows).
 */
function pendingTableSql(entityType: RecordType): string {
  const table = pendingTable(entityType);
  return `
    CREATE UNLOGGED TABLE ${table} AS SELECT pg_current_xact_id() AS txid, 1::smallint AS sign, ${recordColumnsOf(entityType).join(', ')} FROM ${RECORD_TABLE[entityType]} WITH NO DATA;
    CREATE INDEX ${table}_txid ON ${table} (txid);`;
}

/**
 * One statement trigger per record table and event records what the statement changed (the rows that came and went,
 * compared on the columns a rollup reads, so unchanged rows cancel out and a change to other columns records nothing)
 * in the pending table, and marks the transaction for the commit-time step (`record_changes_pending`, whose deferred
 * trigger calls `report_rollups_apply`). No rollup row is locked before the commit: two transactions writing records
 * of one company in any order never wait on each other's rollup groups while they still run statements.
 */
function triggerSql(entityType: RecordType, replace = false): string {
  const table = RECORD_TABLE[entityType];
  const cols = recordColumnsOf(entityType).join(', ');
  const staged = {
    INSERT: `SELECT tx, 1, ${cols} FROM new_rows`,
    DELETE: `SELECT tx, -1, ${cols} FROM old_rows`,
    UPDATE:
      `SELECT tx, 1, ${cols} FROM (SELECT ${cols} FROM new_rows EXCEPT ALL SELECT ${cols} FROM old_rows) AS came` +
      ` UNION ALL SELECT tx, -1, ${cols} FROM (SELECT ${cols} FROM old_rows EXCEPT ALL SELECT ${cols} FROM new_rows) AS gone`,
  };
  const companiesOf = {
    INSERT: 'SELECT DISTINCT company_id FROM new_rows ORDER BY 1',
    DELETE: 'SELECT DISTINCT company_id FROM old_rows ORDER BY 1',
    // A record moved to another company changes both.
    UPDATE: 'SELECT company_id FROM old_rows UNION SELECT company_id FROM new_rows ORDER BY 1',
  };
  const body = (['INSERT', 'UPDATE', 'DELETE'] as const)
    .map(
      (event) => `      IF TG_OP = '${event}' THEN
        companies := ARRAY(${companiesOf[event]});
        INSERT INTO ${pendingTable(entityType)} (txid, sign, ${cols}) ${staged[event]};
      END IF;`,
    )
    .join('\n');
  const fn = `report_rollups_${table}`;
  const create = replace ? 'CREATE OR REPLACE FUNCTION' : 'CREATE FUNCTION';
  const functions = `
    ${create} ${fn}() RETURNS trigger LANGUAGE plpgsql AS $fn$
    DECLARE
      companies uuid[];
      tx xid8 := pg_current_xact_id();
      staged bigint;
    BEGIN
      IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'write ${table} under READ COMMITTED: report rollups read the current rule bits, which an older snapshot may not hold';
      END IF;
${body}
      GET DIAGNOSTICS staged = ROW_COUNT;
      PERFORM pg_advisory_xact_lock_shared(${rollupLockSql(table, 'c')}) FROM unnest(companies) AS c;
      IF staged > 0 THEN
        INSERT INTO record_changes_pending (txid) VALUES (tx) ON CONFLICT DO NOTHING;
      END IF;
      RETURN NULL;
    END
    $fn$;
    ${create} ${fn}_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      ${rollupsOf(entityType)
        .map((definition) => `DELETE FROM ${definition.table};`)
        .join(' ')} DELETE FROM ${pendingTable(entityType)} WHERE txid = pg_current_xact_id();
      RETURN NULL;
    END
    $fn$;`;
  if (replace) return functions;
  return `${functions}
    CREATE TRIGGER ${fn}_insert AFTER INSERT ON ${table} REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();
    CREATE TRIGGER ${fn}_update AFTER UPDATE ON ${table} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();
    CREATE TRIGGER ${fn}_delete AFTER DELETE ON ${table} REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();
    CREATE TRIGGER ${fn}_truncate AFTER TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}_truncate();`;
}

/**
 * The commit-time step of a transaction that wrote records (`tx`): per record type in one fixed order, each rollup
 * gets the transaction's rows in ONE upsert in key order (then the repair of groups whose extremes may have moved),
 * and the pending rows go. Every writer takes its rollup groups in the same global order, at commit, after its last
 * statement: no deadlock on them, and each group is held only for the commit. Its statements run on generic plans:
 * planned for each commit (their parameters change every time), the criteria masks' CASE expressions cost more to
 * plan than the statements take to run.
 */
function applyFunctionSql(replace = false): string {
  const entities = [...new Set(ROLLUPS.map((definition) => definition.entityType))];
  const steps = entities.map((entityType) => {
    const pending = pendingTable(entityType);
    const side = (sign: string) => `(SELECT * FROM ${pending} WHERE txid = tx AND sign ${sign}) AS p`;
    const definitions = rollupsOf(entityType);
    const difference = (definition: RollupDefinition, from: string, minus: string) => {
      const cols = recordColumns(definition).join(', ');
      return `(SELECT ${cols} FROM ${from} EXCEPT ALL SELECT ${cols} FROM ${minus}) AS changed`;
    };
    return `      IF EXISTS (SELECT 1 FROM ${pending} WHERE txid = tx) THEN
${definitions
  .map(
    (definition) =>
      `        ${applySql(definition, difference(definition, side('> 0'), side('< 0')), difference(definition, side('< 0'), side('> 0')))};`,
  )
  .join('\n')}
        companies := ARRAY(SELECT DISTINCT company_id FROM ${pending} WHERE txid = tx AND sign < 0 ORDER BY 1);
        IF cardinality(companies) > 0 THEN
${definitions
  .flatMap((definition) => repairSql(definition, 'companies'))
  .map((step) => `          ${step};`)
  .join('\n')}
        END IF;
        DELETE FROM ${pending} WHERE txid = tx;
      END IF;`;
  });
  return `
    ${replace ? 'CREATE OR REPLACE FUNCTION' : 'CREATE FUNCTION'} report_rollups_apply(tx xid8) RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
    DECLARE
      companies uuid[];
    BEGIN
${steps.join('\n')}
    END
    $fn$;`;
}

/**
 * What moved the rollups' work from each statement to the commit (migration 1765300000000): the pending tables, the
 * statement triggers' functions as they are now, and the commit-time apply. Printed into that migration.
 */
export function rollupCommitTimeSql(): string[] {
  const entities = [...new Set(ROLLUPS.map((definition) => definition.entityType))];
  return [
    ...entities.map(pendingTableSql),
    ...entities.map((entityType) => triggerSql(entityType, true)),
    applyFunctionSql(true),
  ];
}

/**
 * The commit-time apply as it is now, whose repair reads only the stale groups' own records (migration
 * 1765400000000, printed there).
 */
export function rollupApplySql(): string {
  return applyFunctionSql(true);
}

/** The rollups' schema: tables, filled from the records already there, and the triggers that keep them exact. */
export function rollupSchemaSql(): string[] {
  const entities = [...new Set(ROLLUPS.map((definition) => definition.entityType))];
  // Triggers first, in the migration's transaction: writes wait for it to commit, so none is missed by the fill.
  return [
    `CREATE TABLE report_criteria_rules (
      company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
      object_type text NOT NULL,
      bit smallint NOT NULL CHECK (bit BETWEEN 0 AND ${MAX_MATERIALIZED_RULES - 1}),
      rule_id uuid NOT NULL,
      conditions jsonb NOT NULL,
      bound jsonb NOT NULL,
      fields text[] NOT NULL,
      rollups text[] NOT NULL,
      PRIMARY KEY (company_id, object_type, bit),
      UNIQUE (company_id, object_type, rule_id)
    )`,
    ...ROLLUPS.map(tableSql),
    ...entities.map(pendingTableSql),
    ...entities.map((entityType) => triggerSql(entityType)),
    applyFunctionSql(),
    ...ROLLUPS.map(
      (definition) =>
        `INSERT INTO ${definition.table} (${rollupColumns(definition).join(', ')}) ${rollupRowsSql(definition, RECORD_TABLE[definition.entityType])}`,
    ),
  ];
}

export function dropRollupSchemaSql(): string[] {
  const tables = [...new Set(ROLLUPS.map((definition) => RECORD_TABLE[definition.entityType]))];
  return [
    ...tables.map((table) => `DROP FUNCTION IF EXISTS report_rollups_${table}() CASCADE`),
    ...tables.map((table) => `DROP FUNCTION IF EXISTS report_rollups_${table}_truncate() CASCADE`),
    'DROP FUNCTION IF EXISTS report_rollups_apply(xid8)',
    ...tables.map((table) => `DROP TABLE IF EXISTS report_rollup_pending_${table}`),
    ...ROLLUPS.map((definition) => `DROP TABLE IF EXISTS ${definition.table}`),
    'DROP TABLE IF EXISTS report_criteria_rules',
  ];
}
