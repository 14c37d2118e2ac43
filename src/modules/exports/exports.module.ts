import { ExportJobs1764700000000 } from '../../../migrations/1764700000000-export-jobs';
import { MetricBuckets } from '../../platform/metrics/metrics';
import { defineModule, requireService } from '../kernel';
import { exportBench } from './export.bench';
import { ExportResolver } from './export.resolver';
import { ExportJobEvents } from './export-job.events';
import { ExportJobRepository } from './export-job.repository';
import { ExportProcessor } from './export.processor';
import { exportRoutes } from './export.routes';
import { ExportService } from './export.service';
import { ExportSnapshots } from './export.snapshot';
import { ExportErrorCode, ExportQueue, type ExportMetrics } from './export.types';

export interface ExportServices {
  exports: ExportService;
  /** The worker's side of export jobs (its processor and cancel listener); not for other modules. */
  exportProcessor: ExportProcessor;
}

declare module '../kernel/registries' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ServiceRegistry extends ExportServices {}
}

export const ExportMetric = {
  operations: 'crm_export_operations_total',
  rows: 'crm_export_rows_total',
  bytes: 'crm_export_bytes_total',
  duration: 'crm_export_duration_seconds',
} as const;

/** Streaming CSV/JSON/XLSX exports: jobs on the `export` queue, progress over subscriptions, resumable downloads. */
export const exportsModule = defineModule<ExportServices>({
  name: 'exports',
  migrations: [ExportJobs1764700000000],
  queues: Object.values(ExportQueue),
  errorCodes: ExportErrorCode,
  createServices: (drivers) => {
    const { config, dataSource, queue, pubsub, events, logger, metrics, openPool, reads, services } = drivers;
    // Each running export holds one connection for its whole run, and the direct route one per stream.
    const pool = openPool('export pool', {
      max: Math.max(config.exports.poolSize, config.exports.concurrency + 1),
    });
    const storage = drivers.storage.scoped('exports', { localDirectory: config.exports.directory });
    const repository = new ExportJobRepository(dataSource);
    const jobEvents = new ExportJobEvents(pubsub, events);
    const snapshots = new ExportSnapshots({
      pool,
      visibility: () => requireService(services, 'visibility', 'exports'),
      reads,
    });
    const exportMetrics: ExportMetrics = {
      operations: metrics.counter(
        ExportMetric.operations,
        'Export jobs by format and outcome (success, failure, cancelled)',
        ['format', 'status'],
      ),
      rows: metrics.counter(ExportMetric.rows, 'Rows written by finished exports', ['format']),
      bytes: metrics.counter(ExportMetric.bytes, 'Bytes written by finished exports (after compression)', [
        'format',
      ]),
      duration: metrics.histogram(
        ExportMetric.duration,
        'Export duration, from claim to stored file',
        ['format'],
        MetricBuckets.long,
      ),
    };
    const service = new ExportService({
      repository,
      snapshots,
      events: jobEvents,
      queue,
      storage,
      metrics: exportMetrics,
      maxActivePerUser: config.exports.maxActivePerUser,
      retentionHours: config.exports.retentionHours,
      gzipLevel: config.exports.gzipLevel,
      streamMaxRows: config.exports.streamMaxRows,
      lockMs: config.exports.lockMs,
    });
    const processor = new ExportProcessor({
      repository,
      snapshots,
      events: jobEvents,
      identity: requireService(services, 'identity', 'exports'),
      storage,
      logger,
      metrics: exportMetrics,
      gzipLevel: config.exports.gzipLevel,
      lockMs: config.exports.lockMs,
      concurrency: config.exports.concurrency,
    });
    return { exports: service, exportProcessor: processor };
  },
  resolvers: (services) => [{ resolver: ExportResolver, create: () => new ExportResolver(services.exports) }],
  processors: (services) => [
    {
      queue: ExportQueue.export,
      processor: (job) => services.exportProcessor.run(job),
      options: {
        concurrency: services.exportProcessor.settings.concurrency,
        lockDurationMs: services.exportProcessor.settings.lockMs,
      },
    },
  ],
  routes: (services) => exportRoutes(services.exports, services.exports.settings.storage),
  scheduledJobs: (services) => [
    {
      name: 'exports.cleanup',
      schedule: { everyMs: 15 * 60_000 },
      run: async () => {
        await services.exports.cleanup();
      },
    },
  ],
  start: (services) => services.exportProcessor.start(),
  bench: exportBench,
});
