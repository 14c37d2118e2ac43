import { setTimeout as sleep } from 'node:timers/promises';
import type { PoolClient } from 'pg';
import type { Logger } from '../../platform/logging/logger';
import {
  COLUMNS,
  DEFAULT_PARTITION,
  monthStart,
  partitionNameOf,
  type EnsureReport,
} from './audit-partition.model';
import { countRows, listPartitions, monthsInDefault } from './audit-partition.repository';

const LOCK_NOT_AVAILABLE = '55P03';

export interface AuditPartitionDdlOptions {
  logger: Logger;
  /** How long a detach waits for its lock before retrying (writers keep going meanwhile). */
  lockTimeoutMs: number;
  detachAttempts: number;
}

/**
 * The DDL of `audit_logs`' monthly partitions: creating months (moving early rows out of the default partition),
 * attaching and detaching them. Callers hold the partition lock; each change waits at most the lock timeout.
 */
export class AuditPartitionDdl {
  constructor(private readonly options: AuditPartitionDdlOptions) {}

  /** Creates this month's and `monthsAhead` months' partitions, and one for every month with rows in the default. */
  async ensure(client: PoolClient, monthsAhead: number): Promise<EnsureReport> {
    const now = new Date();
    const wanted = new Map<string, Date>();
    for (let offset = 0; offset <= monthsAhead; offset++) {
      const month = monthStart(now, offset);
      wanted.set(partitionNameOf(month), month);
    }
    for (const month of await monthsInDefault(client)) wanted.set(partitionNameOf(month), month);

    const existing = new Map((await listPartitions(client)).map((p) => [p.name, p]));
    const report: EnsureReport = { created: [], skipped: [], defaultRows: 0 };
    for (const [name, month] of [...wanted].sort(([a], [b]) => a.localeCompare(b))) {
      const partition = existing.get(name);
      if (partition?.attached) continue;
      if (partition) {
        report.skipped.push(name);
        continue;
      }
      const moved = await this.withLockTimeout(client, name, async () => {
        await this.createTable(client, name);
        return this.attach(client, name, month);
      });
      report.created.push({ name, movedFromDefault: moved });
      this.options.logger.info({ partition: name, movedFromDefault: moved }, 'audit partition created');
    }
    report.defaultRows = await countRows(client, DEFAULT_PARTITION);
    return report;
  }

  /** A table shaped like `audit_logs`, not yet a partition of it. */
  async createTable(client: PoolClient, name: string): Promise<void> {
    await client.query(`CREATE TABLE ${name} (LIKE audit_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
  }

  /**
   * Moves the month's rows out of the default partition into `name`, then attaches it (in the caller's transaction,
   * so the rows are never in both or neither). Returns how many rows moved.
   */
  async attach(client: PoolClient, name: string, month: Date): Promise<number> {
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

  /** Attaches a detached month again (rows for it in the default partition move in); false when that failed. */
  async reattach(client: PoolClient, name: string, month: Date): Promise<boolean> {
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

  detach(client: PoolClient, name: string): Promise<void> {
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
}
