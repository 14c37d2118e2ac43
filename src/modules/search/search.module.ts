import { Search1765200000000 } from '../../../migrations/1765200000000-search';
import { TieredCache } from '../../platform/cache/tiered.cache';
import { ShutdownPhase } from '../../platform/lifecycle/lifecycle';
import { RoutedPool } from '../../platform/db/routed-pool';
import { MetricBuckets } from '../../platform/metrics/metrics';
import { defineModule, requireService } from '../kernel';

import { indexMemoryBench } from './index-memory.bench';
import { searchBench } from './search.bench';
import { SearchIndexes } from './index-registry';
import { LiveSearch } from './search.live';
import { SearchResolver } from './search.resolver';
import { SearchService } from './search.service';

export interface SearchServices {
  search: SearchService;
  searchIndexes: SearchIndexes;
}

declare module '../kernel/registries' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ServiceRegistry extends SearchServices {}
}

/** The two-tier cache of result windows and facets: keys `crm:search:...`. */
export const SEARCH_CACHE = 'search';

export const SearchMetric = {
  duration: 'crm_search_duration_seconds',
  live: 'crm_search_live_total',
  rebuilds: 'crm_search_index_rebuilds_total',
  rebuildDuration: 'crm_search_index_rebuild_seconds',
  indexBytes: 'crm_search_index_bytes',
  indexBudget: 'crm_search_index_budget_bytes',
  indexes: 'crm_search_indexes',
  evictions: 'crm_search_index_evictions_total',
} as const;

/**
 * Faceted search: text, filters, sort and pages of the records a user may read, with TERMS, RANGE and DATE_HISTOGRAM
 * facets counted from an in-process counting index kept at the data version, and result windows cached in Redis.
 */
export const searchModule = defineModule<SearchServices>({
  name: 'search',
  migrations: [Search1765200000000],
  cacheNamespaces: [SEARCH_CACHE],
  createServices: async ({
    config,
    dataSource,
    redis,
    events,
    logger,
    metrics,
    lifecycle,
    openPool,
    reads,
    services,
  }) => {
    const pool = openPool('search pool', {
      max: config.search.poolSize,
      // A search waits for a connection as long as it would for its statements.
      connectionTimeoutMs: config.search.statementTimeoutMs,
      statementTimeoutMs: config.search.statementTimeoutMs,
    });
    const cache = new TieredCache({ name: SEARCH_CACHE, redis, events, logger, metrics });
    await cache.start();
    lifecycle.register('search-cache', ShutdownPhase.cache, () => cache.stop());

    const duration = metrics.histogram(
      SearchMetric.duration,
      'Search duration, by record type and where the counts came from (INDEX or LIVE)',
      ['entity', 'facet_source'],
      MetricBuckets.latency,
    );
    const live = metrics.counter(
      SearchMetric.live,
      'Searches answered from SQL instead of the counting index, by reason',
      ['entity', 'reason'],
    );
    const rebuilds = metrics.counter(SearchMetric.rebuilds, 'Counting index builds, by result', [
      'entity',
      'result',
    ]);
    const rebuildDuration = metrics.histogram(
      SearchMetric.rebuildDuration,
      "Build of one company's counting index of one record type",
      ['entity'],
      MetricBuckets.long,
    );
    const evictions = metrics.counter(
      SearchMetric.evictions,
      'Counting indexes dropped, by reason (budget: least recently used, to make room; idle; oversized: larger than the whole budget alone)',
      ['reason'],
    );
    const indexes = new SearchIndexes(
      pool,
      logger,
      {
        rebuilds: (entity, result, seconds) => {
          rebuilds.inc({ entity, result });
          rebuildDuration.observe({ entity }, seconds);
        },
        evictions: (reason) => evictions.inc({ reason }),
      },
      {
        buildWaitMs: config.search.buildWaitMs,
        maxCatchUp: config.search.maxCatchUp,
        idleMs: config.search.idleMs,
        maxBytes: config.search.indexMaxBytes,
        parallelBuild: config.database.driver === 'postgres',
        connectionString: () =>
          pool instanceof RoutedPool ? pool.connectionString : (dataSource.options as { url?: string }).url,
      },
    );
    lifecycle.register('search indexes', ShutdownPhase.database, () => indexes.stop());
    metrics.declare({
      type: 'gauge',
      name: SearchMetric.indexBytes,
      help: 'Bytes of the counting indexes this process holds, plus those reserved by builds in flight',
      collect: () => Promise.resolve(indexes.memory().bytes),
    });
    metrics.declare({
      type: 'gauge',
      name: SearchMetric.indexBudget,
      help: 'The budget of crm_search_index_bytes (SEARCH_INDEX_MAX_MB)',
      collect: () => Promise.resolve(indexes.memory().maxBytes),
    });
    metrics.declare({
      type: 'gauge',
      name: SearchMetric.indexes,
      help: 'Counting indexes held (one per company and record type) and being built',
      labelNames: ['state'],
      collect: () => {
        const { held, building } = indexes.memory();
        return Promise.resolve([
          { labels: { state: 'held' }, value: held },
          { labels: { state: 'building' }, value: building },
        ]);
      },
    });
    const search = new SearchService({
      pool,
      reads,
      visibility: requireService(services, 'visibility', 'search'),
      records: requireService(services, 'records', 'search'),
      cache,
      indexes,
      live: new LiveSearch(pool),
      cursorSecret: config.jwt.secret,
      windowTtlSeconds: config.search.windowTtlSeconds,
      indexEnabled: config.search.indexEnabled,
      changeRetentionMs: config.search.changeRetentionMs,
      metrics: {
        duration: (entity, source, seconds) => duration.observe({ entity, facet_source: source }, seconds),
        live: (entity, reason) => live.inc({ entity, reason }),
      },
    });
    return { search, searchIndexes: indexes };
  },
  resolvers: (services) => [{ resolver: SearchResolver, create: () => new SearchResolver(services.search) }],
  start: (services) => {
    // A write here starts this process's catch-up at once; other processes catch up on their next search.
    services.records.changes.subscribe((change) => services.search.prefetch(change.companyId, change.type));
  },
  bench: [searchBench, indexMemoryBench],
  scheduledJobs: (services) => [
    {
      name: 'search.pruneChanges',
      schedule: { everyMs: 600_000 },
      run: async () => {
        await services.search.pruneChanges();
      },
    },
  ],
});
