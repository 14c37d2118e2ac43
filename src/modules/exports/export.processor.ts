import { randomUUID } from 'node:crypto';
import { AppError, ErrorCode } from '../../platform/errors/app-error';
import type { Logger } from '../../platform/logging/logger';
import type { JobContext } from '../../platform/queue/queue.driver';
import type { FileStorage } from '../../platform/storage/file-storage';
import type { Principal } from '../kernel';
import type { ServiceRegistry } from '../kernel/registries';
import type { ExportJobEvents } from './export-job.events';
import type { ExportJobRepository, ExportJobRow, ExportOutcome } from './export-job.repository';
import { CONTENT_TYPE, encodeExport, EXTENSION } from './export.pipeline';
import { prepareExport } from './export.query';
import type { ExportSnapshots } from './export.snapshot';
import { EXPORT_MAX_ATTEMPTS, type ExportMetrics } from './export.types';

const PROGRESS_MIN_INTERVAL_MS = 250;
const PROGRESS_MIN_STEP = 0.05;

export interface ExportProcessorOptions {
  repository: ExportJobRepository;
  snapshots: ExportSnapshots;
  events: ExportJobEvents;
  identity: ServiceRegistry['identity'];
  storage: FileStorage;
  logger: Logger;
  metrics: ExportMetrics;
  gzipLevel: number;
  /** The queue's claim period; the row is renewed every half of it (at least every second). */
  lockMs: number;
  /** Exports one worker process runs at once. */
  concurrency: number;
}

export class CancelledError extends Error {
  constructor() {
    super('export cancelled');
    this.name = 'CancelledError';
  }
}

/** One try at one job, as its steps share it. */
interface Attempt {
  job: JobContext<{ exportId: string }>;
  /** The job's row as this try claimed it. */
  row: ExportJobRow;
  /** Names this try in every update it makes, so a try that lost its claim changes nothing. */
  token: string;
  /** Where the file goes in storage. */
  key: string;
  abort: AbortController;
  started: bigint;
}

type Written = { rows: number; bytes: number; sha256: string; total: number };

/**
 * The worker's side of export jobs: claims a job, runs it as COPY under its owner's visibility (encoded, compressed,
 * stored atomically), reports progress, and records the outcome; a cancel from any process aborts it here.
 */
export class ExportProcessor {
  /** Exports running in this process, by job id: a cancel message aborts them here. */
  private readonly running = new Map<string, AbortController>();

  constructor(private readonly options: ExportProcessorOptions) {}

  /** What the module wires from the processor: the worker's concurrency and claim period. */
  get settings(): { concurrency: number; lockMs: number } {
    return { concurrency: this.options.concurrency, lockMs: this.options.lockMs };
  }

  /** Listens for cancellations from any process (call once at start). */
  async start(): Promise<void> {
    await this.options.events.onCancel((jobId) => {
      this.running.get(jobId)?.abort(new CancelledError());
    });
  }

  /** Claims the job, streams it to storage and records the outcome. */
  async run(job: JobContext<{ exportId: string }>): Promise<void> {
    const { exportId } = job.data;
    const token = randomUUID();
    const row = await this.options.repository.claim(exportId, token);
    if (!row) return; // cancelled or finished meanwhile
    this.options.events.changed(row);
    const attempt: Attempt = {
      job,
      row,
      token,
      key: `${row.company_id}/${row.id}/${token}.${EXTENSION[row.format]}${row.compression === 'GZIP' ? '.gz' : ''}`,
      abort: new AbortController(),
      started: process.hrtime.bigint(),
    };
    this.running.set(exportId, attempt.abort);
    const heartbeat = this.startHeartbeat(attempt);
    try {
      await this.completed(attempt, await this.write(attempt));
    } catch (error) {
      await this.failed(attempt, error);
    } finally {
      clearInterval(heartbeat);
      this.running.delete(exportId);
    }
  }

  /**
   * A long sort may send no row for minutes: the claim is renewed on a timer, so cleanup never takes a live export
   * for a dead one, and a job no longer RUNNING (cancelled, failed by cleanup) stops here.
   */
  private startHeartbeat({ row, token, abort }: Attempt): NodeJS.Timeout {
    const heartbeat = setInterval(
      () => {
        this.options.repository
          .renewClaim(row.id, token)
          .then((renewed) => {
            if (!renewed) abort.abort(new CancelledError());
          })
          .catch((error: Error) =>
            this.options.logger.warn({ err: error, exportId: row.id }, 'export heartbeat'),
          );
      },
      Math.max(1_000, this.options.lockMs / 2),
    );
    heartbeat.unref();
    return heartbeat;
  }

  /** Runs the stored job as its owner (its columns resolved as a request's are) and puts the file into storage. */
  private async write(attempt: Attempt): Promise<Written> {
    const { row, token, key, abort } = attempt;
    const principal = await this.ownerPrincipal(row);
    const prepared = prepareExport(
      { entityType: row.entity_type, fields: row.fields, filters: row.filters, sort: row.sort },
      'job',
    );
    return this.options.snapshots.run(principal, prepared, undefined, async (client, statement, total) => {
      // Not awaited: a second connection asked for inside the snapshot would wait for ever on the embedded
      // database's single backend. Progress and the final update carry the total as well.
      this.options.repository
        .setTotal(row.id, token, total)
        .catch((error: Error) => this.options.logger.warn({ err: error, exportId: row.id }, 'export total'));
      const encoded = encodeExport(client, statement, {
        format: row.format,
        gzipLevel: row.compression === 'GZIP' ? this.options.gzipLevel : undefined,
        onRecords: this.progressReporter(row, token, total, abort),
      });
      const onAbort = () => encoded.body.destroy(abort.signal.reason as Error);
      abort.signal.addEventListener('abort', onAbort, { once: true });
      if (abort.signal.aborted) onAbort(); // cancelled while counting
      try {
        await this.options.storage.put(key, encoded.body, { contentType: CONTENT_TYPE[row.format] });
        return { ...(await encoded.done), total };
      } finally {
        abort.signal.removeEventListener('abort', onAbort);
      }
    });
  }

  /** Marks the job COMPLETED with its file and measures it; a job cancelled at the last moment loses the file. */
  private async completed({ row, token, key, started }: Attempt, written: Written): Promise<void> {
    const done = await this.finish(row.id, token, 'COMPLETED', {
      rows: written.rows,
      total: written.total,
      bytes: written.bytes,
      sha256: written.sha256,
      key,
    });
    const { metrics } = this.options;
    if (!done) {
      await this.options.storage.delete(key); // cancelled at the last moment: the file goes with the job
      metrics.operations.inc({ format: row.format, status: 'cancelled' });
      return;
    }
    metrics.operations.inc({ format: row.format, status: 'success' });
    metrics.rows.inc({ format: row.format }, written.rows);
    metrics.bytes.inc({ format: row.format }, written.bytes);
    metrics.duration.observe({ format: row.format }, Number(process.hrtime.bigint() - started) / 1e9);
  }

  /**
   * After a try failed (its file deleted): a cancelled job ends quietly, a retryable error goes back to the queue
   * (rethrown) while tries remain, anything else fails the job.
   */
  private async failed({ job, row, token, key, abort }: Attempt, error: unknown): Promise<void> {
    await this.options.storage.delete(key).catch(() => false);
    const cancelled =
      abort.signal.aborted || (await this.options.repository.statusOf(row.id)) === 'CANCELLED';
    if (cancelled) {
      this.options.metrics.operations.inc({ format: row.format, status: 'cancelled' });
      this.options.logger.info({ exportId: row.id }, 'export cancelled');
      return;
    }
    const message = publicMessage(error);
    // Our own errors are final (bad input, a deactivated owner) except a busy pool, which the next try may find free.
    const retryable = !(error instanceof AppError) || error.code === ErrorCode.SERVICE_UNAVAILABLE;
    if (job.attempt < EXPORT_MAX_ATTEMPTS && retryable) {
      await this.options.repository.requeue(
        row.id,
        token,
        `attempt ${job.attempt} failed (${message}); retrying`,
      );
      throw error; // the queue retries it after a backoff
    }
    await this.finish(row.id, token, 'FAILED', { error: message });
    this.options.metrics.operations.inc({ format: row.format, status: 'failure' });
    this.options.logger.warn({ exportId: row.id, err: error }, 'export failed');
  }

  /** Progress at most every 250 ms (or each 5%), to the row and the pub/sub; a cancel seen there aborts. */
  private progressReporter(row: ExportJobRow, token: string, total: number, abort: AbortController) {
    let lastAt = 0;
    let lastProgress = 0;
    let inFlight = false;
    return (records: number) => {
      const progress = total > 0 ? Math.min(1, records / total) : 1;
      const now = Date.now();
      if (
        inFlight ||
        (now - lastAt < PROGRESS_MIN_INTERVAL_MS && progress - lastProgress < PROGRESS_MIN_STEP)
      )
        return;
      if (progress <= lastProgress && now - lastAt < PROGRESS_MIN_INTERVAL_MS * 4) return;
      lastAt = now;
      lastProgress = progress;
      inFlight = true;
      this.options.repository
        .updateProgress(row.id, token, { records, fraction: progress, total })
        .then((updated) => {
          if (!updated) abort.abort(new CancelledError());
          else this.options.events.changed(updated);
        })
        .catch((error: Error) =>
          this.options.logger.warn({ err: error, exportId: row.id }, 'export progress'),
        )
        .finally(() => (inFlight = false));
    };
  }

  private async finish(
    id: string,
    token: string,
    status: 'COMPLETED' | 'FAILED',
    outcome: ExportOutcome,
  ): Promise<ExportJobRow | undefined> {
    const row = await this.options.repository.finish(id, token, status, outcome);
    if (row) this.options.events.changed(row);
    return row;
  }

  /** The job's owner as a principal, through identity's user lookup (a deactivation reaches every process at once). */
  private async ownerPrincipal(row: ExportJobRow): Promise<Principal> {
    const [user] = await this.options.identity.usersByIds(row.company_id, [row.owner_id]);
    if (!user || user.deactivatedAt)
      throw new AppError(ErrorCode.FORBIDDEN, 'The user who started this export is no longer active');
    return {
      userId: user.id,
      companyId: user.companyId,
      roleId: user.roleId,
      isAdmin: user.isAdmin,
      tokenExpiresAt: Number.MAX_SAFE_INTEGER,
    };
  }
}

/** Errors of ours keep their message; anything else is summarised (no SQL or stack in a user-visible field). */
function publicMessage(error: unknown): string {
  if (error instanceof AppError) return error.message;
  const code = (error as { code?: string }).code;
  return code ? `the export failed (database error ${code})` : 'the export failed';
}
