import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { DataSource } from 'typeorm';
import { createLogger } from '../../platform/logging/logger';
import { LocalFileStorage } from '../../platform/storage/local-file.storage';
import type { BenchContext, BenchScenario, LatencyStats } from '../kernel';
import { AuditPartitionManager } from './audit-partition.manager';
import { monthStart, partitionNameOf } from './audit-partition.model';

const MONTHS = 18;
const FLAT_TABLE = 'bench_audit_logs_flat';

function auditSizes(scale: number) {
  return {
    companies: 5,
    users: 50,
    accounts: 0,
    leads: 0,
    deals: 0,
    auditRows: Math.max(180_000, Math.round(10_000_000 * scale)),
  };
}

/**
 * Audit rows as the CRM writes them, oldest first: creates and deletes carry the record, updates one or two fields.
 * Spread evenly over the last MONTHS months (this one included) among the seeded companies and users.
 */
async function seedAuditRows(db: DataSource, rows: number, log: (message: string) => void): Promise<void> {
  const marker = `${rows} rows ending ${monthStart(new Date()).toISOString().slice(0, 7)}`;
  const [state] = await db.query<Array<{ marker: string | null }>>(
    `SELECT obj_description(to_regclass('${FLAT_TABLE}'), 'pg_class') AS marker`,
  );
  if (state?.marker === marker) {
    log(`audit data already holds ${marker}`);
    return;
  }
  log(`seeding ${rows} audit rows over ${MONTHS} months (and the same into an unpartitioned table) ...`);
  const started = Date.now();
  const first = monthStart(new Date(), -(MONTHS - 1));
  const end = new Date(Math.min(Date.now(), monthStart(new Date(), 1).getTime() - 1));
  await db.query(`DROP TABLE IF EXISTS ${FLAT_TABLE}`);
  await db.query('TRUNCATE audit_logs');
  await db.query('DELETE FROM audit_archives');
  // One row per month first: ensurePartitions then makes every month's partition, as it would in production.
  const partitions = manager(db, mkdtempSync(join(tmpdir(), 'audit-bench-')));
  await db.query(
    `INSERT INTO audit_logs (company_id, action, object_type, occurred_at)
     SELECT (SELECT id FROM companies LIMIT 1), 'CREATE', 'LEAD', $1::timestamptz + (m * interval '1 month')
       FROM generate_series(0, ${MONTHS - 1}) AS m`,
    [first.toISOString()],
  );
  await partitions.ensurePartitions(3);
  await db.query('TRUNCATE audit_logs');
  const spanSeconds = (end.getTime() - first.getTime()) / 1000;
  const batch = 500_000;
  for (let from = 1; from <= rows; from += batch) {
    const to = Math.min(rows, from + batch - 1);
    await db.query(
      `WITH people AS (SELECT array_agg(id ORDER BY id) AS ids, array_agg(company_id ORDER BY id) AS companies FROM users)
       INSERT INTO audit_logs (occurred_at, company_id, actor_id, action, object_type, object_id, changes)
       SELECT $1::timestamptz + (n::float8 / $2::float8 * $3::float8) * interval '1 second',
              p.companies[1 + n % array_length(p.ids, 1)], p.ids[1 + n % array_length(p.ids, 1)],
              CASE WHEN n % 20 < 4 THEN 'CREATE' WHEN n % 20 = 4 THEN 'DELETE' ELSE 'UPDATE' END,
              (ARRAY['LEAD','DEAL','ACCOUNT'])[1 + n % 3],
              md5((n / 7)::text)::uuid,
              CASE WHEN n % 20 <= 4 THEN jsonb_build_object(
                     'firstName', 'First' || (n % 997), 'lastName', 'Last' || (n % 1009),
                     'email', 'person' || (n % 5003) || '@example.com', 'status', (ARRAY['NEW','CONTACTED','QUALIFIED'])[1 + n % 3],
                     'source', (ARRAY['WEB','REFERRAL','EVENT','PARTNER'])[1 + n % 4], 'score', n % 100,
                     'estimatedValue', (n % 500) * 100, 'companyName', 'Company ' || (n % 211))
                   ELSE jsonb_build_object('status', jsonb_build_object('from', (ARRAY['NEW','CONTACTED'])[1 + n % 2],
                     'to', (ARRAY['CONTACTED','QUALIFIED'])[1 + n % 2]), 'score', jsonb_build_object('from', n % 100, 'to', (n + 7) % 100))
              END
         FROM generate_series($4::int, $5::int) AS n, people p`,
      [first.toISOString(), rows, spanSeconds, from, to],
    );
    log(`  ${to}/${rows} audit rows`);
  }
  await db.query(`CREATE TABLE ${FLAT_TABLE} (LIKE audit_logs INCLUDING DEFAULTS)`);
  await db.query(`INSERT INTO ${FLAT_TABLE} SELECT * FROM audit_logs ORDER BY occurred_at`);
  await db.query(`ALTER TABLE ${FLAT_TABLE} ADD PRIMARY KEY (id, occurred_at)`);
  await db.query(`CREATE INDEX ON ${FLAT_TABLE} (company_id, occurred_at, id)`);
  await db.query(`CREATE INDEX ON ${FLAT_TABLE} (company_id, object_type, object_id)`);
  await db.query(`VACUUM ANALYZE audit_logs`);
  await db.query(`VACUUM ANALYZE ${FLAT_TABLE}`);
  await db.query(`COMMENT ON TABLE ${FLAT_TABLE} IS '${marker}'`);
  log(`audit data seeded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function manager(db: DataSource, archiveDir: string): AuditPartitionManager {
  return new AuditPartitionManager({
    dataSource: db,
    archives: new LocalFileStorage(archiveDir),
    logger: createLogger({ level: 'error', name: 'bench' }),
    compressionLevel: 6,
    lockTimeoutMs: 2_000,
    detachAttempts: 5,
  });
}

const figures = (prefix: string, stats: LatencyStats) => ({
  [`${prefix}P50Ms`]: stats.p50Ms,
  [`${prefix}P95Ms`]: stats.p95Ms,
});

async function openAuditDatabase(context: BenchContext) {
  const sizes = auditSizes(context.scale);
  const db = await context.openDatabase('audit', {
    companies: sizes.companies,
    users: sizes.users,
    accounts: 0,
    leads: 0,
    deals: 0,
  });
  await seedAuditRows(db, sizes.auditRows, (message) => context.log(message));
  const [company] = await db.query<Array<{ company_id: string }>>(
    `SELECT company_id FROM audit_logs GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`,
  );
  return { db, sizes, companyId: company!.company_id };
}

/** The auditLog query's shape: a company's newest page within a month, on either table. */
function recentPageSql(table: string): string {
  return `SELECT id, occurred_at, actor_id, action, object_type, object_id, changes FROM ${table} a
           WHERE a.company_id = $1 AND a.occurred_at >= $2 AND a.occurred_at < $3
           ORDER BY a.occurred_at DESC, a.id DESC LIMIT 51`;
}

/** A whole month summed up for every company: entries per object type and action (the operators' monthly report). */
function monthAggregateSql(table: string): string {
  return `SELECT object_type, action, count(*)::int AS n
            FROM ${table} WHERE occurred_at >= $1 AND occurred_at < $2 GROUP BY 1, 2`;
}

/** The same month by UTC day: the grouping itself costs more, so partition pruning saves a smaller share. */
function dailyAggregateSql(table: string): string {
  return `SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, object_type, action, count(*)::int AS n
            FROM ${table} WHERE occurred_at >= $1 AND occurred_at < $2 GROUP BY 1, 2, 3`;
}

/** One company's month by day. */
function companyMonthAggregateSql(table: string): string {
  return `SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, object_type, action, count(*)::int AS n
            FROM ${table} WHERE company_id = $3 AND occurred_at >= $1 AND occurred_at < $2 GROUP BY 1, 2, 3`;
}

/** Current-month first page and month aggregates: monthly partitions vs the same rows in one table. */
export const auditQueries: BenchScenario = {
  name: 'audit.queries',
  async run(context) {
    const { db, sizes, companyId } = await openAuditDatabase(context);
    try {
      const now = new Date();
      const month = [monthStart(now).toISOString(), monthStart(now, 1).toISOString()];
      const lastMonth = [monthStart(now, -1).toISOString(), monthStart(now).toISOString()];
      const options = { iterations: 200, warmup: 20 };
      const heavy = { iterations: 15, warmup: 2 };
      const run = (sql: string, params: unknown[]) => () => db.query(sql, params);
      const pagePartitioned = await context.timeCalls(
        run(recentPageSql('audit_logs'), [companyId, ...month]),
        options,
      );
      const pageFlat = await context.timeCalls(
        run(recentPageSql(FLAT_TABLE), [companyId, ...month]),
        options,
      );
      const monthPartitioned = await context.timeCalls(
        run(monthAggregateSql('audit_logs'), lastMonth),
        heavy,
      );
      const monthFlat = await context.timeCalls(run(monthAggregateSql(FLAT_TABLE), lastMonth), heavy);
      const dailyPartitioned = await context.timeCalls(
        run(dailyAggregateSql('audit_logs'), lastMonth),
        heavy,
      );
      const dailyFlat = await context.timeCalls(run(dailyAggregateSql(FLAT_TABLE), lastMonth), heavy);
      const companyPartitioned = await context.timeCalls(
        run(companyMonthAggregateSql('audit_logs'), [...lastMonth, companyId]),
        heavy,
      );
      const companyFlat = await context.timeCalls(
        run(companyMonthAggregateSql(FLAT_TABLE), [...lastMonth, companyId]),
        heavy,
      );
      return {
        scenario: 'audit.queries',
        description: `${sizes.auditRows} audit rows over ${MONTHS} months: current-month first page, last month aggregated`,
        measured: {
          ...figures('recentPagePartitioned', pagePartitioned),
          ...figures('monthAggregatePartitioned', monthPartitioned),
          ...figures('dailyAggregatePartitioned', dailyPartitioned),
          ...figures('companyMonthPartitioned', companyPartitioned),
        },
        baseline: {
          ...figures('recentPageFlat', pageFlat),
          ...figures('monthAggregateFlat', monthFlat),
          ...figures('dailyAggregateFlat', dailyFlat),
          ...figures('companyMonthFlat', companyFlat),
        },
        baselineName: 'the same rows and indexes in one unpartitioned table',
        ratio: monthFlat.p95Ms / monthPartitioned.p95Ms,
        ratioOf: 'unpartitioned p95 / partitioned p95, whole-month aggregate by object type and action',
        notes:
          `recent page: unpartitioned/partitioned p95 = ${(pageFlat.p95Ms / pagePartitioned.p95Ms).toFixed(2)}; ` +
          `month by day: ${(dailyFlat.p95Ms / dailyPartitioned.p95Ms).toFixed(2)}; ` +
          `one company's month by day: ${(companyFlat.p95Ms / companyPartitioned.p95Ms).toFixed(2)}`,
      };
    } finally {
      await db.destroy();
    }
  },
};

/** Archiving the oldest month (detach, gzip CSV, verify, drop), then restoring it so the data set stays whole. */
export const auditArchive: BenchScenario = {
  name: 'audit.archive',
  async run(context) {
    const { db, sizes } = await openAuditDatabase(context);
    const archiveDir = mkdtempSync(join(tmpdir(), 'audit-bench-archive-'));
    try {
      const partitions = manager(db, archiveDir);
      const oldest = monthStart(new Date(), -(MONTHS - 1));
      const name = partitionNameOf(oldest);
      const [{ bytes: tableBytes }] = await db.query<[{ bytes: string }]>(
        `SELECT pg_total_relation_size($1::regclass) AS bytes`,
        [name],
      );
      const started = process.hrtime.bigint();
      const report = await partitions.archiveOldPartitions(MONTHS - 2); // every month but the oldest is within retention
      const archiveMs = Number(process.hrtime.bigint() - started) / 1e6;
      const archived = report.archived.find((a) => a.partitionName === name);
      if (!archived) throw new Error(`archiving ${name} failed: ${JSON.stringify(report.failed)}`);
      const csvBytes = await gunzippedSize(join(archiveDir, archived.location));
      const gzBytes = statSync(join(archiveDir, archived.location)).size;

      const restoreStarted = process.hrtime.bigint();
      await partitions.restoreArchive(oldest);
      const restoreMs = Number(process.hrtime.bigint() - restoreStarted) / 1e6;
      await db.query('DELETE FROM audit_archives WHERE partition_name = $1', [name]);
      await db.query(`VACUUM ANALYZE ${name}`);
      return {
        scenario: 'audit.archive',
        description: `archive one month (${archived.rowCount} rows) to verified gzip CSV and drop it; restore it`,
        measured: {
          rows: archived.rowCount,
          archiveMs,
          rowsPerSecond: Math.round(archived.rowCount / (archiveMs / 1000)),
          archiveBytes: gzBytes,
          compressionRatio: csvBytes / gzBytes,
          restoreMs,
        },
        baseline: { tableBytes: Number(tableBytes), csvBytes },
        baselineName: 'the month as CSV before gzip (and its table in Postgres)',
        ratio: csvBytes / gzBytes,
        ratioOf: 'CSV bytes / gzip bytes',
        notes: `table with indexes ${(Number(tableBytes) / 1e6).toFixed(1)} MB -> archive ${(gzBytes / 1e6).toFixed(1)} MB; data set ${sizes.auditRows} rows`,
      };
    } finally {
      rmSync(archiveDir, { recursive: true, force: true });
      await db.destroy();
    }
  },
};

async function gunzippedSize(path: string): Promise<number> {
  let bytes = 0;
  await pipeline(
    createReadStream(path),
    createGunzip(),
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        done();
      },
    }),
  );
  return bytes;
}
