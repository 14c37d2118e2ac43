import { RECORD_TABLE, type FieldKind, type RecordType } from '../kernel';
import {
  keyColumns,
  MAX_MATERIALIZED_RULES,
  recordColumns,
  recordKeys,
  rollupColumns,
  rollupDimensionOfRecord,
  rollupLockSql,
  rollupRowsSql,
  rollupsOf,
  ROLLUPS,
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
 * Drops the emptied groups of the companies written and recomputes the extremes of their stale groups from the
 * records as they are now: one grouped pass over the records of the owners concerned, not one per group.
 */
function repairSql(definition: RollupDefinition, companies: string): string[] {
  const source = RECORD_TABLE[definition.entityType];
  const table = definition.table;
  const extremes = definition.measures.flatMap((m) => [`${m.column}_min`, `${m.column}_max`]);
  const computed = definition.measures.flatMap((m) => [
    `min(t.${m.column}) AS ${m.column}_min`,
    `max(t.${m.column}) AS ${m.column}_max`,
  ]);
  const keys = recordKeys(definition, 't').map((sql, i) => `${sql} AS ${keyColumns(definition)[i]}`);
  const stale = `stale AND company_id = ANY(${companies})`;
  const sameGroup = (left: string, right: string) =>
    [
      `${left}.company_id = ${right}.company_id`,
      `${left}.owner_id = ${right}.owner_id`,
      ...definition.dimensions.map((d) => `${left}.${d.column} IS NOT DISTINCT FROM ${right}.${d.column}`),
    ].join(' AND ');
  // The records of the stale groups only (owner index, then the dimensions), before their rule masks are computed.
  const staleRecords = [
    `EXISTS (SELECT 1 FROM ${table} g WHERE g.stale AND g.company_id = t.company_id AND g.owner_id = t.owner_id`,
    ...definition.dimensions.map(
      (d) => ` AND g.${d.column} IS NOT DISTINCT FROM ${rollupDimensionOfRecord(d, 't')}`,
    ),
    ')',
  ].join('');
  return [
    `DELETE FROM ${table} WHERE ${stale} AND record_count = 0`,
    `UPDATE ${table} r SET (${extremes.join(', ')}) = (${extremes.map((e) => `s.${e}`).join(', ')}), stale = false` +
      ` FROM (SELECT ${[...keys, ...computed].join(', ')} FROM ${source} t` +
      ` WHERE t.company_id = ANY(${companies}) AND ${staleRecords}` +
      ` GROUP BY ${keys.map((_, i) => i + 1).join(', ')}) s` +
      ` WHERE r.stale AND r.company_id = ANY(${companies}) AND r.rule_mask = s.rule_mask AND ${sameGroup('r', 's')}`,
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

/**
 * One statement trigger per record table and event keeps every rollup of the table exact in the writing transaction:
 * it adds the new rows, takes the old ones out, then repairs the groups whose extremes may have moved. Updates that
 * leave a rollup's columns alone do not touch it.
 */
function triggerSql(entityType: RecordType): string {
  const table = RECORD_TABLE[entityType];
  const definitions = rollupsOf(entityType);
  // Rows compared on the columns a rollup reads (not on id): unchanged rows cancel out, a changed id changes nothing.
  const difference = (definition: RollupDefinition, from: string, minus: string) => {
    const cols = recordColumns(definition).join(', ');
    return `(SELECT ${cols} FROM ${from} EXCEPT ALL SELECT ${cols} FROM ${minus}) AS changed`;
  };
  const steps = (definition: RollupDefinition, event: 'INSERT' | 'UPDATE' | 'DELETE') => {
    const apply =
      event === 'INSERT'
        ? applySql(definition, 'new_rows', null)
        : event === 'DELETE'
          ? applySql(definition, null, 'old_rows')
          : applySql(
              definition,
              difference(definition, 'new_rows', 'old_rows'),
              difference(definition, 'old_rows', 'new_rows'),
            );
    return [apply, ...(event === 'INSERT' ? [] : repairSql(definition, 'companies'))]
      .map((step) => `      ${step};`)
      .join('\n');
  };
  const companiesOf = {
    INSERT: 'SELECT DISTINCT company_id FROM new_rows ORDER BY 1',
    DELETE: 'SELECT DISTINCT company_id FROM old_rows ORDER BY 1',
    // A record moved to another company changes both.
    UPDATE: 'SELECT company_id FROM old_rows UNION SELECT company_id FROM new_rows ORDER BY 1',
  };
  const body = (['INSERT', 'UPDATE', 'DELETE'] as const)
    .map(
      (event) => `    IF TG_OP = '${event}' THEN
      companies := ARRAY(${companiesOf[event]});
      IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'write ${table} under READ COMMITTED: report rollups read the current rule bits, which an older snapshot may not hold';
      END IF;
      PERFORM pg_advisory_xact_lock_shared(${rollupLockSql(table, 'c')}) FROM unnest(companies) AS c;
${definitions.map((definition) => steps(definition, event)).join('\n')}
    END IF;`,
    )
    .join('\n');
  const fn = `report_rollups_${table}`;
  return `
    CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $fn$
    DECLARE
      companies uuid[];
    BEGIN
${body}
      RETURN NULL;
    END
    $fn$;
    CREATE TRIGGER ${fn}_insert AFTER INSERT ON ${table} REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();
    CREATE TRIGGER ${fn}_update AFTER UPDATE ON ${table} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();
    CREATE TRIGGER ${fn}_delete AFTER DELETE ON ${table} REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();
    CREATE FUNCTION ${fn}_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      ${definitions.map((definition) => `DELETE FROM ${definition.table};`).join(' ')}
      RETURN NULL;
    END
    $fn$;
    CREATE TRIGGER ${fn}_truncate AFTER TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}_truncate();`;
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
    ...entities.map(triggerSql),
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
    ...ROLLUPS.map((definition) => `DROP TABLE IF EXISTS ${definition.table}`),
    'DROP TABLE IF EXISTS report_criteria_rules',
  ];
}
