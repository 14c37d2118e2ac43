import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Every product metric name, declared once; operators' existing queries use these. */
export const MetricName = {
  httpRequests: 'crm_http_requests_total',
  httpDuration: 'crm_http_request_duration_seconds',
  graphqlOperations: 'crm_graphql_operations_total',
  graphqlDuration: 'crm_graphql_operation_duration_seconds',
  graphqlErrors: 'crm_graphql_errors_total',
  dbQueries: 'crm_db_queries_total',
  dbDuration: 'crm_db_query_duration_seconds',
  cacheHits: 'crm_cache_hits_total',
  cacheMisses: 'crm_cache_misses_total',
  cacheDuration: 'crm_cache_operation_duration_seconds',
  cacheFallbacks: 'crm_cache_fallbacks_total',
  workflowExecutions: 'crm_workflow_executions_total',
  workflowStepDuration: 'crm_workflow_step_duration_seconds',
  queueJobs: 'crm_queue_jobs',
  exportOperations: 'crm_export_operations_total',
  exportRows: 'crm_export_rows_total',
  exportDuration: 'crm_export_duration_seconds',
  searchDuration: 'crm_search_duration_seconds',
  reportDuration: 'crm_report_duration_seconds',
  vectorSearchDuration: 'crm_vector_search_duration_seconds',
  auditPartitions: 'crm_audit_partitions',
  activeSubscriptions: 'crm_active_subscriptions',
  websocketConnections: 'crm_websocket_connections',
} as const;

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

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const FAST_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];
const LONG_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];

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
  readonly dbQueries: Counter<'operation' | 'model'>;
  readonly dbDuration: Histogram<'operation' | 'model'>;
  readonly cacheHits: Counter<'cache' | 'tier'>;
  readonly cacheMisses: Counter<'cache' | 'tier'>;
  readonly cacheDuration: Histogram<'cache' | 'tier'>;
  readonly cacheFallbacks: Counter<'cache'>;
  readonly workflowExecutions: Counter<'workflow' | 'status'>;
  readonly workflowStepDuration: Histogram<'queue' | 'kind'>;
  readonly exportOperations: Counter<'format' | 'status'>;
  readonly exportRows: Counter<'format'>;
  readonly exportDuration: Histogram<'format'>;
  readonly searchDuration: Histogram<'entity' | 'facet_source'>;
  readonly reportDuration: Histogram<'source'>;
  readonly vectorSearchDuration: Histogram<'backend'>;
  readonly activeSubscriptions: Gauge;
  private queueCounts?: Provider<Array<{ queue: string; state: string; count: number }>>;
  private websocketCount?: Provider<number>;
  private auditPartitionCount?: Provider<number>;

  constructor(options: { process: 'gateway' | 'worker' | 'cli' }) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ process: options.process });
    collectDefaultMetrics({ register: this.registry, prefix: 'crm_' });
    this.dropMisnamedDefaultGauges();
    // prom-client calls collect() with the gauge as `this`; these read the providers registered on this object.
    const queueCounts = async () => (await this.queueCounts?.()) ?? [];
    const websocketCount = async () => (await this.websocketCount?.()) ?? 0;
    const auditPartitionCount = async () => this.auditPartitionCount?.();
    this.httpRequests = new Counter({
      name: MetricName.httpRequests,
      help: 'HTTP requests on the public port',
      labelNames: ['method', 'route', 'status_class'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: MetricName.httpDuration,
      help: 'HTTP request duration',
      labelNames: ['method', 'route', 'status_class'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.graphqlOperations = new Counter({
      name: MetricName.graphqlOperations,
      help: 'GraphQL operations executed (HTTP and WebSocket)',
      labelNames: ['operation_type', 'operation_name'],
      registers,
    });
    this.graphqlDuration = new Histogram({
      name: MetricName.graphqlDuration,
      help: 'GraphQL operation duration',
      labelNames: ['operation_type', 'operation_name'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.graphqlErrors = new Counter({
      name: MetricName.graphqlErrors,
      help: 'GraphQL errors returned to clients, by extensions.code',
      labelNames: ['code'],
      registers,
    });
    this.dbQueries = new Counter({
      name: MetricName.dbQueries,
      help: 'SQL statements sent to Postgres',
      labelNames: ['operation', 'model'],
      registers,
    });
    this.dbDuration = new Histogram({
      name: MetricName.dbDuration,
      help: 'SQL statement duration',
      labelNames: ['operation', 'model'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.cacheHits = new Counter({
      name: MetricName.cacheHits,
      help: 'Cache hits by cache and tier',
      labelNames: ['cache', 'tier'],
      registers,
    });
    this.cacheMisses = new Counter({
      name: MetricName.cacheMisses,
      help: 'Cache misses by cache and tier',
      labelNames: ['cache', 'tier'],
      registers,
    });
    this.cacheDuration = new Histogram({
      name: MetricName.cacheDuration,
      help: 'Cache operation duration',
      labelNames: ['cache', 'tier'],
      buckets: FAST_BUCKETS,
      registers,
    });
    this.cacheFallbacks = new Counter({
      name: MetricName.cacheFallbacks,
      help: 'Lookups served from Postgres because Redis did not answer',
      labelNames: ['cache'],
      registers,
    });
    this.workflowExecutions = new Counter({
      name: MetricName.workflowExecutions,
      help: 'Workflow runs by outcome',
      labelNames: ['workflow', 'status'],
      registers,
    });
    this.workflowStepDuration = new Histogram({
      name: MetricName.workflowStepDuration,
      help: 'Workflow step duration by queue and kind',
      labelNames: ['queue', 'kind'],
      buckets: LONG_BUCKETS,
      registers,
    });
    new Gauge({
      name: MetricName.queueJobs,
      help: 'Jobs per queue and state, read at scrape time',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        this.reset();
        for (const { queue, state, count } of await queueCounts()) this.set({ queue, state }, count);
      },
    });
    this.exportOperations = new Counter({
      name: MetricName.exportOperations,
      help: 'Export jobs by format and outcome',
      labelNames: ['format', 'status'],
      registers,
    });
    this.exportRows = new Counter({
      name: MetricName.exportRows,
      help: 'Rows written by exports',
      labelNames: ['format'],
      registers,
    });
    this.exportDuration = new Histogram({
      name: MetricName.exportDuration,
      help: 'Export duration',
      labelNames: ['format'],
      buckets: LONG_BUCKETS,
      registers,
    });
    this.searchDuration = new Histogram({
      name: MetricName.searchDuration,
      help: 'Search duration',
      labelNames: ['entity', 'facet_source'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.reportDuration = new Histogram({
      name: MetricName.reportDuration,
      help: 'Report duration',
      labelNames: ['source'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.vectorSearchDuration = new Histogram({
      name: MetricName.vectorSearchDuration,
      help: 'Vector similarity search duration',
      labelNames: ['backend'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    new Gauge({
      name: MetricName.auditPartitions,
      help: 'Partitions of audit_logs, read at scrape time',
      registers,
      async collect() {
        const count = await auditPartitionCount();
        if (count !== undefined) this.set(count);
      },
    });
    this.activeSubscriptions = new Gauge({
      name: MetricName.activeSubscriptions,
      help: 'GraphQL subscriptions open now',
      registers,
    });
    new Gauge({
      name: MetricName.websocketConnections,
      help: 'WebSocket connections open now',
      registers,
      async collect() {
        this.set(await websocketCount());
      },
    });
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

  provideAuditPartitions(provider: Provider<number>): void {
    this.auditPartitionCount = provider;
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
