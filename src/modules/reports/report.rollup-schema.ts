import { RECORD_TABLE, type FieldKind, type RecordType } from '../kernel';
import {
  keyColumns,
  recordColumnsOf,
  MAX_MATERIALIZED_RULES,
  rollupColumns,
  rollupLockSql,
  rollupRowsSql,
  rollupsOf,
  ROLLUPS,
  type RollupDefinition,
  type RollupDimension,
  pendingTable,
} from './report.rollups';
import { applyFunctionSql } from './report.rollup-apply';

/*
 * The schema the rollups need, as SQL: their tables, and the statement triggers that keep them exact. Nothing runs
 * it at run time. A migration that installs the rollups holds a literal copy of what `rollupSchemaSql` returned when
 * it was written (a migration never imports live code, or it would change meaning when this file does); the test
 * in test/integration/report-rollups.test.ts builds this schema beside the installed one and compares them, so a
 * change here without a migration fails there. To print it for a new migration, after `npm run build`:
 *   node -e "console.log(require('./dist/src/modules/reports/report.rollup-schema').rollupSchemaSql().join(';\n'))"
 */

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

/**
 * Per measure, how many records hold the group's minimum and maximum, and the transient counts of the rows that left
 * with each (never kept). After the other columns: migration 1765600000000 added them to tables already there.
 */
export function extremeColumnsSql(definition: RollupDefinition): string[] {
  return definition.measures.flatMap((m) => [
    `${m.column}_min_n bigint NOT NULL DEFAULT 0`,
    `${m.column}_max_n bigint NOT NULL DEFAULT 0`,
    `${m.column}_gone_min_n bigint`,
    `${m.column}_gone_max_n bigint`,
  ]);
}

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
      stale boolean NOT NULL DEFAULT false,
      ${extremeColumnsSql(definition).join(',\n      ')}
    );
    CREATE UNIQUE INDEX ${definition.table}_key ON ${definition.table} (${keyColumns(definition).join(', ')}) NULLS NOT DISTINCT;
    CREATE INDEX ${definition.table}_stale ON ${definition.table} (company_id) WHERE stale;`;
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
