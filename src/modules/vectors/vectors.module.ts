import { VectorDocuments1764900000000 } from '../../../migrations/1764900000000-vector-documents';
import { VectorPendingWrites1764900000001 } from '../../../migrations/1764900000001-vector-pending-writes';
import { MetricBuckets } from '../../platform/metrics/metrics';
import { ShutdownPhase } from '../../platform/lifecycle/lifecycle';
import type { JobContext } from '../../platform/queue/queue.driver';
import { defineModule, requireService } from '../kernel';
import { FallbackBackend } from './backends/fallback.backend';
import { OpenSearchBackend } from './backends/opensearch.backend';
import { PgvectorBackend } from './backends/pgvector.backend';
import type { VectorBackend } from './backends/vector-backend';
import { vectorBench } from './vector.bench';
import { HashingEmbedder } from './vector.math';
import { VectorResolver } from './vector.resolver';
import { VectorJob, VectorQueue, type EmbedRecordJob, type RebuildJob } from './vector.jobs';
import { VectorService } from './vector.service';
import { VectorStore } from './vector.store';

export interface VectorServices {
  vectors: VectorService;
}

declare module '../kernel/registries' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ServiceRegistry extends VectorServices {}
}

export const VectorMetric = {
  duration: 'crm_vector_search_duration_seconds',
  fallbacks: 'crm_vector_fallbacks_total',
} as const;

/** Vector similarity: OpenSearch k-NN, pgvector or an exact fallback, chosen by health, behind record visibility. */
export const vectorsModule = defineModule<VectorServices>({
  name: 'vectors',
  migrations: [VectorDocuments1764900000000, VectorPendingWrites1764900000001],
  queues: Object.values(VectorQueue),
  createServices: ({ config, dataSource, queue, logger, metrics, lifecycle, reads, services }) => {
    const settings = config.vectors;
    const store = new VectorStore(dataSource, reads);
    const fallback = new FallbackBackend(dataSource, store, {
      dimension: settings.dimension,
      maxCacheBytes: settings.fallbackCacheBytes,
    });
    const backends: VectorBackend[] = [];
    if (settings.opensearch) {
      const opensearch = new OpenSearchBackend(store, {
        url: settings.opensearch.url,
        index: settings.opensearch.index,
        dimension: settings.dimension,
        refresh: settings.opensearch.refresh,
        requestTimeoutMs: settings.opensearch.timeoutMs,
      });
      lifecycle.register('opensearch client', ShutdownPhase.cache, () => opensearch.close());
      backends.push(opensearch);
    }
    backends.push(
      new PgvectorBackend(
        dataSource,
        store,
        { dimension: settings.dimension, efSearch: settings.pgvectorEfSearch },
        logger,
      ),
      fallback,
    );
    const service = new VectorService({
      dataSource,
      reads,
      store,
      backends,
      fallback,
      embedder: new HashingEmbedder(),
      records: requireService(services, 'records', 'vectors'),
      visibility: requireService(services, 'visibility', 'vectors'),
      queue,
      logger,
      metrics: {
        duration: metrics.histogram(
          VectorMetric.duration,
          'Vector similarity search duration, by the backend that answered',
          ['backend'],
          MetricBuckets.latency,
        ),
        fallbacks: metrics.counter(
          VectorMetric.fallbacks,
          'Vector queries that failed on a backend and moved to the next',
          ['from', 'to'],
        ),
      },
      settings: {
        dimension: settings.dimension,
        filterKeys: settings.filterKeys,
        maxCandidates: settings.maxCandidates,
        checkTimeoutMs: Math.min(5_000, settings.healthCheckMs),
        healthCheckMs: settings.healthCheckMs,
        repairEveryMs: settings.repairEveryMs,
      },
    });
    return { vectors: service };
  },
  start: async (services, { role, lifecycle }) => {
    await services.vectors.checkBackends();
    if (role === 'cli') return;
    const timer = setInterval(
      () => void services.vectors.checkBackends(),
      services.vectors.settings.healthCheckMs,
    );
    timer.unref();
    lifecycle.register('vector health checks', ShutdownPhase.transport, () => clearInterval(timer));
    // Every committed record write re-embeds that record (the job reads it as it is when it runs).
    services.records.changes.subscribe((change) =>
      services.vectors.recordChanged(change.companyId, change.type, change.id),
    );
  },
  resolvers: (services) => [{ resolver: VectorResolver, create: () => new VectorResolver(services.vectors) }],
  processors: (services) => [
    {
      queue: VectorQueue.vectors,
      processor: (job: JobContext<EmbedRecordJob | RebuildJob>) =>
        job.name === VectorJob.rebuild
          ? services.vectors.rebuild(job.data.companyId, (job.data as RebuildJob).backend)
          : services.vectors.embedRecord(job.data as EmbedRecordJob),
      options: { concurrency: 4 },
    },
  ],
  scheduledJobs: (services) => [
    {
      name: 'vectors.repair',
      schedule: { everyMs: services.vectors.settings.repairEveryMs },
      run: () => services.vectors.repair(),
    },
  ],
  bench: vectorBench,
});
