import { z } from 'zod';
import { defineSettings, optionalPositiveInt, positiveInt } from '../../config/settings';

/** Reports: their own connections, a statement timeout, the planner-cost budget a live report may not pass. */
export const reportSettings = defineSettings({
  variables: {
    /** Explicit size (each of its two pools); unset: its share of DATABASE_MAX_CONNECTIONS (at most 4). */
    REPORT_DB_POOL_SIZE: optionalPositiveInt(),
    REPORT_STATEMENT_TIMEOUT_MS: positiveInt(10_000),
    REPORT_MAX_COST: z.coerce.number().positive().default(5_000_000),
    REPORT_PLAN_CACHE_SIZE: positiveInt(500),
    REPORT_ROLLUP_MAX_RATIO: z.coerce.number().positive().max(1).default(0.1),
    REPORT_ROLLUP_REBUILD_MS: positiveInt(600_000),
    REPORT_RESULT_CACHE_SIZE: z.coerce.number().int().min(0).default(1000),
    REPORT_RESULT_CACHE_MAX_ROWS: positiveInt(5000),
  },
  read: (e) => ({
    poolSize: e.REPORT_DB_POOL_SIZE,
    statementTimeoutMs: e.REPORT_STATEMENT_TIMEOUT_MS,
    maxCost: e.REPORT_MAX_COST,
    planCacheSize: e.REPORT_PLAN_CACHE_SIZE,
    /** A rollup holding more rows than this fraction of its records is not read (as of its last rebuild). */
    rollupMaxRatio: e.REPORT_ROLLUP_MAX_RATIO,
    rollupRebuildMs: e.REPORT_ROLLUP_REBUILD_MS,
    /** Answers kept per process, each under its data version and visibility key (0: none). */
    resultCacheSize: e.REPORT_RESULT_CACHE_SIZE,
    /** Answers with more rows than this are not kept. */
    resultCacheMaxRows: e.REPORT_RESULT_CACHE_MAX_ROWS,
  }),
});
