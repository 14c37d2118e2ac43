import { AppError, ErrorCode, NotFoundError, ValidationError } from '../../platform/errors/app-error';
import type { QueueDriver } from '../../platform/queue/queue.driver';
import type { FileStorage } from '../../platform/storage/file-storage';
import { RECORD_TABLE, type Principal } from '../kernel';
import type { ExportJobEvents } from './export-job.events';
import { toView, type ExportJobRepository, type ExportJobRow } from './export-job.repository';
import { CONTENT_TYPE, encodeExport } from './export.pipeline';
import { exportFileName, prepareExport, type StartExportInput } from './export.query';
import type { ExportSnapshots } from './export.snapshot';
import {
  EXPORT_MAX_ATTEMPTS,
  ExportErrorCode,
  ExportQueue,
  type ExportJobView,
  type ExportMetrics,
  type ExportStatus,
} from './export.types';

const FINAL: ReadonlySet<string> = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
const FOLLOW_REREAD_MS = 1_000;
/** Direct streams one user may hold open at once (each holds an export connection while the client reads). */
const MAX_STREAMS_PER_USER = 2;
const STREAM_STATEMENT_TIMEOUT_MS = 120_000;

/** A direct export on its way to the caller, with what its headers say about it. */
export interface StreamedExport {
  body: NodeJS.ReadableStream;
  contentType: string;
  fileName: string;
  /** Rows the body holds (counted in the body's own snapshot). */
  rows: number;
  /** The most rows this answer could hold: the request's `limit`, or `EXPORT_STREAM_MAX_ROWS`. */
  rowLimit: number;
  /** More rows matched than `rowLimit`: the body holds the first `rowLimit` of them. */
  truncated: boolean;
}

export interface ExportServiceOptions {
  repository: ExportJobRepository;
  snapshots: ExportSnapshots;
  events: ExportJobEvents;
  queue: QueueDriver;
  storage: FileStorage;
  metrics: ExportMetrics;
  maxActivePerUser: number;
  retentionHours: number;
  gzipLevel: number;
  streamMaxRows: number;
  /** The worker's claim period: a RUNNING job silent for ten of them lost its worker. */
  lockMs: number;
}

/**
 * Export jobs: validated and queued here, run by a worker (`ExportProcessor`), followed live over the pub/sub,
 * downloaded by their owner only, cancelled, and deleted after the retention period; small exports also stream
 * straight to the caller.
 */
export class ExportService {
  /** Direct streams open in this process, by user. */
  private readonly streams = new Map<string, number>();

  constructor(private readonly options: ExportServiceOptions) {}

  /** What the module wires from the service: the file store. */
  get settings(): { storage: FileStorage } {
    return { storage: this.options.storage };
  }

  async startExport(principal: Principal, input: StartExportInput): Promise<ExportJobView> {
    prepareExport(input);
    const format = input.format;
    const compression = input.compression ?? 'NONE';
    const fileName = exportFileName(
      input.fileName ?? `${input.entityType.toLowerCase()}s-${new Date().toISOString().slice(0, 10)}`,
      format,
      compression === 'GZIP',
    );
    const inserted = await this.options.repository.insertWithinLimit(
      principal,
      {
        entityType: input.entityType,
        format,
        compression,
        fields: input.fields,
        filters: input.filters ?? [],
        sort: input.sort ?? [],
        fileName,
      },
      this.options.maxActivePerUser,
    );
    if (!('row' in inserted))
      throw new AppError(
        ExportErrorCode.TOO_MANY_EXPORTS,
        `You have ${inserted.active} exports queued or running; at most ${this.options.maxActivePerUser} may run at once. ` +
          'Wait for one to finish or cancel one.',
      );
    const { row } = inserted;
    try {
      await this.options.queue.add(
        ExportQueue.export,
        'export',
        { exportId: row.id },
        { jobId: row.id, attempts: EXPORT_MAX_ATTEMPTS, backoffMs: 1_000 },
      );
    } catch (error) {
      const failed = await this.options.repository.finish(row.id, null, 'FAILED', {
        error: 'could not enqueue the export; try again',
      });
      if (failed) this.options.events.changed(failed);
      throw new AppError(
        ErrorCode.SERVICE_UNAVAILABLE,
        'The export queue is unavailable; try again shortly',
        {
          cause: (error as Error).message,
        },
      );
    }
    return toView(row);
  }

  async exportJob(principal: Principal, id: string): Promise<ExportJobView> {
    return toView(await this.ownRow(principal, id));
  }

  async exportJobs(
    principal: Principal,
    options: { first?: number | null; status?: ExportStatus | null },
  ): Promise<ExportJobView[]> {
    const first = options.first ?? 20;
    if (!Number.isInteger(first) || first < 1 || first > 100)
      throw ValidationError.single('first', 'must be an integer between 1 and 100');
    const rows = await this.options.repository.list(principal, { first, status: options.status ?? null });
    return rows.map(toView);
  }

  async cancelExport(principal: Principal, id: string): Promise<ExportJobView> {
    const current = await this.ownRow(principal, id);
    const row = await this.options.repository.cancel(current.id);
    if (!row)
      throw new AppError(
        ErrorCode.CONFLICT,
        `Export ${id} is ${current.status}; only a queued or running export can be cancelled`,
      );
    await this.options.events.cancelled(id);
    this.options.events.changed(row);
    if (current.status === 'QUEUED')
      this.options.metrics.operations.inc({ format: row.format, status: 'cancelled' });
    return toView(row);
  }

  /** The job's snapshot first, then every change, until its final status (also when that came before subscribing). */
  async *follow(principal: Principal, id: string): AsyncGenerator<ExportJobView> {
    const events = this.options.events.changes();
    let nextEvent = events.next();
    // The row is read again every second whatever else is published, in case this job's event went out before the
    // subscription listened (or while Redis was away).
    let tick!: () => void;
    let ticked = new Promise<void>((resolve) => (tick = resolve));
    const timer = setInterval(() => tick(), FOLLOW_REREAD_MS);
    try {
      let last = toView(await this.ownRow(principal, id));
      yield last;
      while (!FINAL.has(last.status)) {
        const arrived = await Promise.race([
          nextEvent.then((result) => ({ result })),
          ticked.then(() => undefined),
        ]);
        let candidate: ExportJobView | undefined;
        if (arrived) {
          if (arrived.result.done) return;
          nextEvent = events.next();
          const event = arrived.result.value;
          if (event.job.id !== id || event.companyId !== principal.companyId) continue;
          candidate = event.job;
        } else {
          ticked = new Promise<void>((resolve) => (tick = resolve));
          candidate = toView(await this.ownRow(principal, id));
        }
        if (isNewer(candidate, last)) {
          last = candidate;
          yield last;
        }
      }
    } finally {
      clearInterval(timer);
      await events.return?.();
    }
  }

  /**
   * A small export straight to the caller (no job, no file): the same columns, filters, visibility and encoders,
   * capped at `streamMaxRows`. Aborting `signal` (the client went away) stops the COPY. Before the first byte it knows,
   * from the same snapshot, how many rows the answer holds and whether more matched than the limit let through
   * (`truncated`), so the route can say so in its headers.
   */
  async streamExport(
    principal: Principal,
    input: StartExportInput & { limit?: number },
    signal: AbortSignal,
  ): Promise<StreamedExport> {
    const prepared = prepareExport(input, 'query');
    const limit = input.limit ?? this.options.streamMaxRows;
    if (!Number.isInteger(limit) || limit < 1 || limit > this.options.streamMaxRows)
      throw ValidationError.single(
        'query.limit',
        `must be an integer between 1 and ${this.options.streamMaxRows}`,
      );
    const gzip = input.compression === 'GZIP';
    const closed = this.openStream(principal);
    let resolveBody!: (body: { body: NodeJS.ReadableStream; rows: number; truncated: boolean }) => void;
    let rejectBody!: (error: Error) => void;
    const bodyReady = new Promise<{ body: NodeJS.ReadableStream; rows: number; truncated: boolean }>(
      (resolve, reject) => {
        resolveBody = resolve;
        rejectBody = reject;
      },
    );
    this.options.snapshots
      .run(
        principal,
        prepared,
        limit,
        async (client, statement) => {
          await client.query(`SET LOCAL statement_timeout = ${STREAM_STATEMENT_TIMEOUT_MS}`);
          // Counting at most one row past the limit is enough to know whether the cap cut the answer short.
          const probe = await client.query<{ matched: number }>(
            `SELECT count(*)::int AS matched FROM (SELECT 1 FROM ${RECORD_TABLE[prepared.entityType]} r
            WHERE ${statement.where} LIMIT ${limit + 1}) AS upto`,
          );
          const matched = probe.rows[0]?.matched ?? 0;
          const encoded = encodeExport(client, statement, {
            format: input.format,
            gzipLevel: gzip ? this.options.gzipLevel : undefined,
          });
          const stop = () => encoded.body.destroy(new Error('client went away'));
          if (signal.aborted) stop();
          signal.addEventListener('abort', stop, { once: true });
          resolveBody({ body: encoded.body, rows: Math.min(matched, limit), truncated: matched > limit });
          try {
            await encoded.done;
          } finally {
            signal.removeEventListener('abort', stop);
          }
        },
        { count: false },
      )
      .catch((error: Error) => rejectBody(error))
      .finally(closed);
    const { body, rows, truncated } = await bodyReady;
    return {
      body,
      contentType: gzip ? 'application/gzip' : CONTENT_TYPE[input.format],
      fileName: exportFileName(input.fileName ?? `${input.entityType.toLowerCase()}s`, input.format, gzip),
      rows,
      rowLimit: limit,
      truncated,
    };
  }

  /** The finished file of the caller's own export; 404 for anyone else (ids cannot be probed), 409 while unfinished. */
  async downloadable(principal: Principal, id: string): Promise<{ view: ExportJobView; key: string }> {
    const row = await this.ownRow(principal, id);
    if (row.status !== 'COMPLETED' || !row.storage_key)
      throw new AppError(
        ErrorCode.CONFLICT,
        `Export ${id} is ${row.status}; it can be downloaded once COMPLETED`,
      );
    return { view: toView(row), key: row.storage_key };
  }

  /** Deletes jobs and files older than the retention, and fails jobs whose worker stopped renewing them. */
  async cleanup(): Promise<{ deleted: number; failedStale: number }> {
    const { repository, retentionHours } = this.options;
    const old = await repository.deleteExpired(retentionHours);
    for (const row of old)
      await this.options.storage.deleteAll(`${row.company_id}/${row.id}`).catch(() => undefined);
    const stale = await repository.failSilent((this.options.lockMs * 10) / 1000);
    const unclaimed = await repository.failUnclaimed(retentionHours);
    for (const row of [...stale, ...unclaimed]) this.options.events.changed(row);
    return { deleted: old.length, failedStale: stale.length + unclaimed.length };
  }

  /** Counts a direct stream against its user's limit; the answer gives the slot back. */
  private openStream(principal: Principal): () => void {
    const open = this.streams.get(principal.userId) ?? 0;
    if (open >= MAX_STREAMS_PER_USER)
      throw new AppError(
        ExportErrorCode.TOO_MANY_EXPORTS,
        `You have ${open} direct export streams open; at most ${MAX_STREAMS_PER_USER} at once. Use startExport for more.`,
      );
    this.streams.set(principal.userId, open + 1);
    return () => {
      const left = (this.streams.get(principal.userId) ?? 1) - 1;
      if (left > 0) this.streams.set(principal.userId, left);
      else this.streams.delete(principal.userId);
    };
  }

  private async ownRow(principal: Principal, id: string): Promise<ExportJobRow> {
    const row = await this.options.repository.ownRow(principal, id);
    if (!row) throw new NotFoundError('ExportJob', id);
    return row;
  }
}

const STATUS_RANK: Record<ExportStatus, number> = {
  QUEUED: 0,
  RUNNING: 1,
  COMPLETED: 2,
  FAILED: 2,
  CANCELLED: 2,
};

/** Events may arrive out of order across processes: only a later state is passed on. */
function isNewer(candidate: ExportJobView, last: ExportJobView): boolean {
  if (candidate.attempts !== last.attempts) return candidate.attempts > last.attempts;
  if (STATUS_RANK[candidate.status] !== STATUS_RANK[last.status])
    return STATUS_RANK[candidate.status] > STATUS_RANK[last.status];
  return candidate.rowsExported > last.rowsExported;
}
