import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type { Counter, Histogram } from 'prom-client';
import type { DataSource } from 'typeorm';
import {
  AppError,
  ErrorCode,
  isUuid,
  NotFoundError,
  ValidationError,
  type FieldViolation,
} from '../../platform/errors/app-error';
import type { Logger } from '../../platform/logging/logger';
import type { EventBus } from '../../platform/pubsub/event-bus';
import type { GraphQLPubSub } from '../../platform/pubsub/graphql-pubsub';
import type { JobContext, QueueDriver } from '../../platform/queue/queue.driver';
import type { FileStorage } from '../../platform/storage/file-storage';
import {
  bindNamed,
  filtersToSql,
  graphqlEnum,
  type EnumValue,
  RECORD_TABLE,
  RecordType,
  sortToSql,
  validateFilters,
  type Principal,
  type RecordFilter,
  type RecordSort,
} from '../kernel';
import type { ServiceRegistry } from '../kernel/registries';
import { exportColumns, fromClause, type ExportColumn } from './export.fields';
import {
  CONTENT_TYPE,
  encodeExport,
  EXTENSION,
  ExportFormat,
  SettingsBinder,
  type ExportStatement,
} from './export.pipeline';

export const ExportQueue = { export: 'export' } as const;
export const ExportTopic = { progress: 'EXPORT_PROGRESS' } as const;
export const ExportErrorCode = { TOO_MANY_EXPORTS: 'TOO_MANY_EXPORTS' } as const;
const CANCEL_CHANNEL = 'crm:exports:cancel';

export const ExportStatus = graphqlEnum('ExportStatus', [
  'QUEUED',
  'RUNNING',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
]);
export type ExportStatus = EnumValue<typeof ExportStatus>;
export const ExportCompression = graphqlEnum('ExportCompression', ['GZIP', 'NONE']);
export type ExportCompression = EnumValue<typeof ExportCompression>;

const FINAL: ReadonlySet<string> = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
/** A job is tried this many times (a worker that dies mid-export counts as a try). */
const MAX_ATTEMPTS = 2;
const PROGRESS_MIN_INTERVAL_MS = 250;
const FOLLOW_REREAD_MS = 1_000;
/** Direct streams one user may hold open at once (each holds an export connection while the client reads). */
const MAX_STREAMS_PER_USER = 2;
const STREAM_STATEMENT_TIMEOUT_MS = 120_000;
const PROGRESS_MIN_STEP = 0.05;
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$/;

type VisibilityService = ServiceRegistry['visibility'];

export interface StartExportInput {
  entityType: RecordType;
  format: ExportFormat;
  fields: string[];
  filters?: RecordFilter[] | null;
  sort?: RecordSort[] | null;
  compression?: ExportCompression | null;
  fileName?: string | null;
}

export interface ExportJobView {
  id: string;
  entityType: RecordType;
  format: ExportFormat;
  compression: ExportCompression;
  fields: string[];
  fileName: string;
  status: ExportStatus;
  progress: number;
  rowsExported: number;
  totalRows: number | null;
  bytesWritten: number;
  sha256: string | null;
  downloadUrl: string | null;
  error: string | null;
  attempts: number;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

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

/**
 * The name a file is served under: the caller's name (or the default) with the format's extension and `.gz` for
 * gzip appended unless it already ends with them, so `report` becomes `report.csv.gz` and `report.csv` stays one.
 */
export function exportFileName(name: string, format: ExportFormat, gzip: boolean): string {
  const extension = `.${EXTENSION[format]}`;
  let full = name;
  if (gzip && full.toLowerCase().endsWith('.gz')) full = full.slice(0, -3);
  if (!full.toLowerCase().endsWith(extension)) full += extension;
  return gzip ? `${full}.gz` : full;
}

/** What the pub/sub carries: the job's state now, for its owner's subscriptions on every gateway. */
export interface ExportProgressEvent {
  companyId: string;
  ownerId: string;
  job: ExportJobView;
}

interface ExportJobRow {
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

export interface ExportMetrics {
  operations: Counter<'format' | 'status'>;
  rows: Counter<'format'>;
  bytes: Counter<'format'>;
  duration: Histogram<'format'>;
}

export interface ExportServiceOptions {
  dataSource: DataSource;
  /** The exports' own small pool: a long export never holds a connection GraphQL needs. */
  pool: Pool;
  visibility: () => VisibilityService;
  identity: ServiceRegistry['identity'];
  queue: QueueDriver;
  pubsub: GraphQLPubSub;
  events: EventBus;
  storage: FileStorage;
  logger: Logger;
  metrics: ExportMetrics;
  maxActivePerUser: number;
  retentionHours: number;
  gzipLevel: number;
  streamMaxRows: number;
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

/** What an export runs: its validated columns and statement parts, whoever asks (job or direct stream). */
interface PreparedExport {
  columns: ExportColumn[];
  entityType: RecordType;
  filters: RecordFilter[];
  sort: RecordSort[];
}

/**
 * Export jobs: validated and queued here, run by a worker (COPY under the owner's visibility, encoded, compressed,
 * stored atomically), followed live over the pub/sub, downloaded by their owner only, cancelled, retried after a
 * worker dies, and deleted after the retention period.
 */
export class ExportService {
  /** Exports running in this process, by job id: a cancel message aborts them here. */
  private readonly running = new Map<string, AbortController>();
  /** Direct streams open in this process, by user. */
  private readonly streams = new Map<string, number>();

  constructor(private readonly options: ExportServiceOptions) {}

  /** What the module wires from the service: the worker's concurrency and claim period, the file store. */
  get settings(): { concurrency: number; lockMs: number; storage: FileStorage } {
    return {
      concurrency: this.options.concurrency,
      lockMs: this.options.lockMs,
      storage: this.options.storage,
    };
  }

  /** Listens for cancellations from any process (call once at start). */
  async start(): Promise<void> {
    await this.options.events.subscribe(CANCEL_CHANNEL, (jobId) => {
      this.running.get(jobId)?.abort(new CancelledError());
    });
  }

  prepare(input: Omit<StartExportInput, 'format'> & { format?: unknown }, path = 'input'): PreparedExport {
    const violations: FieldViolation[] = [];
    if (!Object.values(RecordType).includes(input.entityType))
      violations.push({
        field: `${path}.entityType`,
        rule: `must be one of ${Object.values(RecordType).join(', ')}`,
      });
    if (input.format !== undefined && !Object.values(ExportFormat).includes(input.format as ExportFormat))
      violations.push({
        field: `${path}.format`,
        rule: `must be one of ${Object.values(ExportFormat).join(', ')}`,
      });
    if (input.compression != null && !Object.values(ExportCompression).includes(input.compression))
      violations.push({ field: `${path}.compression`, rule: 'must be GZIP or NONE' });
    if (input.fileName != null && !FILE_NAME.test(input.fileName))
      violations.push({
        field: `${path}.fileName`,
        rule: 'must be 1 to 100 letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit',
      });
    for (const part of ['filters', 'sort'] as const) {
      const list: unknown = input[part];
      if (
        list != null &&
        (!Array.isArray(list) || list.some((item) => typeof item !== 'object' || item === null))
      )
        violations.push({ field: `${path}.${part}`, rule: 'must be a list of objects' });
    }
    if (!Array.isArray(input.fields) || input.fields.some((field) => typeof field !== 'string'))
      violations.push({ field: `${path}.fields`, rule: 'must be a list of field names' });
    if (violations.length > 0) throw new ValidationError(violations);
    const columns = exportColumns(input.entityType, input.fields ?? [], `${path}.fields`);
    const filters = input.filters ?? [];
    validateFilters(input.entityType, filters, `${path}.filters`);
    const sort = input.sort ?? [];
    sortToSql(input.entityType, sort, 'r', `${path}.sort`);
    return { columns, entityType: input.entityType, filters, sort };
  }

  async startExport(principal: Principal, input: StartExportInput): Promise<ExportJobView> {
    this.prepare(input);
    const format = input.format;
    const compression = input.compression ?? 'NONE';
    const fileName = exportFileName(
      input.fileName ?? `${input.entityType.toLowerCase()}s-${new Date().toISOString().slice(0, 10)}`,
      format,
      compression === 'GZIP',
    );
    const row = await this.options.dataSource.transaction(async (manager) => {
      // One export at a time per user passes the limit check, so two requests cannot both take the last slot.
      await manager.query(`SELECT pg_advisory_xact_lock(hashtext('crm:exports:' || $1::text))`, [
        principal.userId,
      ]);
      const [{ active }] = await manager.query<[{ active: number }]>(
        `SELECT count(*)::int AS active FROM export_jobs WHERE owner_id = $1 AND status IN ('QUEUED', 'RUNNING')`,
        [principal.userId],
      );
      if (active >= this.options.maxActivePerUser)
        throw new AppError(
          ExportErrorCode.TOO_MANY_EXPORTS,
          `You have ${active} exports queued or running; at most ${this.options.maxActivePerUser} may run at once. ` +
            'Wait for one to finish or cancel one.',
        );
      const [inserted] = await manager.query<ExportJobRow[]>(
        `INSERT INTO export_jobs (company_id, owner_id, entity_type, format, compression, fields, filters, sort, file_name)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
        [
          principal.companyId,
          principal.userId,
          input.entityType,
          format,
          compression,
          input.fields,
          JSON.stringify(input.filters ?? []),
          JSON.stringify(input.sort ?? []),
          fileName,
        ],
      );
      return inserted!;
    });
    try {
      await this.options.queue.add(
        ExportQueue.export,
        'export',
        { exportId: row.id },
        { jobId: row.id, attempts: MAX_ATTEMPTS, backoffMs: 1_000 },
      );
    } catch (error) {
      await this.finish(row.id, null, 'FAILED', { error: 'could not enqueue the export; try again' });
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
    const rows = await this.options.dataSource.query<ExportJobRow[]>(
      `SELECT * FROM export_jobs WHERE company_id = $1 AND owner_id = $2 AND ($3::text IS NULL OR status = $3)
        ORDER BY created_at DESC, id DESC LIMIT $4`,
      [principal.companyId, principal.userId, options.status ?? null, first],
    );
    return rows.map(toView);
  }

  async cancelExport(principal: Principal, id: string): Promise<ExportJobView> {
    const current = await this.ownRow(principal, id);
    const [row] = await this.returning<ExportJobRow>(
      `UPDATE export_jobs SET status = 'CANCELLED', finished_at = now(), updated_at = now()
        WHERE id = $1 AND status IN ('QUEUED', 'RUNNING') RETURNING *`,
      [current.id],
    );
    if (!row)
      throw new AppError(
        ErrorCode.CONFLICT,
        `Export ${id} is ${current.status}; only a queued or running export can be cancelled`,
      );
    await this.options.events.publish(CANCEL_CHANNEL, id);
    this.publish(row);
    if (current.status === 'QUEUED')
      this.options.metrics.operations.inc({ format: row.format, status: 'cancelled' });
    return toView(row);
  }

  /** The job's snapshot first, then every change, until its final status (also when that came before subscribing). */
  async *follow(principal: Principal, id: string): AsyncGenerator<ExportJobView> {
    const events = this.options.pubsub.subscribe(ExportTopic.progress)[Symbol.asyncIterator]();
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
          const event = arrived.result.value as ExportProgressEvent;
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

  /** The worker's side: claims the job, streams it to storage and records the outcome. */
  async run(job: JobContext<{ exportId: string }>): Promise<void> {
    const { exportId } = job.data;
    const token = randomUUID();
    const [claimed] = await this.returning<ExportJobRow>(
      `UPDATE export_jobs SET status = 'RUNNING', attempt_token = $2, attempts = attempts + 1,
              started_at = coalesce(started_at, now()), rows_exported = 0, progress = 0, bytes_written = 0,
              error = NULL, updated_at = now()
        WHERE id = $1 AND status IN ('QUEUED', 'RUNNING') RETURNING *`,
      [exportId, token],
    );
    if (!claimed) return; // cancelled or finished meanwhile
    this.publish(claimed);
    const started = process.hrtime.bigint();
    const abort = new AbortController();
    this.running.set(exportId, abort);
    // A long sort may send no row for minutes: the claim is renewed on a timer, so cleanup never takes a live export
    // for a dead one, and a job no longer RUNNING (cancelled, failed by cleanup) stops here.
    const heartbeat = setInterval(
      () => {
        this.returning<{ status: string }>(
          `UPDATE export_jobs SET updated_at = now() WHERE id = $1 AND attempt_token = $2 AND status = 'RUNNING'
         RETURNING status`,
          [exportId, token],
        )
          .then((rows) => {
            if (rows.length === 0) abort.abort(new CancelledError());
          })
          .catch((error: Error) => this.options.logger.warn({ err: error, exportId }, 'export heartbeat'));
      },
      Math.max(1_000, this.options.lockMs / 2),
    );
    heartbeat.unref();
    const key = `${claimed.company_id}/${claimed.id}/${token}.${EXTENSION[claimed.format]}${
      claimed.compression === 'GZIP' ? '.gz' : ''
    }`;
    try {
      const principal = await this.ownerPrincipal(claimed);
      const prepared = this.prepare(
        {
          entityType: claimed.entity_type,
          fields: claimed.fields,
          filters: claimed.filters,
          sort: claimed.sort,
        },
        'job',
      );
      const outcome = await this.withSnapshot(
        principal,
        prepared,
        undefined,
        async (client, statement, total) => {
          // Not awaited: a second connection asked for inside the snapshot would wait for ever on the embedded
          // database's single backend. Progress and the final update carry the total as well.
          this.options.dataSource
            .query(
              'UPDATE export_jobs SET total_rows = $2, updated_at = now() WHERE id = $1 AND attempt_token = $3',
              [exportId, total, token],
            )
            .catch((error: Error) => this.options.logger.warn({ err: error, exportId }, 'export total'));
          const progress = this.progressReporter(claimed, token, total, abort);
          const encoded = encodeExport(client, statement, {
            format: claimed.format,
            gzipLevel: claimed.compression === 'GZIP' ? this.options.gzipLevel : undefined,
            onRecords: progress,
          });
          const onAbort = () => encoded.body.destroy(abort.signal.reason as Error);
          abort.signal.addEventListener('abort', onAbort, { once: true });
          if (abort.signal.aborted) onAbort(); // cancelled while counting
          try {
            await this.options.storage.put(key, encoded.body, { contentType: CONTENT_TYPE[claimed.format] });
            return { ...(await encoded.done), total };
          } finally {
            abort.signal.removeEventListener('abort', onAbort);
          }
        },
      );
      const done = await this.finish(exportId, token, 'COMPLETED', {
        rows: outcome.rows,
        total: outcome.total,
        bytes: outcome.bytes,
        sha256: outcome.sha256,
        key,
      });
      if (!done) {
        await this.options.storage.delete(key); // cancelled at the last moment: the file goes with the job
        this.options.metrics.operations.inc({ format: claimed.format, status: 'cancelled' });
        return;
      }
      const { metrics } = this.options;
      metrics.operations.inc({ format: claimed.format, status: 'success' });
      metrics.rows.inc({ format: claimed.format }, outcome.rows);
      metrics.bytes.inc({ format: claimed.format }, outcome.bytes);
      metrics.duration.observe({ format: claimed.format }, Number(process.hrtime.bigint() - started) / 1e9);
    } catch (error) {
      await this.options.storage.delete(key).catch(() => false);
      const cancelled = abort.signal.aborted || (await this.statusOf(exportId)) === 'CANCELLED';
      if (cancelled) {
        this.options.metrics.operations.inc({ format: claimed.format, status: 'cancelled' });
        this.options.logger.info({ exportId }, 'export cancelled');
        return;
      }
      const message = publicMessage(error);
      // Our own errors are final (bad input, a deactivated owner) except a busy pool, which the next try may find free.
      const retryable = !(error instanceof AppError) || error.code === ErrorCode.SERVICE_UNAVAILABLE;
      if (job.attempt < MAX_ATTEMPTS && retryable) {
        await this.options.dataSource.query(
          `UPDATE export_jobs SET status = 'QUEUED', error = $3, updated_at = now()
            WHERE id = $1 AND attempt_token = $2 AND status = 'RUNNING'`,
          [exportId, token, `attempt ${job.attempt} failed (${message}); retrying`],
        );
        throw error; // the queue retries it after a backoff
      }
      await this.finish(exportId, token, 'FAILED', { error: message });
      this.options.metrics.operations.inc({ format: claimed.format, status: 'failure' });
      this.options.logger.warn({ exportId, err: error }, 'export failed');
    } finally {
      clearInterval(heartbeat);
      this.running.delete(exportId);
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
    const prepared = this.prepare(input, 'query');
    const limit = input.limit ?? this.options.streamMaxRows;
    if (!Number.isInteger(limit) || limit < 1 || limit > this.options.streamMaxRows)
      throw ValidationError.single(
        'query.limit',
        `must be an integer between 1 and ${this.options.streamMaxRows}`,
      );
    const gzip = input.compression === 'GZIP';
    const open = this.streams.get(principal.userId) ?? 0;
    if (open >= MAX_STREAMS_PER_USER)
      throw new AppError(
        ExportErrorCode.TOO_MANY_EXPORTS,
        `You have ${open} direct export streams open; at most ${MAX_STREAMS_PER_USER} at once. Use startExport for more.`,
      );
    this.streams.set(principal.userId, open + 1);
    const closed = () => {
      const left = (this.streams.get(principal.userId) ?? 1) - 1;
      if (left > 0) this.streams.set(principal.userId, left);
      else this.streams.delete(principal.userId);
    };
    let resolveBody!: (body: { body: NodeJS.ReadableStream; rows: number; truncated: boolean }) => void;
    let rejectBody!: (error: Error) => void;
    const bodyReady = new Promise<{ body: NodeJS.ReadableStream; rows: number; truncated: boolean }>(
      (resolve, reject) => {
        resolveBody = resolve;
        rejectBody = reject;
      },
    );
    this.withSnapshot(
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
    const old = await this.returning<{ id: string; company_id: string }>(
      `DELETE FROM export_jobs WHERE created_at < now() - make_interval(hours => $1)
          AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')
        RETURNING id, company_id`,
      [this.options.retentionHours],
    );
    for (const row of old)
      await this.options.storage.deleteAll(`${row.company_id}/${row.id}`).catch(() => undefined);
    // A RUNNING job is touched at least every progress step; one silent for many claim periods lost its worker for
    // good (the queue gave up retrying it).
    const stale = await this.returning<ExportJobRow>(
      `UPDATE export_jobs SET status = 'FAILED', error = 'the worker running this export stopped; start it again',
              finished_at = now(), updated_at = now()
        WHERE status = 'RUNNING' AND updated_at < now() - make_interval(secs => $1)
        RETURNING *`,
      [(this.options.lockMs * 10) / 1000],
    );
    // A queued job whose queue entry was lost (an in-process queue restarted) would hold one of its owner's slots
    // for good; one still waiting after the whole retention period is given up (a backlog clears long before).
    const unclaimed = await this.returning<ExportJobRow>(
      `UPDATE export_jobs SET status = 'FAILED',
              error = 'no worker took this export within the retention period; start it again',
              finished_at = now(), updated_at = now()
        WHERE status = 'QUEUED' AND updated_at < now() - make_interval(hours => $1)
        RETURNING *`,
      [this.options.retentionHours],
    );
    for (const row of [...stale, ...unclaimed]) this.publish(row);
    return { deleted: old.length, failedStale: stale.length + unclaimed.length };
  }

  /**
   * Runs `work` in a read-only REPEATABLE READ transaction on the exports' pool, so the count and the rows come from
   * one snapshot; the statement's values are bound as transaction-local settings (COPY takes no parameters).
   */
  private async withSnapshot<T>(
    principal: Principal,
    prepared: PreparedExport,
    limit: number | undefined,
    work: (client: PoolClient, statement: ExportStatement, total: number) => Promise<T>,
    options: { count: boolean } = { count: true },
  ): Promise<T> {
    const visibility = this.options.visibility();
    const binder = new SettingsBinder();
    const where = [
      bindNamed(await visibility.readPredicate(principal, prepared.entityType, 'r'), binder.bind),
      filtersToSql(prepared.entityType, prepared.filters, 'r', binder.bind),
    ].join(' AND ');
    const accountPredicate = prepared.columns.some((c) => c.join === 'account')
      ? bindNamed(await visibility.readPredicate(principal, RecordType.ACCOUNT, 'acc'), binder.bind)
      : undefined;
    const statement: ExportStatement = {
      columns: prepared.columns,
      from: fromClause(prepared.entityType, prepared.columns, accountPredicate),
      where,
      orderBy: sortToSql(prepared.entityType, prepared.sort, 'r'),
      limit,
    };
    const client = await this.options.pool.connect().catch((error: Error) => {
      throw new AppError(
        ErrorCode.SERVICE_UNAVAILABLE,
        'Every export connection is busy; try again shortly',
        {
          cause: error.message,
        },
      );
    });
    let broken: Error | undefined;
    const onError = (error: Error) => (broken = error);
    client.on('error', onError);
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await binder.apply(client);
      let total = 0;
      if (options.count) {
        const counted = await client.query<{ total: number }>(
          `SELECT count(*)::int AS total FROM ${RECORD_TABLE[prepared.entityType]} r WHERE ${where}`,
        );
        total = Math.min(counted.rows[0]?.total ?? 0, limit ?? Number.MAX_SAFE_INTEGER);
      }
      const result = await work(client, statement, total);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      // A COPY stopped midway leaves the connection mid-protocol: it is discarded, never reused.
      broken ??= error as Error;
      throw error;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
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
      this.returning<ExportJobRow>(
        `UPDATE export_jobs SET rows_exported = $3, progress = $4, total_rows = $5, updated_at = now()
            WHERE id = $1 AND attempt_token = $2 AND status = 'RUNNING' RETURNING *`,
        [row.id, token, records, progress, total],
      )
        .then(([updated]) => {
          if (!updated) abort.abort(new CancelledError());
          else this.publish(updated);
        })
        .catch((error: Error) =>
          this.options.logger.warn({ err: error, exportId: row.id }, 'export progress'),
        )
        .finally(() => (inFlight = false));
    };
  }

  private async finish(
    id: string,
    token: string | null,
    status: 'COMPLETED' | 'FAILED',
    outcome: { rows?: number; total?: number; bytes?: number; sha256?: string; key?: string; error?: string },
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
    if (row) this.publish(row);
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

  private async statusOf(id: string): Promise<string | undefined> {
    const [row] = await this.options.dataSource.query<Array<{ status: string }>>(
      'SELECT status FROM export_jobs WHERE id = $1',
      [id],
    );
    return row?.status;
  }

  private async ownRow(principal: Principal, id: string): Promise<ExportJobRow> {
    if (!isUuid(id)) throw new NotFoundError('ExportJob', id);
    const [row] = await this.options.dataSource.query<ExportJobRow[]>(
      'SELECT * FROM export_jobs WHERE id = $1 AND company_id = $2 AND owner_id = $3',
      [id, principal.companyId, principal.userId],
    );
    if (!row) throw new NotFoundError('ExportJob', id);
    return row;
  }

  /** Rows of an UPDATE or DELETE ... RETURNING (TypeORM answers those with `[rows, affected]`). */
  private async returning<T>(sql: string, params: unknown[]): Promise<T[]> {
    const result = await this.options.dataSource.query<unknown[]>(sql, params);
    return (
      result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number' ? result[0] : result
    ) as T[];
  }

  private publish(row: ExportJobRow): void {
    const event: ExportProgressEvent = { companyId: row.company_id, ownerId: row.owner_id, job: toView(row) };
    this.options.pubsub.publish(ExportTopic.progress, event);
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

/** Errors of ours keep their message; anything else is summarised (no SQL or stack in a user-visible field). */
function publicMessage(error: unknown): string {
  if (error instanceof AppError) return error.message;
  const code = (error as { code?: string }).code;
  return code ? `the export failed (database error ${code})` : 'the export failed';
}

function toView(row: ExportJobRow): ExportJobView {
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
