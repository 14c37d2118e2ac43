import { findField, RECORD_TABLE, type FieldSpec, type RecordType } from '../kernel';

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
 * The presets, smallest first (the first rollup that covers a report answers it). Changing this list changes the
 * schema: it needs a new migration that drops the old tables and triggers and installs these (`rollupSchemaSql`).
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

const keyColumns = (definition: RollupDefinition) => [
  'company_id',
  'owner_id',
  ...definition.dimensions.map((d) => d.column),
];

/** The aggregate columns, and how each is computed from record rows `alias`. */
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
      ];
    }),
  ];
}

/** SELECT of the rollup's rows computed from the record rows of `from` (aliased `t`) that pass `where`. */
export function rollupRowsSql(definition: RollupDefinition, from: string, where = 'true'): string {
  const keys = [
    't.company_id',
    't.owner_id',
    ...definition.dimensions.map((d) => rollupDimensionOfRecord(d, 't')),
  ];
  const aggregates = aggregateColumns(definition, 't').map(([, sql]) => sql);
  const groups = keys.map((_, i) => `${i + 1}`).join(', ');
  return `SELECT ${[...keys, ...aggregates].join(', ')} FROM ${from} t WHERE ${where} GROUP BY ${groups} ORDER BY ${groups}`;
}

/** Company and owner are never null (and so can use the key's index); a dimension may be. */
const sameKey = (definition: RollupDefinition, left: string, right: string) =>
  [
    `${left}.company_id = ${right}.company_id`,
    `${left}.owner_id = ${right}.owner_id`,
    ...definition.dimensions.map((d) => `${left}.${d.column} IS NOT DISTINCT FROM ${right}.${d.column}`),
  ].join(' AND ');

/** Adds the record rows of `from` to the rollup (insert, or the new side of an update). */
function addSql(definition: RollupDefinition, from: string): string {
  const columns = [...keyColumns(definition), ...aggregateColumns(definition, 't').map(([column]) => column)];
  const r = definition.table;
  const merged = definition.measures.flatMap((measure) => {
    const c = measure.column;
    return [
      `${c}_count = ${r}.${c}_count + EXCLUDED.${c}_count`,
      `${c}_sum = CASE WHEN EXCLUDED.${c}_count = 0 THEN ${r}.${c}_sum WHEN ${r}.${c}_count = 0 THEN EXCLUDED.${c}_sum ELSE ${r}.${c}_sum + EXCLUDED.${c}_sum END`,
      `${c}_min = least(${r}.${c}_min, EXCLUDED.${c}_min)`,
      `${c}_max = greatest(${r}.${c}_max, EXCLUDED.${c}_max)`,
    ];
  });
  return (
    `INSERT INTO ${r} (${columns.join(', ')}) ${rollupRowsSql(definition, from)}` +
    ` ON CONFLICT (${keyColumns(definition).join(', ')}) DO UPDATE SET record_count = ${r}.record_count + EXCLUDED.record_count, ${merged.join(', ')}`
  );
}

/**
 * Takes the record rows of `from` out of the rollup (delete, or the old side of an update). A group whose minimum or
 * maximum may have left, or that is now empty, is marked stale: `repairSql` recomputes it from the records.
 */
function subtractSql(definition: RollupDefinition, from: string): string {
  const columns = [...keyColumns(definition), ...aggregateColumns(definition, 't').map(([column]) => column)];
  const sets = definition.measures.flatMap((measure) => {
    const c = measure.column;
    return [
      `${c}_count = r.${c}_count - d.${c}_count`,
      `${c}_sum = CASE WHEN r.${c}_count = d.${c}_count THEN NULL ELSE r.${c}_sum - coalesce(d.${c}_sum, 0) END`,
    ];
  });
  const lost = [
    'r.record_count = d.record_count',
    ...definition.measures.flatMap((m) => [
      `d.${m.column}_min <= r.${m.column}_min`,
      `d.${m.column}_max >= r.${m.column}_max`,
    ]),
  ];
  return (
    `WITH d (${columns.join(', ')}) AS (${rollupRowsSql(definition, from)})` +
    ` UPDATE ${definition.table} r SET record_count = r.record_count - d.record_count, ${sets.join(', ')},` +
    ` stale = r.stale OR ${lost.map((condition) => `coalesce(${condition}, false)`).join(' OR ')}` +
    ` FROM d WHERE ${sameKey(definition, 'r', 'd')}`
  );
}

/** Drops the emptied groups and recomputes the extremes of the stale ones from the records, as they are now. */
function repairSql(definition: RollupDefinition): string[] {
  const source = RECORD_TABLE[definition.entityType];
  const extremes = definition.measures.flatMap((m) => [`${m.column}_min`, `${m.column}_max`]);
  const computed = definition.measures.flatMap((m) => [`min(t.${m.column})`, `max(t.${m.column})`]);
  const match = [
    't.company_id = r.company_id',
    't.owner_id = r.owner_id',
    ...definition.dimensions.map(
      (d) => `${rollupDimensionOfRecord(d, 't')} IS NOT DISTINCT FROM r.${d.column}`,
    ),
  ].join(' AND ');
  return [
    `DELETE FROM ${definition.table} WHERE stale AND record_count = 0`,
    `UPDATE ${definition.table} r SET (${extremes.join(', ')}) = (SELECT ${computed.join(', ')} FROM ${source} t WHERE ${match}), stale = false WHERE r.stale`,
  ];
}

/** The rollup table, its unique key and the index that finds stale groups. */
function tableSql(definition: RollupDefinition): string {
  const dimensionType = (d: RollupDimension) =>
    d.bucket
      ? 'date'
      : (({ enum: 'text', text: 'text', uuid: 'uuid', int: 'integer' } as Record<string, string>)[
          d.spec.kind
        ] ?? 'text');
  const measures = definition.measures.flatMap((m) => [
    `${m.column}_count bigint NOT NULL DEFAULT 0`,
    `${m.column}_sum numeric`,
    `${m.column}_min numeric`,
    `${m.column}_max numeric`,
  ]);
  return `
    CREATE TABLE ${definition.table} (
      company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
      owner_id uuid NOT NULL,
      ${definition.dimensions.map((d) => `${d.column} ${dimensionType(d)}`).join(',\n      ')},
      record_count bigint NOT NULL,
      ${measures.join(',\n      ')},
      stale boolean NOT NULL DEFAULT false
    );
    CREATE UNIQUE INDEX ${definition.table}_key ON ${definition.table} (${keyColumns(definition).join(', ')}) NULLS NOT DISTINCT;
    CREATE INDEX ${definition.table}_stale ON ${definition.table} (company_id) WHERE stale;`;
}

/** Lock key of one record table's rollups in one company: writes take it shared, a rebuild exclusively. */
export function rollupLockSql(table: string, companyColumn: string): string {
  return `hashtextextended('report_rollups:${table}:' || ${companyColumn}, 0)`;
}

/**
 * One statement trigger per record table and event keeps every rollup of the table exact in the writing transaction:
 * it adds the new rows, takes the old ones out, then repairs the groups whose extremes may have moved. Updates that
 * leave a rollup's columns alone do not touch it.
 */
function triggerSql(entityType: RecordType): string {
  const table = RECORD_TABLE[entityType];
  const definitions = rollupsOf(entityType);
  const lock = (rows: string) =>
    `PERFORM pg_advisory_xact_lock_shared(${rollupLockSql(table, 'c.company_id')}) FROM (SELECT DISTINCT company_id FROM ${rows} ORDER BY 1) c;`;
  const changed = (definition: RollupDefinition, side: 'o' | 'n') => {
    const columns = [
      'company_id',
      'owner_id',
      ...definition.dimensions.map((d) => d.spec.column),
      ...definition.measures.map((m) => m.column),
    ];
    const row = (alias: string) => `(${columns.map((c) => `${alias}.${c}`).join(', ')})`;
    return `(SELECT ${side}.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE ${row('o')} IS DISTINCT FROM ${row('n')})`;
  };
  const statements = (definition: RollupDefinition, event: 'INSERT' | 'UPDATE' | 'DELETE') => {
    const steps: string[] = [];
    if (event === 'DELETE') steps.push(subtractSql(definition, 'old_rows'));
    if (event === 'UPDATE') steps.push(subtractSql(definition, changed(definition, 'o')));
    if (event === 'INSERT') steps.push(addSql(definition, 'new_rows'));
    if (event === 'UPDATE') steps.push(addSql(definition, changed(definition, 'n')));
    if (event !== 'INSERT') steps.push(...repairSql(definition));
    return steps.map((step) => `    ${step};`).join('\n');
  };
  const body = (['INSERT', 'UPDATE', 'DELETE'] as const)
    .map(
      (event) => `  IF TG_OP = '${event}' THEN
    ${lock(event === 'INSERT' ? 'new_rows' : 'old_rows')}
${definitions.map((definition) => statements(definition, event)).join('\n')}
  END IF;`,
    )
    .join('\n');
  const fn = `report_rollups_${table}`;
  return `
    CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $fn$
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
  return [
    ...ROLLUPS.map(tableSql),
    ...ROLLUPS.map((definition) => {
      const columns = [
        ...keyColumns(definition),
        ...aggregateColumns(definition, 't').map(([column]) => column),
      ];
      return `INSERT INTO ${definition.table} (${columns.join(', ')}) ${rollupRowsSql(definition, RECORD_TABLE[definition.entityType])}`;
    }),
    ...entities.map(triggerSql),
  ];
}

export function dropRollupSchemaSql(): string[] {
  const tables = [...new Set(ROLLUPS.map((definition) => RECORD_TABLE[definition.entityType]))];
  return [
    ...tables.map((table) => `DROP FUNCTION IF EXISTS report_rollups_${table}() CASCADE`),
    ...tables.map((table) => `DROP FUNCTION IF EXISTS report_rollups_${table}_truncate() CASCADE`),
    ...ROLLUPS.map((definition) => `DROP TABLE IF EXISTS ${definition.table}`),
  ];
}
