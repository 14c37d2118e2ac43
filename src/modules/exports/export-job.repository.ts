import type { DataSource } from 'typeorm';
import { isUuid } from '../../platform/errors/app-error';
import type { Principal, RecordFilter, RecordSort, RecordType } from '../kernel';
import type { ExportFormat } from './export.pipeline';
import type { ExportCompression, ExportJobView, ExportStatus } from './export.types';

/** An `export_jobs` row as Postgres answers it (bigint counters as text). */
export interface ExportJobRow {
  id: string;
  company_id: string;
  owner_id: string;
  entity_type: RecordType;
  format: ExportFormat;
  compression: ExportCompression;
  fields: string[];
  filters: RecordFilter[];
  sort: RecordSort[];
  file_name: string;
  status: ExportStatus;
  progress: number;
  rows_exported: string;
  total_rows: string | null;
  bytes_written: string;
  sha256: string | null;
  storage_key: string | null;
  error: string | null;
  attempts: number;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

/** A job to queue, as validated by the service. */
export interface NewExportJob {
  entityType: RecordType;
  format: ExportFormat;
  compression: ExportCompression;
  fields: string[];
  filters: RecordFilter[];
  sort: RecordSort[];
  fileName: string;
}

/** What a finished try leaves on the row; each absent counter keeps its value. */
export interface ExportOutcome {
  rows?: number;
  total?: number;
  bytes?: number;
  sha256?: string;
  key?: string;
  error?: string;
}

/**
 * The `export_jobs` table: every statement that reads or changes a job. Updates made by a worker name its
 * `attempt_token`, so a try that lost its claim (cancelled, failed by cleanup, retried elsewhere) changes nothing.
 */
export class ExportJobRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Inserts a QUEUED job for `principal` unless they already have `maxActive` jobs queued or running; then it answers
   * how many they have and inserts nothing.
   */
  async insertWithinLimit(
    principal: Principal,
    job: NewExportJob,
    maxActive: number,
  ): Promise<{ row: ExportJobRow } | { active: number }> {
    return this.dataSource.transaction(async (manager) => {
      // One export at a time per user passes the limit check, so two requests cannot both take the last slot.
      await manager.query(`SELECT pg_advisory_xact_lock(hashtext('crm:exports:' || $1::text))`, [
        principal.userId,
      ]);
      const [{ active }] = await manager.query<[{ active: number }]>(
        `SELECT count(*)::int AS active FROM export_jobs WHERE owner_id = $1 AND status IN ('QUEUED', 'RUNNING')`,
        [principal.userId],
      );
      if (active >= maxActive) return { active };
      const [inserted] = await manager.query<ExportJobRow[]>(
        `INSERT INTO export_jobs (company_id, owner_id, entity_type, format, compression, fields, filters, sort, file_name)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
        [
          principal.companyId,
          principal.userId,
          job.entityType,
          job.format,
          job.compression,
          job.fields,
          JSON.stringify(job.filters),
          JSON.stringify(job.sort),
          job.fileName,
        ],
      );
      return { row: inserted! };
    });
  }

  /** The caller's own job; undefined for anyone else's and for ids that are no uuid (ids cannot be probed). */
  async ownRow(principal: Principal, id: string): Promise<ExportJobRow | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = await this.dataSource.query<ExportJobRow[]>(
      'SELECT * FROM export_jobs WHERE id = $1 AND company_id = $2 AND owner_id = $3',
      [id, principal.companyId, principal.userId],
    );
    return row;
  }

  /** The caller's jobs, newest first, optionally of one status. */
  list(
    principal: Principal,
    options: { first: number; status: ExportStatus | null },
  ): Promise<ExportJobRow[]> {
    return this.dataSource.query<ExportJobRow[]>(
      `SELECT * FROM export_jobs WHERE company_id = $1 AND owner_id = $2 AND ($3::text IS NULL OR status = $3)
        ORDER BY created_at DESC, id DESC LIMIT $4`,
      [principal.companyId, principal.userId, options.status, options.first],
    );
  }

  async statusOf(id: string): Promise<string | undefined> {
    const [row] = await this.dataSource.query<Array<{ status: string }>>(
      'SELECT status FROM export_jobs WHERE id = $1',
      [id],
    );
    return row?.status;
  }

  /** Cancels a queued or running job; undefined when it was neither. */
  async cancel(id: string): Promise<ExportJobRow | undefined> {
    const [row] = await this.returning<ExportJobRow>(
      `UPDATE export_jobs SET status = 'CANCELLED', finished_at = now(), updated_at = now()
        WHERE id = $1 AND status IN ('QUEUED', 'RUNNING') RETURNING *`,
      [id],
    );
    return row;
  }

  /** Starts a try under `token` (counters reset); undefined when the job was cancelled or finished meanwhile. */
  async claim(id: string, token: string): Promise<ExportJobRow | undefined> {
    const [row] = await this.returning<ExportJobRow>(
      `UPDATE export_jobs SET status = 'RUNNING', attempt_token = $2, attempts = attempts + 1,
              started_at = coalesce(started_at, now()), rows_exported = 0, progress = 0, bytes_written = 0,
              error = NULL, updated_at = now()
        WHERE id = $1 AND status IN ('QUEUED', 'RUNNING') RETURNING *`,
      [id, token],
    );
    return row;
  }

  /** Touches a running try's row; false when it is no longer this try's or no longer RUNNING. */
  async renewClaim(id: string, token: string): Promise<boolean> {
    const rows = await this.returning<{ status: string }>(
      `UPDATE export_jobs SET updated_at = now() WHERE id = $1 AND attempt_token = $2 AND status = 'RUNNING'
         RETURNING status`,
      [id, token],
    );
    return rows.length > 0;
  }

  async setTotal(id: string, token: string, total: number): Promise<void> {
    await this.dataSource.query(
      'UPDATE export_jobs SET total_rows = $2, updated_at = now() WHERE id = $1 AND attempt_token = $3',
      [id, total, token],
    );
  }

  /** Records a running try's progress; undefined when it is no longer this try's or no longer RUNNING. */
  async updateProgress(
    id: string,
    token: string,
    progress: { records: number; fraction: number; total: number },
  ): Promise<ExportJobRow | undefined> {
    const [row] = await this.returning<ExportJobRow>(
      `UPDATE export_jobs SET rows_exported = $3, progress = $4, total_rows = $5, updated_at = now()
          WHERE id = $1 AND attempt_token = $2 AND status = 'RUNNING' RETURNING *`,
      [id, token, progress.records, progress.fraction, progress.total],
    );
    return row;
  }

  /** Puts a failed try's job back to QUEUED with `error` saying why, for the queue's next try. */
  async requeue(id: string, token: string, error: string): Promise<void> {
    await this.dataSource.query(
      `UPDATE export_jobs SET status = 'QUEUED', error = $3, updated_at = now()
        WHERE id = $1 AND attempt_token = $2 AND status = 'RUNNING'`,
      [id, token, error],
    );
  }

  /**
   * Ends a queued or running job (a null `token` ends it whoever holds it); undefined when it had ended already or the
   * try lost its claim.
   */
  async finish(
    id: string,
    token: string | null,
    status: 'COMPLETED' | 'FAILED',
    outcome: ExportOutcome,
  ): Promise<ExportJobRow | undefined> {
    const [row] = await this.returning<ExportJobRow>(
      `UPDATE export_jobs SET status = $3, finished_at = now(), updated_at = now(),
              rows_exported = coalesce($4, rows_exported), bytes_written = coalesce($5, bytes_written),
              sha256 = $6, storage_key = $7, error = $8, total_rows = coalesce($9, total_rows),
              progress = CASE WHEN $3 = 'COMPLETED' THEN 1 ELSE progress END
        WHERE id = $1 AND ($2::uuid IS NULL OR attempt_token = $2) AND status IN ('QUEUED', 'RUNNING')
        RETURNING *`,
      [
        id,
        token,
        status,
        outcome.rows ?? null,
        outcome.bytes ?? null,
        outcome.sha256 ?? null,
        outcome.key ?? null,
        outcome.error ?? null,
        outcome.total ?? null,
      ],
    );
    return row;
  }

  /** Deletes finished jobs created more than `retentionHours` ago; answers whose files to delete. */
  deleteExpired(retentionHours: number): Promise<Array<{ id: string; company_id: string }>> {
    return this.returning<{ id: string; company_id: string }>(
      `DELETE FROM export_jobs WHERE created_at < now() - make_interval(hours => $1)
          AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')
        RETURNING id, company_id`,
      [retentionHours],
    );
  }

  /**
   * Fails RUNNING jobs untouched for `silentSeconds`. A RUNNING job is touched at least every progress step; one
   * silent for many claim periods lost its worker for good (the queue gave up retrying it).
   */
  failSilent(silentSeconds: number): Promise<ExportJobRow[]> {
    return this.returning<ExportJobRow>(
      `UPDATE export_jobs SET status = 'FAILED', error = 'the worker running this export stopped; start it again',
              finished_at = now(), updated_at = now()
        WHERE status = 'RUNNING' AND updated_at < now() - make_interval(secs => $1)
        RETURNING *`,
      [silentSeconds],
    );
  }

  /**
   * Fails QUEUED jobs waiting longer than `retentionHours`. A queued job whose queue entry was lost (an in-process
   * queue restarted) would hold one of its owner's slots for good; one still waiting after the whole retention period
   * is given up (a backlog clears long before).
   */
  failUnclaimed(retentionHours: number): Promise<ExportJobRow[]> {
    return this.returning<ExportJobRow>(
      `UPDATE export_jobs SET status = 'FAILED',
              error = 'no worker took this export within the retention period; start it again',
              finished_at = now(), updated_at = now()
        WHERE status = 'QUEUED' AND updated_at < now() - make_interval(hours => $1)
        RETURNING *`,
      [retentionHours],
    );
  }

  /** Rows of an UPDATE or DELETE ... RETURNING (TypeORM answers those with `[rows, affected]`). */
  private async returning<T>(sql: string, params: unknown[]): Promise<T[]> {
    const result = await this.dataSource.query<unknown[]>(sql, params);
    return (
      result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number' ? result[0] : result
    ) as T[];
  }
}

export function toView(row: ExportJobRow): ExportJobView {
  return {
    id: row.id,
    entityType: row.entity_type,
    format: row.format,
    compression: row.compression,
    fields: row.fields,
    fileName: row.file_name,
    status: row.status,
    progress: Number(row.progress),
    rowsExported: Number(row.rows_exported),
    totalRows: row.total_rows === null ? null : Number(row.total_rows),
    bytesWritten: Number(row.bytes_written),
    sha256: row.sha256,
    downloadUrl: row.status === 'COMPLETED' ? `/exports/${row.id}/download` : null,
    error: row.error,
    attempts: row.attempts,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}
