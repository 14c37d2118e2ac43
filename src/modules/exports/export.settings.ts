import { z } from 'zod';
import { claimMs, defineSettings, positiveInt } from '../../config/settings';

/** Export jobs and the direct stream route (config.exports). */
export const exportSettings = defineSettings({
  variables: {
    /** Finished export files (local storage driver). */
    EXPORT_DIR: z.string().min(1).default('.data/exports'),
    EXPORT_CONCURRENCY: positiveInt(2),
    EXPORT_MAX_ACTIVE_PER_USER: positiveInt(3),
    EXPORT_RETENTION_HOURS: positiveInt(24),
    EXPORT_GZIP_LEVEL: z.coerce.number().int().min(1).max(9).default(6),
    /** Connections of the exports' own pool, so long exports cannot starve GraphQL queries. */
    EXPORT_DB_POOL_SIZE: positiveInt(2),
    /** Row cap of the synchronous GET /exports/stream route. */
    EXPORT_STREAM_MAX_ROWS: positiveInt(10_000),
    /** How long a worker's claim on an export lasts without renewal: a killed worker's job is retried after it. */
    EXPORT_LOCK_MS: claimMs(30_000),
  },
  read: (e) => ({
    directory: e.EXPORT_DIR,
    concurrency: e.EXPORT_CONCURRENCY,
    maxActivePerUser: e.EXPORT_MAX_ACTIVE_PER_USER,
    retentionHours: e.EXPORT_RETENTION_HOURS,
    gzipLevel: e.EXPORT_GZIP_LEVEL,
    poolSize: e.EXPORT_DB_POOL_SIZE,
    streamMaxRows: e.EXPORT_STREAM_MAX_ROWS,
    lockMs: e.EXPORT_LOCK_MS,
  }),
});
