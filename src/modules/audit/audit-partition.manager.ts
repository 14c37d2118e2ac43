import type { Pool, PoolClient } from 'pg';
import type { DataSource } from 'typeorm';
import { AppError, ErrorCode, NotFoundError, ValidationError } from '../../platform/errors/app-error';
import type { Logger } from '../../platform/logging/logger';
import type { FileStorage } from '../../platform/storage/file-storage';
import { AuditArchiveStore, BrokenConnection } from './audit-archive.store';
import { AuditPartitionDdl } from './audit-partition.ddl';
import {
  assertRetention,
  monthLabel,
  monthStart,
  type ArchiveFailure,
  type ArchiveRecord,
  type ArchiveReport,
  type ArchiveStep,
  type EnsureReport,
  type MaintenanceReport,
  type PartitionInfo,
} from './audit-partition.model';
import {
  countRows,
  defaultPartitionRows,
  findArchive,
  listArchives,
  listPartitions,
  markRestored,
  recordArchive,
  restoredPartitionNames,
  tableExists,
} from './audit-partition.repository';

/** Every partition DDL of every process serialises on this advisory lock ('AUDI'). */
const PARTITION_LOCK_KEY = 0x41554449;

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
  /**
   * Whether a transaction pooler (PgBouncer) is in front: a session's advisory lock would stay on whichever server
   * session took it, so the lock is held in a transaction of a second connection for the run instead.
   */
  transactionPooling?: () => boolean;
  /** Called before each archive step; a throw there is handled like a crash at that point (tests inject faults). */
  beforeArchiveStep?: (step: ArchiveStep, partitionName: string) => void | Promise<void>;
}

/**
 * Keeps `audit_logs` partitioned by UTC month: creates months ahead (moving early rows out of the default partition),
 * archives months past retention to verified gzip CSV before dropping them, and restores archives. Every operation
 * holds one advisory lock, so any number of processes may run maintenance at once.
 */
export class AuditPartitionManager {
  private readonly ddl: AuditPartitionDdl;
  private readonly store: AuditArchiveStore;

  constructor(private readonly options: AuditPartitionOptions) {
    this.ddl = new AuditPartitionDdl(options);
    this.store = new AuditArchiveStore(options);
  }

  /** Creates this month's and `monthsAhead` months' partitions, and one for every month with rows in the default. */
  ensurePartitions(monthsAhead = 3): Promise<EnsureReport> {
    if (!Number.isInteger(monthsAhead) || monthsAhead < 0 || monthsAhead > 24)
      throw ValidationError.single('monthsAhead', 'must be an integer from 0 to 24');
    return this.withLock((client) => this.ddl.ensure(client, monthsAhead));
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
      const ensure = await this.ddl.ensure(client, monthsAhead);
      const archive = await this.archiveLocked(client, retentionMonths);
      const partitions = await listPartitions(client);
      return { ensure, archive, partitions, durationMs: Date.now() - started };
    });
  }

  async listPartitions(): Promise<PartitionInfo[]> {
    const client = await this.pool().connect();
    try {
      return await listPartitions(client);
    } finally {
      client.release();
    }
  }

  listArchives(): Promise<ArchiveRecord[]> {
    return listArchives(this.options.dataSource);
  }

  defaultPartitionRows(): Promise<number> {
    return defaultPartitionRows(this.options.dataSource);
  }

  /** Loads an archived month back into a partition, after checking the file against its recorded checksum. */
  restoreArchive(month: Date): Promise<ArchiveRecord> {
    return this.withLock(async (client) => {
      const archive = await findArchive(client, month);
      if (!archive) throw new NotFoundError('AuditArchive', monthLabel(month));
      const name = archive.partitionName;
      if (await tableExists(client, name))
        throw new AppError(
          ErrorCode.CONFLICT,
          `${monthLabel(month)} already has a table ${name} (rows written since it was archived): archive it first`,
        );
      await client.query('BEGIN');
      try {
        await this.ddl.createTable(client, name);
        await this.store.load(client, name, archive);
        const loaded = await countRows(client, name);
        if (loaded !== archive.rowCount)
          throw new Error(`loaded ${loaded} rows from ${archive.location}, expected ${archive.rowCount}`);
        await this.ddl.attach(client, name, archive.month);
        const restored = await markRestored(client, month);
        await client.query('COMMIT');
        this.options.logger.info({ partition: name, rows: loaded }, 'audit archive restored');
        return restored;
      } catch (error) {
        if (!(error instanceof BrokenConnection)) await client.query('ROLLBACK');
        throw error;
      }
    });
  }

  private async archiveLocked(client: PoolClient, retentionMonths: number): Promise<ArchiveReport> {
    const cutoff = monthStart(new Date(), -retentionMonths);
    const restored = await restoredPartitionNames(client);
    const report: ArchiveReport = { archived: [], failed: [], keptRestored: [] };
    for (const partition of await listPartitions(client)) {
      if (partition.month && partition.month >= cutoff && !partition.attached) {
        await this.ddl.reattach(client, partition.name, partition.month);
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
        await this.ddl.detach(client, name);
        detached = true;
      }
      await client.query('BEGIN');
      try {
        step = 'write';
        await this.options.beforeArchiveStep?.(step, name);
        const previous = await findArchive(client, month, { forUpdate: true });
        // An archived month's rows join the new archive; a restored month's rows are already in the table.
        previousLocation = previous?.location;
        if (previous?.status === 'ARCHIVED') await this.store.load(client, name, previous);
        const rows = await countRows(client, name);
        const written = await this.store.write(client, name, location);
        if (written.rows !== rows) throw new Error(`COPY wrote ${written.rows} rows of ${rows}`);

        step = 'verify';
        await this.options.beforeArchiveStep?.(step, name);
        const check = await this.store.read(location);
        if (check.sha256 !== written.sha256)
          throw new Error(`archive checksum ${check.sha256} differs from the written ${written.sha256}`);
        if (check.rows !== rows) throw new Error(`archive holds ${check.rows} rows, the table ${rows}`);

        step = 'drop';
        await this.options.beforeArchiveStep?.(step, name);
        const recorded = await recordArchive(client, {
          month,
          partitionName: name,
          rows,
          bytes: written.bytes,
          sha256: written.sha256,
          location,
        });
        await client.query(`DROP TABLE ${name}`);
        committing = true;
        await client.query('COMMIT');
        this.options.logger.info(
          { partition: name, rows, bytes: written.bytes, location, merged: previousLocation },
          'audit partition archived and dropped',
        );
        if (previousLocation && previousLocation !== location) await this.store.delete(previousLocation);
        return recorded;
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
      await this.store.delete(location);
      if (error instanceof BrokenConnection) throw error; // the table stays detached; the next run resumes it
      const rowsKept: ArchiveFailure['rowsKept'] =
        detached && !(await this.ddl.reattach(client, name, month)) ? 'detached' : 'attached';
      this.options.logger.error({ partition: name, step, err: error, rowsKept }, 'audit archive failed');
      return { month, partitionName: name, step, error: (error as Error).message, rowsKept };
    }
  }

  /** Runs `work` on one connection holding the partition lock (waiting for another process's run to end). */
  private async withLock<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    if (this.options.transactionPooling?.()) return this.withTransactionLock(work);
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

  /**
   * The lock behind a transaction pooler: taken with `pg_advisory_xact_lock` in a transaction that a second connection
   * keeps open (so the pooler keeps its server session) until `work`, on its own connection, is done.
   */
  private async withTransactionLock<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    const holder = await this.pool().connect();
    let holderBroken: Error | undefined;
    const onHolderError = (error: Error) => {
      holderBroken = error;
      this.options.logger.warn({ err: error }, 'audit partition lock connection failed');
    };
    holder.on('error', onHolderError);
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK_KEY]);
      const client = await this.pool().connect();
      let broken: Error | undefined;
      const onError = (error: Error) => {
        broken = error;
        this.options.logger.warn({ err: error }, 'audit partition connection failed');
      };
      client.on('error', onError);
      try {
        return await work(client);
      } catch (error) {
        if (!(error instanceof BrokenConnection)) throw error;
        broken = error.cause as Error;
        throw error.cause;
      } finally {
        client.off('error', onError);
        client.release(broken ?? false);
      }
    } finally {
      // Ends the transaction, and with it the lock (a broken holder's session ends, which ends it too).
      if (!holderBroken) await holder.query('COMMIT').catch((error: Error) => (holderBroken = error));
      holder.off('error', onHolderError);
      holder.release(holderBroken ?? false);
    }
  }

  private pool(): Pool {
    return (this.options.dataSource.driver as unknown as { master: Pool }).master;
  }
}
