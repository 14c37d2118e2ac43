import { createHash } from 'node:crypto';
import { PassThrough, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type { Pool, PoolClient } from 'pg';
import { parse } from 'csv-parse';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { DataSource } from 'typeorm';
import { AppError, ErrorCode, NotFoundError, ValidationError } from '../../platform/errors/app-error';
import type { Logger } from '../../platform/logging/logger';
import type { FileStorage } from '../../platform/storage/file-storage';
import { abandonableSink, CsvRecordCounter, tap } from '../../platform/streams/stream-taps';

/** Monthly partitions are named by their UTC month; anything else under audit_logs is the default partition. */
const PARTITION_NAME = /^audit_logs_y(\d{4})m(\d{2})$/;
const DEFAULT_PARTITION = 'audit_logs_default';
/** Every partition DDL of every process serialises on this advisory lock ('AUDI'). */
const PARTITION_LOCK_KEY = 0x41554449;
/** The archive's columns, in the order COPY writes and reads them. */
const COLUMNS = 'id, occurred_at, company_id, actor_id, action, object_type, object_id, changes';
const LOCK_NOT_AVAILABLE = '55P03';

export function monthStart(date: Date, offsetMonths = 0): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + offsetMonths, 1));
}

export function partitionNameOf(month: Date): string {
  return `audit_logs_y${month.getUTCFullYear()}m${String(month.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** `2025-03` for a month's first instant. */
export function monthLabel(month: Date): string {
  return month.toISOString().slice(0, 7);
}

/** Parses `YYYY-MM` (or any date inside the month) into the month's first instant, naming `field` when it cannot. */
export function parseMonth(field: string, value: string): Date {
  const match = /^(\d{4})-(\d{2})$/.exec(value);
  const month = match ? Number(match[2]) : 0;
  if (!match || month < 1 || month > 12) throw ValidationError.single(field, 'must be a month like 2025-03');
  return new Date(Date.UTC(Number(match[1]), month - 1, 1));
}

export interface PartitionInfo {
  name: string;
  /** The month's first instant; null for the default partition. */
  month: Date | null;
  /** False for a month detached by an archive run that did not finish (the next run picks it up). */
  attached: boolean;
  /**
   * The planner's estimate (pg_class.reltuples, refreshed by ANALYZE and autovacuum; 0 before the first), so listing
   * never scans a month of rows; exact for the default partition, which maintenance counts anyway.
   */
  estimatedRows: number;
  bytes: number;
}

export interface EnsureReport {
  created: Array<{ name: string; movedFromDefault: number }>;
  /** Months whose table is detached and waiting to be archived: not re-created. */
  skipped: string[];
  defaultRows: number;
}

export type ArchiveStep = 'detach' | 'write' | 'verify' | 'drop';

export interface ArchiveRecord {
  month: Date;
  partitionName: string;
  rowCount: number;
  bytes: number;
  sha256: string;
  location: string;
  status: 'ARCHIVED' | 'RESTORED';
  archivedAt: Date;
  restoredAt: Date | null;
}

export interface ArchiveFailure {
  month: Date;
  partitionName: string;
  step: ArchiveStep;
  error: string;
  /** Where the rows are now: attached again, or kept as a detached table. Never lost. */
  rowsKept: 'attached' | 'detached';
}

export interface ArchiveReport {
  archived: ArchiveRecord[];
  failed: ArchiveFailure[];
  /** Months past retention that an operator restored: kept until they are archived on purpose. */
  keptRestored: string[];
}

export interface MaintenanceReport {
  ensure: EnsureReport;
  archive: ArchiveReport;
  partitions: PartitionInfo[];
  durationMs: number;
}

export interface AuditPartitionOptions {
  dataSource: DataSource;
  /** Where archives are written (`AUDIT_ARCHIVE_DIR`). */
  archives: FileStorage;
  logger: Logger;
  /** gzip level of archives, 1..9. */
  compressionLevel: number;
  /** How long a detach waits for its lock before retrying (writers keep going meanwhile). */
  lockTimeoutMs: number;
  detachAttempts: number;
  /**
   * How archives are loaded back: `copy` (COPY FROM STDIN, Postgres servers) or `insert` (batched INSERTs, for the
   * embedded database, whose socket does not speak the COPY-in protocol).
   */
  bulkLoad?: 'copy' | 'insert';
  /** Called before each archive step; a throw there is handled like a crash at that point (tests inject faults). */
  beforeArchiveStep?: (step: ArchiveStep, partitionName: string) => void | Promise<void>;
}

/**
 * Keeps `audit_logs` partitioned by UTC month: creates months ahead (moving early rows out of the default partition),
 * archives months past retention to verified gzip CSV before dropping them, and restores archives. Every operation
 * holds one advisory lock, so any number of processes may run maintenance at once.
 */
export class AuditPartitionManager {
  constructor(private readonly options: AuditPartitionOptions) {}

  /** Creates this month's and `monthsAhead` months' partitions, and one for every month with rows in the default. */
  ensurePartitions(monthsAhead = 3): Promise<EnsureReport> {
    if (!Number.isInteger(monthsAhead) || monthsAhead < 0 || monthsAhead > 24)
      throw ValidationError.single('monthsAhead', 'must be an integer from 0 to 24');
    return this.withLock((client) => this.ensureLocked(client, monthsAhead));
  }

  /** Archives (detach, write, verify, drop) every month older than `retentionMonths` full months before this one. */
  archiveOldPartitions(retentionMonths = 12): Promise<ArchiveReport> {
    assertRetention(retentionMonths);
    return this.withLock((client) => this.archiveLocked(client, retentionMonths));
  }

  /** Ensure, archive and the partitions afterwards, under one lock. */
  async runMaintenance(monthsAhead: number, retentionMonths: number): Promise<MaintenanceReport> {
    assertRetention(retentionMonths);
    const started = Date.now();
    return this.withLock(async (client) => {
      const ensure = await this.ensureLocked(client, monthsAhead);
      const archive = await this.archiveLocked(client, retentionMonths);
      const partitions = await this.partitions(client);
      return { ensure, archive, partitions, durationMs: Date.now() - started };
    });
  }

  async listPartitions(): Promise<PartitionInfo[]> {
    const client = await this.pool().connect();
    try {
      return await this.partitions(client);
    } finally {
      client.release();
    }
  }

  async listArchives(): Promise<ArchiveRecord[]> {
    const rows = await this.options.dataSource.query<ArchiveRow[]>(
      'SELECT * FROM audit_archives ORDER BY month',
    );
    return rows.map(toArchiveRecord);
  }

  async defaultPartitionRows(): Promise<number> {
    const [row] = await this.options.dataSource.query<Array<{ count: number }>>(
      `SELECT count(*)::int AS count FROM ${DEFAULT_PARTITION}`,
    );
    return row?.count ?? 0;
  }

  /** Loads an archived month back into a partition, after checking the file against its recorded checksum. */
  restoreArchive(month: Date): Promise<ArchiveRecord> {
    return this.withLock(async (client) => {
      const [row] = (
        await client.query<ArchiveRow>('SELECT * FROM audit_archives WHERE month = $1', [dayOf(month)])
      ).rows;
      if (!row) throw new NotFoundError('AuditArchive', monthLabel(month));
      const archive = toArchiveRecord(row);
      const name = archive.partitionName;
      if (await this.tableExists(client, name))
        throw new AppError(
          ErrorCode.CONFLICT,
          `${monthLabel(month)} already has a table ${name} (rows written since it was archived): archive it first`,
        );
      await client.query('BEGIN');
      try {
        await client.query(`CREATE TABLE ${name} (LIKE audit_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
        await this.loadArchive(client, name, archive);
        const loaded = await countRows(client, name);
        if (loaded !== archive.rowCount)
          throw new Error(`loaded ${loaded} rows from ${archive.location}, expected ${archive.rowCount}`);
        await this.attach(client, name, archive.month);
        const updated = await client.query<ArchiveRow>(
          `UPDATE audit_archives SET status = 'RESTORED', restored_at = now() WHERE month = $1 RETURNING *`,
          [dayOf(month)],
        );
        await client.query('COMMIT');
        this.options.logger.info({ partition: name, rows: loaded }, 'audit archive restored');
        return toArchiveRecord(updated.rows[0]!);
      } catch (error) {
        if (!(error instanceof BrokenConnection)) await client.query('ROLLBACK');
        throw error;
      }
    });
  }

  private async ensureLocked(client: PoolClient, monthsAhead: number): Promise<EnsureReport> {
    const now = new Date();
    const wanted = new Map<string, Date>();
    for (let offset = 0; offset <= monthsAhead; offset++) {
      const month = monthStart(now, offset);
      wanted.set(partitionNameOf(month), month);
    }
    const early = await client.query<{ month: Date }>(
      `SELECT DISTINCT date_trunc('month', occurred_at, 'UTC') AS month FROM ${DEFAULT_PARTITION}`,
    );
    for (const { month } of early.rows) wanted.set(partitionNameOf(month), month);

    const existing = new Map((await this.partitions(client)).map((p) => [p.name, p]));
    const report: EnsureReport = { created: [], skipped: [], defaultRows: 0 };
    for (const [name, month] of [...wanted].sort(([a], [b]) => a.localeCompare(b))) {
      const partition = existing.get(name);
      if (partition?.attached) continue;
      if (partition) {
        report.skipped.push(name);
        continue;
      }
      const moved = await this.withLockTimeout(client, name, async () => {
        await client.query(`CREATE TABLE ${name} (LIKE audit_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
        return this.attach(client, name, month);
      });
      report.created.push({ name, movedFromDefault: moved });
      this.options.logger.info({ partition: name, movedFromDefault: moved }, 'audit partition created');
    }
    report.defaultRows = await countRows(client, DEFAULT_PARTITION);
    return report;
  }

  /**
   * Moves the month's rows out of the default partition into `name`, then attaches it (in the caller's transaction,
   * so the rows are never in both or neither). Returns how many rows moved.
   */
  private async attach(client: PoolClient, name: string, month: Date): Promise<number> {
    const from = month.toISOString();
    const to = monthStart(month, 1).toISOString();
    const moved = await client.query(
      `WITH moved AS (DELETE FROM ${DEFAULT_PARTITION} WHERE occurred_at >= $1 AND occurred_at < $2 RETURNING ${COLUMNS})
       INSERT INTO ${name} (${COLUMNS}) SELECT ${COLUMNS} FROM moved`,
      [from, to],
    );
    await client.query(
      `ALTER TABLE audit_logs ATTACH PARTITION ${name} FOR VALUES FROM ('${from}') TO ('${to}')`,
    );
    return moved.rowCount ?? 0;
  }

  private async archiveLocked(client: PoolClient, retentionMonths: number): Promise<ArchiveReport> {
    const cutoff = monthStart(new Date(), -retentionMonths);
    const restored = new Set(
      (
        await client.query<{ partition_name: string }>(
          `SELECT partition_name FROM audit_archives WHERE status = 'RESTORED'`,
        )
      ).rows.map((row) => row.partition_name),
    );
    const report: ArchiveReport = { archived: [], failed: [], keptRestored: [] };
    for (const partition of await this.partitions(client)) {
      if (partition.month && partition.month >= cutoff && !partition.attached) {
        await this.reattach(client, partition.name, partition.month);
        continue;
      }
      if (!partition.month || partition.month >= cutoff) continue;
      if (restored.has(partition.name) && partition.attached) {
        report.keptRestored.push(partition.name);
        continue;
      }
      const outcome = await this.archiveOne(client, partition);
      if ('step' in outcome) report.failed.push(outcome);
      else report.archived.push(outcome);
    }
    return report;
  }

  /**
   * Detaches the month (its own short transaction, so audit writes wait at most the lock timeout), then in one
   * transaction on this connection: folds in an earlier archive of the same month (rows that arrived late), writes
   * and re-reads the new archive, records it and drops the table. Any failure rolls that transaction back and
   * re-attaches the month; the rows never leave Postgres before an archive holding them is verified and recorded.
   */
  private async archiveOne(
    client: PoolClient,
    partition: PartitionInfo,
  ): Promise<ArchiveRecord | ArchiveFailure> {
    const { name } = partition;
    const month = partition.month!;
    const location = `${name}.${Date.now()}.csv.gz`;
    let step: ArchiveStep = 'detach';
    let detached = !partition.attached;
    let previousLocation: string | undefined;
    let committing = false;
    try {
      await this.options.beforeArchiveStep?.(step, name);
      if (!detached) {
        await this.detach(client, name);
        detached = true;
      }
      await client.query('BEGIN');
      try {
        step = 'write';
        await this.options.beforeArchiveStep?.(step, name);
        const [previous] = (
          await client.query<ArchiveRow>('SELECT * FROM audit_archives WHERE month = $1 FOR UPDATE', [
            dayOf(month),
          ])
        ).rows;
        // An archived month's rows join the new archive; a restored month's rows are already in the table.
        previousLocation = previous?.location;
        if (previous?.status === 'ARCHIVED') await this.loadArchive(client, name, toArchiveRecord(previous));
        const rows = await countRows(client, name);
        const written = await this.writeArchive(client, name, location);
        if (written.rows !== rows) throw new Error(`COPY wrote ${written.rows} rows of ${rows}`);

        step = 'verify';
        await this.options.beforeArchiveStep?.(step, name);
        const check = await this.readArchive(location);
        if (check.sha256 !== written.sha256)
          throw new Error(`archive checksum ${check.sha256} differs from the written ${written.sha256}`);
        if (check.rows !== rows) throw new Error(`archive holds ${check.rows} rows, the table ${rows}`);

        step = 'drop';
        await this.options.beforeArchiveStep?.(step, name);
        const recorded = await client.query<ArchiveRow>(
          `INSERT INTO audit_archives (month, partition_name, row_count, bytes, sha256, location, status)
           VALUES ($1, $2, $3, $4, $5, $6, 'ARCHIVED')
           ON CONFLICT (month) DO UPDATE SET row_count = EXCLUDED.row_count, bytes = EXCLUDED.bytes,
             sha256 = EXCLUDED.sha256, location = EXCLUDED.location, status = 'ARCHIVED',
             archived_at = now(), restored_at = NULL
           RETURNING *`,
          [dayOf(month), name, rows, written.bytes, written.sha256, location],
        );
        await client.query(`DROP TABLE ${name}`);
        committing = true;
        await client.query('COMMIT');
        this.options.logger.info(
          { partition: name, rows, bytes: written.bytes, location, merged: previousLocation },
          'audit partition archived and dropped',
        );
        if (previousLocation && previousLocation !== location)
          await this.options.archives.delete(previousLocation).catch(() => false);
        return toArchiveRecord(recorded.rows[0]!);
      } catch (error) {
        if (!(error instanceof BrokenConnection)) await client.query('ROLLBACK');
        throw error;
      }
    } catch (error) {
      if (committing) {
        // The COMMIT's answer was lost: the month may already be dropped and this file its only copy. Keep the file;
        // the next run (under the lock) sees whether the table or the archive record exists.
        throw new BrokenConnection(error as Error);
      }
      // Only a recorded archive may exist: one that was not recorded is not trusted, so it goes.
      await this.options.archives.delete(location).catch(() => false);
      if (error instanceof BrokenConnection) throw error; // the table stays detached; the next run resumes it
      const rowsKept: ArchiveFailure['rowsKept'] =
        detached && !(await this.reattach(client, name, month)) ? 'detached' : 'attached';
      this.options.logger.error({ partition: name, step, err: error, rowsKept }, 'audit archive failed');
      return { month, partitionName: name, step, error: (error as Error).message, rowsKept };
    }
  }

  /** Attaches a detached month again (rows for it in the default partition move in); false when that failed. */
  private async reattach(client: PoolClient, name: string, month: Date): Promise<boolean> {
    try {
      await this.withLockTimeout(client, name, () => this.attach(client, name, month));
      return true;
    } catch (error) {
      this.options.logger.error(
        { err: error, partition: name },
        'could not re-attach an audit partition; it stays detached until the next maintenance run',
      );
      return false;
    }
  }

  private detach(client: PoolClient, name: string): Promise<void> {
    return this.withLockTimeout(client, name, async () => {
      await client.query(`ALTER TABLE audit_logs DETACH PARTITION ${name}`);
    });
  }

  /**
   * Runs partition DDL in its own transaction, waiting at most the lock timeout for its locks (audit writes queue
   * behind a waiting ACCESS EXCLUSIVE request), and retries with a growing pause.
   */
  private async withLockTimeout<T>(client: PoolClient, name: string, ddl: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      await client.query('BEGIN');
      try {
        await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(this.options.lockTimeoutMs))}`);
        const result = await ddl();
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK');
        const code = (error as { code?: string }).code;
        if (code !== LOCK_NOT_AVAILABLE || attempt >= this.options.detachAttempts) throw error;
        this.options.logger.warn(
          { partition: name, attempt },
          'audit partition change waited too long; retrying',
        );
        await sleep(this.options.lockTimeoutMs * attempt + Math.random() * 100);
      }
    }
  }

  /** Streams a table through gzip into the archive store, on the caller's connection (inside its transaction). */
  private async writeArchive(
    client: PoolClient,
    name: string,
    location: string,
  ): Promise<{ rows: number; bytes: number; sha256: string }> {
    await client.query(`SET LOCAL TIME ZONE 'UTC'`);
    const copy = client.query(copyTo(`COPY ${name} (${COLUMNS}) TO STDOUT WITH (FORMAT csv, HEADER true)`));
    const hash = createHash('sha256');
    let bytes = 0;
    const body = new PassThrough();
    const { sink, abandon } = abandonableSink(body);
    const piping = pipeline(
      copy,
      createGzip({ level: this.options.compressionLevel }),
      tap((chunk) => {
        hash.update(chunk);
        bytes += chunk.length;
      }),
      sink,
    );
    // Storage may fail at any moment (before reading a byte, midway, at its final rename): the COPY then runs on to
    // its end into nothing, so the connection stays usable and the transaction rolls back with the rows in place.
    const storing = this.options.archives.put(location, body).catch((error: Error) => {
      abandon();
      body.destroy();
      throw error;
    });
    const [stored, piped] = await Promise.allSettled([storing, piping]);
    if (piped.status === 'rejected') {
      // The COPY itself failed: if it did not run to its end, the connection is mid-protocol and cannot be reused.
      if (!copy.readableEnded) throw new BrokenConnection(piped.reason as Error);
      throw piped.reason;
    }
    if (stored.status === 'rejected') throw stored.reason;
    return { rows: copy.rowCount, bytes, sha256: hash.digest('hex') };
  }

  /** Loads an archive's rows into `table` on the caller's connection (inside its transaction). */
  private async loadArchive(client: PoolClient, table: string, archive: ArchiveRecord): Promise<number> {
    const check = await this.readArchive(archive.location);
    if (check.sha256 !== archive.sha256 || check.rows !== archive.rowCount)
      throw new Error(
        `archive ${archive.location} does not match its record (sha256 ${check.sha256}, ${check.rows} rows)`,
      );
    const body = await this.options.archives.get(archive.location);
    if (!body) throw new Error(`archive ${archive.location} is missing`);
    if (this.options.bulkLoad === 'insert') {
      await pipeline(body, createGunzip(), parseArchiveCsv(), batchInserter(client, table));
      return archive.rowCount;
    }
    // A failed COPY FROM ends with CopyFail: the connection stays usable, so this is an ordinary (rolled back) failure.
    const loading = client.query(
      copyFrom(`COPY ${table} (${COLUMNS}) FROM STDIN WITH (FORMAT csv, HEADER true)`),
    );
    await pipeline(body, createGunzip(), loading);
    return archive.rowCount;
  }

  /** Re-reads an archive: the file's sha256 and the number of CSV records after the header. */
  private async readArchive(location: string): Promise<{ rows: number; sha256: string }> {
    const body = await this.options.archives.get(location);
    if (!body) throw new Error(`archive ${location} is missing`);
    const hash = createHash('sha256');
    const counter = new CsvRecordCounter();
    await pipeline(
      body,
      tap((chunk) => hash.update(chunk)),
      createGunzip(),
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          counter.push(chunk);
          done();
        },
      }),
    );
    return { rows: Math.max(0, counter.records - 1), sha256: hash.digest('hex') };
  }

  private async partitions(client: PoolClient): Promise<PartitionInfo[]> {
    const { rows } = await client.query<{ name: string; attached: boolean; rows: string; bytes: string }>(
      `SELECT c.relname AS name, i.inhrelid IS NOT NULL AS attached,
              greatest(c.reltuples, 0)::bigint AS rows, pg_total_relation_size(c.oid) AS bytes
         FROM pg_class c
         LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'audit_logs'::regclass
        WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
          AND (c.relname ~ '^audit_logs_y[0-9]{4}m[0-9]{2}$' OR c.relname = $1)
        ORDER BY c.relname`,
      [DEFAULT_PARTITION],
    );
    const defaultRows = await countRows(client, DEFAULT_PARTITION);
    return rows.map((row) => {
      const match = PARTITION_NAME.exec(row.name);
      return {
        name: row.name,
        month: match ? new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, 1)) : null,
        attached: row.attached,
        estimatedRows: match ? Number(row.rows) : defaultRows,
        bytes: Number(row.bytes),
      };
    });
  }

  private async tableExists(client: PoolClient, name: string): Promise<boolean> {
    const { rows } = await client.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [
      name,
    ]);
    return rows[0]?.found ?? false;
  }

  /** Runs `work` on one connection holding the partition lock (waiting for another process's run to end). */
  private async withLock<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool().connect();
    let broken: Error | undefined;
    // A connection the server ends while we hold it must fail the work, not the process.
    const onError = (error: Error) => {
      broken = error;
      this.options.logger.warn({ err: error }, 'audit partition connection failed');
    };
    client.on('error', onError);
    try {
      await client.query('SELECT pg_advisory_lock($1)', [PARTITION_LOCK_KEY]);
      const result = await work(client);
      // The work is committed: a failed unlock must not report it as failed. The connection is discarded instead,
      // which ends the session and with it the lock.
      await client.query('SELECT pg_advisory_unlock($1)', [PARTITION_LOCK_KEY]).catch((error: Error) => {
        broken = error;
      });
      return result;
    } catch (error) {
      if (error instanceof BrokenConnection) {
        // The connection is mid-protocol: no query (not even the unlock) would ever answer. Discarding it ends the
        // session, which releases the advisory lock on the server.
        broken = error.cause as Error;
        throw error.cause;
      }
      if (!broken)
        await client
          .query('SELECT pg_advisory_unlock($1)', [PARTITION_LOCK_KEY])
          .catch((unlockError: Error) => {
            broken = unlockError; // never hand back a connection that may still hold the lock
          });
      throw error;
    } finally {
      client.off('error', onError);
      client.release(broken ?? false);
    }
  }

  private pool(): Pool {
    return (this.options.dataSource.driver as unknown as { master: Pool }).master;
  }
}

/** A COPY that failed midway leaves its connection unusable: the pool must drop it rather than reuse it. */
class BrokenConnection extends Error {
  constructor(cause: Error) {
    super(cause.message, { cause });
  }
}

interface ArchiveRow {
  month: Date | string;
  partition_name: string;
  row_count: string;
  bytes: string;
  sha256: string;
  location: string;
  status: 'ARCHIVED' | 'RESTORED';
  archived_at: Date;
  restored_at: Date | null;
}

function toArchiveRecord(row: ArchiveRow): ArchiveRecord {
  const match = PARTITION_NAME.exec(row.partition_name)!;
  return {
    month: new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, 1)),
    partitionName: row.partition_name,
    rowCount: Number(row.row_count),
    bytes: Number(row.bytes),
    sha256: row.sha256,
    location: row.location,
    status: row.status,
    archivedAt: row.archived_at,
    restoredAt: row.restored_at,
  };
}

function assertRetention(retentionMonths: number): void {
  if (!Number.isInteger(retentionMonths) || retentionMonths < 1 || retentionMonths > 240)
    throw ValidationError.single('retentionMonths', 'must be an integer from 1 to 240');
}

/** `date` columns take `YYYY-MM-DD`; a Date would shift with the session time zone. */
function dayOf(month: Date): string {
  return month.toISOString().slice(0, 10);
}

async function countRows(client: PoolClient, table: string): Promise<number> {
  const { rows } = await client.query<{ count: number }>(`SELECT count(*)::int AS count FROM ${table}`);
  return rows[0]?.count ?? 0;
}

/** Archive CSV records as column arrays; an unquoted empty field is NULL (how COPY writes it), a quoted one ''. */
function parseArchiveCsv(): Transform {
  return parse({
    from_line: 2,
    cast: (value, context) => (value === '' && !context.quoting ? null : value),
  });
}

const INSERT_BATCH = 1_000;

/** Inserts parsed archive records in batches, one statement each (one array parameter per column). */
function batchInserter(client: PoolClient, table: string): Writable {
  let batch: Array<Array<string | null>> = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const rows = batch;
    batch = [];
    const columns = COLUMNS.split(', ').map((_, index) => rows.map((record) => record[index] ?? null));
    await client.query(
      `INSERT INTO ${table} (${COLUMNS})
       SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::uuid[], $4::uuid[], $5::text[], $6::text[],
                            $7::uuid[], $8::jsonb[])`,
      columns,
    );
  };
  return new Writable({
    objectMode: true,
    write(record: Array<string | null>, _encoding, done) {
      batch.push(record);
      if (batch.length < INSERT_BATCH) return done();
      flush().then(() => done(), done);
    },
    final(done) {
      flush().then(() => done(), done);
    },
  });
}
