import { ReportRollups1765100000000 } from '../../../migrations/1765100000000-report-rollups';
import { CommitTimeDerivedWrites1765300000000 } from '../../../migrations/1765300000000-commit-time-derived-writes';
import { RollupGroupRepair1765400000000 } from '../../../migrations/1765400000000-rollup-group-repair';
import { SearchVersionSlots1765500000000 } from '../../../migrations/1765500000000-search-version-slots';
import { RollupExtremeHolders1765600000000 } from '../../../migrations/1765600000000-rollup-extreme-holders';
import { RollupRepairFromIndexes1765600000001 } from '../../../migrations/1765600000001-rollup-repair-from-indexes';
import { MetricBuckets } from '../../platform/metrics/metrics';
import { defineModule, requireService } from '../kernel';
import { reportRollups } from './report.bench';
import { ReportResolver } from './report.resolver';
import { ReportErrorCode } from './report.errors';
import { ReportService } from './report.service';

export interface ReportServices {
  reports: ReportService;
}

declare module '../kernel/registries' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ServiceRegistry extends ReportServices {}
}

export const ReportMetric = {
  duration: 'crm_report_duration_seconds',
  planCache: 'crm_report_plan_cache_total',
  rejected: 'crm_report_rejected_total',
  rollups: 'crm_report_rollup_total',
  rebuild: 'crm_report_rollup_rebuild_seconds',
  results: 'crm_report_result_cache_total',
} as const;

/** The reports' pg pools, each REPORT_DB_POOL_SIZE when set (see `pools`). */
const ReportPool = { main: 'report pool', rollups: 'report rollup pool' } as const;

/**
 * Report aggregates (COUNT, SUM, AVG, MIN, MAX by fields and date buckets) under the caller's visibility, from rollups
 * kept exact by triggers when they hold the report, live otherwise.
 */
export const reportsModule = defineModule<ReportServices>({
  name: 'reports',
  // The second also moves search's version bumps to the commit: one commit-time step orders both slices' locks; the
  // fourth stripes those versions over slots (it replaces that step's search half); the fifth has the rollup apply
  // count each extreme's holders and start only the statements a commit needs, the sixth repair from indexes.
  migrations: [
    ReportRollups1765100000000,
    CommitTimeDerivedWrites1765300000000,
    RollupGroupRepair1765400000000,
    SearchVersionSlots1765500000000,
    RollupExtremeHolders1765600000000,
    RollupRepairFromIndexes1765600000001,
  ],
  errorCodes: ReportErrorCode,
  pools: (config) =>
    Object.values(ReportPool).map((name) => ({
      name,
      weight: 4,
      size: config.reports.poolSize,
      setting: 'REPORT_DB_POOL_SIZE',
    })),
  createServices: ({ config, logger, metrics, openPool, pooler, reads, services }) => {
    const reportPool = (name: string, settings?: Record<string, number>) =>
      openPool(name, {
        // Every report statement is stopped here; the service turns it into REPORT_TIMEOUT.
        statementTimeoutMs: config.reports.statementTimeoutMs,
        settings,
      });
    return {
      reports: new ReportService({
        pool: reportPool(ReportPool.main),
        reads,
        // Rollup reads are small; a correction the rollup holds is skipped at run time, but the planner would still
        // start parallel workers for it (milliseconds each): these connections plan without them.
        rollupPool: reportPool(ReportPool.rollups, { max_parallel_workers_per_gather: 0 }),
        pooler,
        visibility: requireService(services, 'visibility', 'reports'),
        metrics: {
          duration: metrics.histogram(
            ReportMetric.duration,
            'Report duration, by where the figures came from',
            ['source'],
            MetricBuckets.latency,
          ),
          planCache: metrics.counter(
            ReportMetric.planCache,
            'Report shapes found in (hit) or added to (miss) the plan cache',
            ['result'],
          ),
          rejected: metrics.counter(
            ReportMetric.rejected,
            'Reports refused (over the cost budget) or stopped (timeout)',
            ['reason'],
          ),
          rollups: metrics.counter(
            ReportMetric.rollups,
            'Report aggregates answered from a rollup (hit), or why not (not_covered, too_large, costlier, live_requested)',
            ['result'],
          ),
          rebuild: metrics.histogram(
            ReportMetric.rebuild,
            "Rebuild of one company's rollups of one record type",
            ['entity'],
            MetricBuckets.long,
          ),
          results: metrics.counter(
            ReportMetric.results,
            'Report answers found in the result cache (hit), computed (miss), or not kept (raced: a write came in; too_large)',
            ['result'],
          ),
        },
        settings: {
          maxCost: config.reports.maxCost,
          statementTimeoutMs: config.reports.statementTimeoutMs,
          planCacheSize: config.reports.planCacheSize,
          rollupMaxRatio: config.reports.rollupMaxRatio,
          rollupRebuildMs: config.reports.rollupRebuildMs,
          resultCacheSize: config.reports.resultCacheSize,
          resultCacheMaxRows: config.reports.resultCacheMaxRows,
        },
        logger,
      }),
    };
  },
  resolvers: (services) => [{ resolver: ReportResolver, create: () => new ReportResolver(services.reports) }],
  bench: [reportRollups],
  scheduledJobs: (services) => [
    {
      name: 'reports.rebuildRollups',
      schedule: { everyMs: services.reports.settings.rollupRebuildMs },
      run: () => services.reports.rebuildAll(),
    },
  ],
});
