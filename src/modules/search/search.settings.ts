import { z } from 'zod';
import { defineSettings, positiveInt } from '../../config/settings';

/** Faceted search: its pool, the counting index, cached windows, the change log (config.search). */
export const searchSettings = defineSettings({
  variables: {
    SEARCH_DB_POOL_SIZE: positiveInt(6),
    SEARCH_STATEMENT_TIMEOUT_MS: positiveInt(10_000),
    SEARCH_INDEX: z.enum(['on', 'off']).default('on'),
    SEARCH_INDEX_BUILD_WAIT_MS: z.coerce.number().int().min(0).default(250),
    SEARCH_INDEX_MAX_CATCH_UP: positiveInt(20_000),
    SEARCH_INDEX_IDLE_MS: positiveInt(3_600_000),
    // Fractions allowed (tests run small budgets); at least one byte.
    SEARCH_INDEX_MAX_MB: z.coerce
      .number({ message: 'must be a number of megabytes' })
      .finite()
      .min(1 / (1024 * 1024), { message: 'must be a positive number of megabytes' })
      .default(1024),
    SEARCH_WINDOW_TTL_SECONDS: positiveInt(600),
    SEARCH_CHANGE_RETENTION_MS: positiveInt(3_600_000),
  },
  read: (e) => ({
    poolSize: e.SEARCH_DB_POOL_SIZE,
    statementTimeoutMs: e.SEARCH_STATEMENT_TIMEOUT_MS,
    /** Off: every search is answered from SQL (the counting index is never built). */
    indexEnabled: e.SEARCH_INDEX === 'on',
    buildWaitMs: e.SEARCH_INDEX_BUILD_WAIT_MS,
    maxCatchUp: e.SEARCH_INDEX_MAX_CATCH_UP,
    idleMs: e.SEARCH_INDEX_IDLE_MS,
    /** Budget of the counting indexes held and being built in this process (least recently used evicted). */
    indexMaxBytes: Math.floor(e.SEARCH_INDEX_MAX_MB * 1024 * 1024),
    windowTtlSeconds: e.SEARCH_WINDOW_TTL_SECONDS,
    /** How long the change log keeps a change (an index further behind rebuilds). */
    changeRetentionMs: e.SEARCH_CHANGE_RETENTION_MS,
  }),
});
