import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The families this platform records itself (transport, database, caches, queues); modules declare their own. */
export const MetricName = {
  httpRequests: 'crm_http_requests_total',
  httpDuration: 'crm_http_request_duration_seconds',
  graphqlOperations: 'crm_graphql_operations_total',
  graphqlDuration: 'crm_graphql_operation_duration_seconds',
  graphqlErrors: 'crm_graphql_errors_total',
  graphqlFastPath: 'crm_graphql_fast_path_requests_total',
  dbQueries: 'crm_db_queries_total',
  dbDuration: 'crm_db_query_duration_seconds',
  cacheHits: 'crm_cache_hits_total',
  cacheMisses: 'crm_cache_misses_total',
  cacheDuration: 'crm_cache_operation_duration_seconds',
  cacheFallbacks: 'crm_cache_fallbacks_total',
  queueJobs: 'crm_queue_jobs',
  activeSubscriptions: 'crm_active_subscriptions',
  websocketConnections: 'crm_websocket_connections',
  collectErrors: 'crm_metrics_collect_errors_total',
} as const;

/** A failed family is logged at most this often (it fails on every scrape until its cause is fixed). */
const COLLECT_ERROR_LOG_INTERVAL_MS = 60_000;

/** Histogram buckets (seconds) for modules to pick from. */
export const MetricBuckets = {
  latency: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  fast: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
  long: [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
} as const;

/**
 * A metric family a module declares (Prometheus style: `crm_` prefix, base units, `_total` on counters, no tenant,
 * user or record ids in labels). A gauge may read its value at scrape time.
 */
export type MetricFamily =
  | { type: 'counter'; name: string; help: string; labelNames?: readonly string[] }
  | {
      type: 'histogram';
      name: string;
      help: string;
      labelNames?: readonly string[];
      buckets: readonly number[];
    }
  | {
      type: 'gauge';
      name: string;
      help: string;
      labelNames?: readonly string[];
      /** Read at scrape time: one value, or one per label set. */
      collect?: () => Promise<number | Array<{ labels: Record<string, string>; value: number }>>;
    };

type AnyMetric = Counter<string> | Histogram<string> | Gauge<string>;

export type CacheTier = 'memory' | 'redis';
export type DbOperation = 'select' | 'insert' | 'update' | 'delete' | 'other';

/** What caches report; kept narrow so the cache code does not depend on prom-client. */
export interface CacheMetrics {
  recordCacheHit(cache: string, tier: CacheTier): void;
  recordCacheMiss(cache: string, tier: CacheTier): void;
  recordCacheOperation(cache: string, tier: CacheTier, seconds: number): void;
  recordCacheFallback(cache: string): void;
}

export const noCacheMetrics: CacheMetrics = {
  recordCacheHit: () => {},
  recordCacheMiss: () => {},
  recordCacheOperation: () => {},
  recordCacheFallback: () => {},
};

type Provider<T> = () => Promise<T> | T;

/**
 * One registry per process: default Node metrics with the `crm_` prefix plus every product metric. No label carries a
 * tenant, user or record id, or query text.
 */
export class Metrics implements CacheMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'method' | 'route' | 'status_class'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status_class'>;
  readonly graphqlOperations: Counter<'operation_type' | 'operation_name'>;
  readonly graphqlDuration: Histogram<'operation_type' | 'operation_name'>;
  readonly graphqlErrors: Counter<'code'>;
  readonly graphqlFastPath: Counter<'outcome'>;
  readonly dbQueries: Counter<'operation' | 'model'>;
  readonly dbDuration: Histogram<'operation' | 'model'>;
  readonly cacheHits: Counter<'cache' | 'tier'>;
  readonly cacheMisses: Counter<'cache' | 'tier'>;
  readonly cacheDuration: Histogram<'cache' | 'tier'>;
  readonly cacheFallbacks: Counter<'cache'>;
  readonly activeSubscriptions: Gauge;
  private readonly collectErrors: Counter<'family'>;
  private readonly collectErrorLoggedAt = new Map<string, number>();
  private readonly families = new Map<string, { family: MetricFamily; metric: AnyMetric }>();
  private queueCounts?: Provider<Array<{ queue: string; state: string; count: number }>>;
  private websocketCount?: Provider<number>;

  constructor(options: { process: 'gateway' | 'worker' | 'cli' }) {
    this.registry.setDefaultLabels({ process: options.process });
    collectDefaultMetrics({ register: this.registry, prefix: 'crm_' });
    this.dropMisnamedDefaultGauges();
    const labels = ['method', 'route', 'status_class'];
    const operation = ['operation_type', 'operation_name'];
    const tiers = ['cache', 'tier'];
    const db = ['operation', 'model'];
    const latency = MetricBuckets.latency;
    this.httpRequests = this.counter(MetricName.httpRequests, 'HTTP requests on the public port', labels);
    this.httpDuration = this.histogram(MetricName.httpDuration, 'HTTP request duration', labels, latency);
    this.graphqlOperations = this.counter(
      MetricName.graphqlOperations,
      'GraphQL operations executed (HTTP and WebSocket)',
      operation,
    );
    this.graphqlDuration = this.histogram(
      MetricName.graphqlDuration,
      'GraphQL operation duration',
      operation,
      latency,
    );
    this.graphqlErrors = this.counter(MetricName.graphqlErrors, 'GraphQL errors answered, by code', ['code']);
    this.graphqlFastPath = this.counter(
      MetricName.graphqlFastPath,
      'POST /graphql requests the fast path answered (answered) or handed to Apollo (apollo)',
      ['outcome'],
    );
    this.dbQueries = this.counter(MetricName.dbQueries, 'SQL statements sent to Postgres', db);
    this.dbDuration = this.histogram(MetricName.dbDuration, 'SQL statement duration', db, latency);
    this.cacheHits = this.counter(MetricName.cacheHits, 'Cache lookups answered by a tier', tiers);
    this.cacheMisses = this.counter(MetricName.cacheMisses, 'Cache lookups a tier could not answer', tiers);
    this.cacheDuration = this.histogram(
      MetricName.cacheDuration,
      'Cache round trip',
      tiers,
      MetricBuckets.fast,
    );
    this.cacheFallbacks = this.counter(
      MetricName.cacheFallbacks,
      'Lookups served from Postgres because Redis did not answer',
      ['cache'],
    );
    this.collectErrors = this.counter(
      MetricName.collectErrors,
      'Scrapes that skipped a family because reading it failed',
      ['family'],
    );
    this.declare({
      type: 'gauge',
      name: MetricName.queueJobs,
      help: 'Jobs per queue and state',
      labelNames: ['queue', 'state'],
      collect: async () =>
        ((await this.queueCounts?.()) ?? []).map(({ queue, state, count }) => ({
          labels: { queue, state },
          value: count,
        })),
    });
    this.activeSubscriptions = this.declare({
      type: 'gauge',
      name: MetricName.activeSubscriptions,
      help: 'GraphQL subscriptions open now',
    }) as Gauge;
    this.declare({
      type: 'gauge',
      name: MetricName.websocketConnections,
      help: 'WebSocket connections open now',
      collect: async () => (await this.websocketCount?.()) ?? 0,
    });
  }

  /**
   * Registers a family (idempotent by name, so every process and test may declare it) and returns it; a module keeps
   * the returned metric and records into it.
   */
  declare(family: MetricFamily): AnyMetric {
    const known = this.families.get(family.name);
    if (known) {
      const shape = (f: MetricFamily) =>
        JSON.stringify([f.type, f.labelNames ?? [], f.type === 'histogram' ? f.buckets : []]);
      if (shape(known.family) !== shape(family))
        throw new Error(`metric ${family.name} is already declared with other type, labels or buckets`);
      return known.metric;
    }
    const base = {
      name: family.name,
      help: family.help,
      labelNames: [...(family.labelNames ?? [])],
      registers: [this.registry],
    };
    let metric: AnyMetric;
    if (family.type === 'counter') metric = new Counter(base);
    else if (family.type === 'histogram') metric = new Histogram({ ...base, buckets: [...family.buckets] });
    else {
      const collect = family.collect;
      metric = new Gauge({
        ...base,
        ...(collect
          ? {
              async collect() {
                const value = await collect();
                if (typeof value === 'number') return this.set(value);
                this.reset();
                for (const point of value) this.set(point.labels, point.value);
              },
            }
          : {}),
      });
    }
    this.families.set(family.name, { family, metric });
    return metric;
  }

  /**
   * The text exposition of every family that can be read now. prom-client rejects the whole scrape when one
   * scrape-time gauge throws (a table that is not there yet, a Redis that does not answer); here that family alone is
   * left out, counted in `crm_metrics_collect_errors_total{family}` and logged at most once a minute.
   */
  async exposition(logger: { warn(details: object, message: string): void }): Promise<string> {
    const families = await Promise.all(
      this.registry
        .getMetricsAsArray()
        .filter((metric) => metric.name !== MetricName.collectErrors)
        .map(async (metric) => {
          try {
            return await this.registry.getSingleMetricAsString(metric.name);
          } catch (error) {
            this.collectErrors.inc({ family: metric.name });
            const now = Date.now();
            if (now - (this.collectErrorLoggedAt.get(metric.name) ?? 0) >= COLLECT_ERROR_LOG_INTERVAL_MS) {
              this.collectErrorLoggedAt.set(metric.name, now);
              logger.warn({ err: error, family: metric.name }, 'metric family left out of the scrape');
            }
            return undefined;
          }
        }),
    );
    // The error counter is written last, so a failure in this scrape shows in it.
    const errors = await this.registry.getSingleMetricAsString(MetricName.collectErrors);
    return `${[...families.filter((text) => text !== undefined), errors].join('\n\n')}\n`;
  }

  /** `declare` for a counter, typed by its label names. */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> {
    return this.declare({ type: 'counter', name, help, labelNames }) as Counter<L>;
  }

  /** `declare` for a histogram, typed by its label names. */
  histogram<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    buckets: readonly number[],
  ): Histogram<L> {
    return this.declare({ type: 'histogram', name, help, labelNames, buckets }) as Histogram<L>;
  }

  /**
   * prom-client also exports three gauges named `*_total`, a suffix Prometheus reserves for counters (promtool rejects
   * them); the same figures remain as `crm_nodejs_active_{handles,requests,resources}` (by type).
   */
  private dropMisnamedDefaultGauges(): void {
    for (const what of ['handles', 'requests', 'resources'])
      this.registry.removeSingleMetric(`crm_nodejs_active_${what}_total`);
  }

  /** Scrape-time sources; whoever owns the resource registers it. */
  provideQueueCounts(provider: Provider<Array<{ queue: string; state: string; count: number }>>): void {
    this.queueCounts = provider;
  }

  provideWebsocketConnections(provider: Provider<number>): void {
    this.websocketCount = provider;
  }

  recordCacheHit(cache: string, tier: CacheTier): void {
    this.cacheHits.inc({ cache, tier });
  }

  recordCacheMiss(cache: string, tier: CacheTier): void {
    this.cacheMisses.inc({ cache, tier });
  }

  recordCacheOperation(cache: string, tier: CacheTier, seconds: number): void {
    this.cacheDuration.observe({ cache, tier }, seconds);
  }

  recordCacheFallback(cache: string): void {
    this.cacheFallbacks.inc({ cache });
  }

  recordDbQuery(operation: DbOperation, model: string, seconds: number): void {
    this.dbQueries.inc({ operation, model });
    this.dbDuration.observe({ operation, model }, seconds);
  }

  /** Every metric family name this registry exports (for the dashboard/alerts consistency test). */
  async familyNames(): Promise<string[]> {
    return (await this.registry.getMetricsAsJSON()).map((metric) => metric.name);
  }
}

/** Operation names are client-chosen: keep the first `limit` distinct ones, fold the rest into "other". */
export class BoundedLabel {
  private readonly seen = new Set<string>();

  constructor(private readonly limit = 100) {}

  of(name: string | null | undefined): string {
    if (!name) return 'anonymous';
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name)) return 'other';
    if (this.seen.has(name)) return name;
    if (this.seen.size >= this.limit) return 'other';
    this.seen.add(name);
    return name;
  }
}
