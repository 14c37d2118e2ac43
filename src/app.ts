import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import type { DataSource } from 'typeorm';
import { MIGRATIONS } from '../migrations';
import type { AppConfig } from './config/config';
import { ContextFactory } from './graphql/context';
import type { OperationLimits } from './graphql/limits';
import { buildGatewaySchema } from './graphql/schema';
import { AuditService } from './modules/audit';
import { ENTITIES } from './modules/entities';
import { registerHealthProcessor } from './modules/health/health.processor';
import { IdentityService, TokenService } from './modules/identity';
import { createRecordServices, type RecordServices } from './modules/records';
import { SharingService, VisibilityCache, VisibilityCompiler, VisibilityService } from './modules/sharing';
import { TieredCache } from './platform/cache/tiered.cache';
import type { CacheStore } from './platform/cache/cache.store';
import { MemoryCacheStore } from './platform/cache/memory.cache';
import { RedisCacheStore } from './platform/cache/redis.cache';
import { createDataSource } from './platform/db/data-source.factory';
import { startEmbeddedPostgres } from './platform/db/embedded-postgres';
import type { QueryCountingLogger } from './platform/db/query-counting.logger';
import { Lifecycle, ShutdownPhase } from './platform/lifecycle/lifecycle';
import { createLogger, type Logger } from './platform/logging/logger';
import { redactCredentials } from './platform/logging/redact';
import { MemoryEventBus, RedisEventBus, type EventBus } from './platform/pubsub/event-bus';
import { BullMqQueueDriver } from './platform/queue/bullmq.queue';
import { InProcessQueueDriver } from './platform/queue/in-process.queue';
import type { QueueDriver } from './platform/queue/queue.driver';
import {
  closeRedis,
  createRedisConnection,
  waitForReady,
  type RedisClient,
} from './platform/redis/redis.connection';
import { seedDemoIfEmpty } from './seed/demo.seed';
import { createHttpGateway } from './server/http.server';
import { startMetricsServer } from './server/metrics.server';
import { OperationMetrics } from './graphql/operation-metrics';
import { Metrics } from './platform/metrics/metrics';
import { DbMetricsSubscriber } from './platform/metrics/db-metrics.subscriber';
import { startGraphQLWs } from './server/graphql-ws.server';

export type ProcessRole = 'gateway' | 'worker' | 'cli';

export interface AppOptions {
  config: AppConfig;
  /** gateway: HTTP + WebSocket; worker: queue processors only; cli: drivers and services only. */
  role: ProcessRole;
  logger?: Logger;
  /** Run pending migrations at start. Default: true for the embedded database, false otherwise. */
  migrate?: boolean;
  /** BullMQ key prefix (tests isolate themselves with their own). Default `crm`. */
  queuePrefix?: string;
}

export interface AppServices {
  tokens: TokenService;
  identity: IdentityService;
  visibility: VisibilityService;
  sharing: SharingService;
  audit: AuditService;
  records: RecordServices;
}

export interface App {
  readonly config: AppConfig;
  readonly logger: Logger;
  readonly dataSource: DataSource;
  readonly queryLogger: QueryCountingLogger;
  readonly cache: CacheStore;
  readonly events: EventBus;
  readonly queue: QueueDriver;
  readonly services: AppServices;
  readonly metrics: Metrics;
  /** URL of the Prometheus sidecar, when enabled. */
  readonly metricsUrl?: string;
  /** Base URL of the HTTP server (gateway role). */
  readonly url?: string;
  readonly databaseUrl: string;
  stop(): Promise<void>;
}

/**
 * The composition root: config -> drivers (database, cache, pub/sub, queue) -> services -> schema -> transport.
 * Everything long-lived registers with one lifecycle, closed in order: transport, workers, queues, Redis, database.
 */
export async function startApp(options: AppOptions): Promise<App> {
  const { config, role } = options;
  const logger = options.logger ?? createLogger({ level: config.logLevel, name: `crm-${role}` });
  const lifecycle = new Lifecycle(logger);
  try {
    return await compose(options, logger, lifecycle);
  } catch (error) {
    await lifecycle.stop(config.shutdownTimeoutMs);
    throw error;
  }
}

async function compose(options: AppOptions, logger: Logger, lifecycle: Lifecycle): Promise<App> {
  const { config, role } = options;
  const drivers: Record<string, string> = {};
  const metrics = new Metrics({ process: role });

  let databaseUrl = config.database.url;
  if (!databaseUrl) {
    const embedded = await startEmbeddedPostgres({ dataDir: config.database.embeddedDataDir });
    lifecycle.register('embedded-postgres', ShutdownPhase.database, () => embedded.stop());
    databaseUrl = embedded.url;
    drivers.postgres = `embedded PGlite + pgvector (${config.database.embeddedDataDir})`;
  } else {
    drivers.postgres = `postgres (${redactCredentials(databaseUrl)})`;
  }
  const { dataSource, queryLogger } = createDataSource({
    url: databaseUrl,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    poolSize:
      config.database.driver === 'embedded'
        ? Math.min(config.database.poolSize, 5)
        : config.database.poolSize,
    logger,
  });
  await dataSource.initialize();
  lifecycle.register('postgres-pool', ShutdownPhase.database, () => dataSource.destroy());
  dataSource.subscribers.push(
    new DbMetricsSubscriber(metrics, new Set(dataSource.entityMetadatas.map((m) => m.tableName))),
  );
  metrics.provideAuditPartitions(
    cachedFor(30_000, async () => {
      const [row] = await dataSource.query<Array<{ count: number }>>(
        "SELECT count(*)::int AS count FROM pg_inherits WHERE inhparent = to_regclass('audit_logs')",
      );
      return row?.count ?? 0;
    }),
  );
  if (options.migrate ?? config.database.driver === 'embedded') {
    await dataSource.runMigrations({ transaction: 'each' });
  }

  let cache: CacheStore;
  let cacheClient: RedisClient | undefined;
  let events: EventBus;
  let queue: QueueDriver;
  const redisClients: RedisClient[] = [];
  if (config.redis.driver === 'memory') {
    cache = new MemoryCacheStore();
    events = new MemoryEventBus();
    queue = new InProcessQueueDriver();
    drivers.cache = 'in-process LRU';
    drivers.pubsub = 'in-process EventEmitter';
    drivers.queue = 'in-process runner';
  } else {
    const connect = (name: string, failFast: boolean) => {
      const client = createRedisConnection({
        url: config.redis.url,
        clusterNodes: config.redis.clusterNodes,
        name: `crm-${role}-${name}`,
        logger,
        failFast,
      });
      redisClients.push(client);
      return client;
    };
    cacheClient = connect('cache', true);
    cache = new RedisCacheStore(cacheClient, logger, metrics);
    events = new RedisEventBus(connect('publish', true), connect('subscribe', false), logger);
    const queuePrefix = options.queuePrefix ?? 'crm';
    queue = new BullMqQueueDriver({
      connection: connect('queue', false),
      // BullMQ's scripts touch several keys of a queue: in a cluster they must share a hash slot.
      prefix: config.redis.driver === 'redis-cluster' ? `{${queuePrefix}}` : queuePrefix,
      logger,
    });
    const ready = await Promise.all(redisClients.map((client) => waitForReady(client, 3000)));
    if (!ready.every(Boolean)) logger.warn('Redis is not answering yet: serving from Postgres until it does');
    const target =
      config.redis.driver === 'redis-cluster'
        ? `cluster ${config.redis.clusterNodes.join(',')}`
        : redactCredentials(config.redis.url!);
    drivers.cache = `redis (${target})`;
    drivers.pubsub = `redis pub/sub (${target})`;
    drivers.queue = `bullmq (${target})`;
  }
  lifecycle.register('redis', ShutdownPhase.cache, async () => {
    await events.close();
    await Promise.all(redisClients.map(closeRedis));
  });
  lifecycle.register('queues', ShutdownPhase.queues, () => queue.closeQueues());
  lifecycle.register('queue-workers', ShutdownPhase.workers, () => queue.closeWorkers());
  metrics.provideQueueCounts(() => queue.counts().catch(() => []));

  const tokens = new TokenService({ secret: config.jwt.secret, ttlSeconds: config.jwt.ttlSeconds });
  const identity = new IdentityService({
    dataSource,
    cache,
    tokens,
    cacheTtlSeconds: config.entityCacheTtlSeconds,
    metrics,
  });
  const sharingCache = new TieredCache({ name: 'sharing', redis: cacheClient, events, logger, metrics });
  await sharingCache.start();
  lifecycle.register('sharing-cache', ShutdownPhase.cache, () => sharingCache.stop());
  const visibilityCache = new VisibilityCache({
    cache: sharingCache,
    rulesTtlSeconds: config.sharing.rulesTtlSeconds,
    visibilityTtlSeconds: config.sharing.visibilityTtlSeconds,
  });
  const visibility = new VisibilityService(dataSource, new VisibilityCompiler(dataSource), visibilityCache);
  const audit = new AuditService({
    onInactiveActor: (principal) => identity.invalidateUsers(principal.companyId, [principal.userId]),
  });
  const sharing = new SharingService({ dataSource, audit, identity, visibility, cache: visibilityCache });
  const records = createRecordServices(
    { dataSource, visibility, audit, identity, maxPageSize: config.graphql.maxPageSize },
    cache,
    config.entityCacheTtlSeconds,
    metrics,
  );
  const services: AppServices = { tokens, identity, visibility, sharing, audit, records };

  // Without Redis there is no separate worker process, so the gateway runs the processors itself.
  if (role === 'worker' || (role === 'gateway' && queue.driver === 'in-process')) {
    registerHealthProcessor(queue);
  }

  if (role === 'gateway' && config.database.driver === 'embedded' && config.seedDemoWhenEmpty) {
    await seedDemoIfEmpty(dataSource, logger);
  }

  let url: string | undefined;
  if (role === 'gateway') {
    const { maxDepth, maxIntrospectionDepth, maxAliases, maxDirectives, maxTokens, maxFragments } =
      config.graphql;
    const limits: OperationLimits = {
      maxDepth,
      maxIntrospectionDepth,
      maxAliases,
      maxDirectives,
      maxTokens,
      maxFragments,
      maxComplexity: config.graphql.maxComplexity,
      maxPageSize: config.graphql.maxPageSize,
    };
    const schema = await buildGatewaySchema(services);
    const contexts = new ContextFactory({
      identity,
      records,
      logger,
      maxBatchSize: config.dataloaderMaxBatch,
    });
    const websocket = { close: async (): Promise<void> => {} };
    const operationMetrics = new OperationMetrics(metrics);
    const { httpServer, apollo } = await createHttpGateway({
      schema,
      contexts,
      limits,
      logger,
      introspection: config.graphql.introspection,
      landingPage: config.graphql.landingPage,
      bodyLimit: config.http.bodyLimit,
      readiness: () => readiness(dataSource, redisClients),
      onDrain: () => websocket.close(),
      drainTimeoutMs: Math.floor(config.shutdownTimeoutMs / 2),
      metrics,
      operationMetrics,
    });
    const ws = startGraphQLWs({
      httpServer,
      path: '/graphql',
      schema,
      contexts,
      limits,
      logger,
      operationMetrics,
      introspection: config.graphql.introspection,
      maxPayloadBytes: bytes(config.http.bodyLimit),
    });
    websocket.close = ws.close;
    metrics.provideWebsocketConnections(ws.connections);
    // apollo.stop() drains in-flight HTTP requests (and, through onDrain, WebSocket operations), then closes.
    lifecycle.register('http+websocket', ShutdownPhase.transport, () => apollo.stop());
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(config.http.port, config.http.host, () => resolve());
    });
    const address = httpServer.address() as AddressInfo;
    const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
    url = `http://${host}:${address.port}`;
  }

  let metricsUrl: string | undefined;
  const metricsPort = role === 'worker' ? config.metrics.workerPort : config.metrics.gatewayPort;
  if (role !== 'cli' && metricsPort !== 0) {
    const sidecar = await startMetricsServer({
      metrics,
      port: metricsPort,
      host: config.metrics.host,
      logger,
    });
    lifecycle.register('metrics-listener', ShutdownPhase.transport, sidecar.close);
    metricsUrl = sidecar.url;
  }

  logger.info(
    {
      role,
      drivers,
      ...(url ? { url: `${url}/graphql` } : {}),
      ...(metricsUrl ? { metrics: metricsUrl } : {}),
    },
    `${role} started`,
  );
  if (config.jwt.isDevSecret && role === 'gateway') {
    logger.warn('JWT_SECRET is not set: using the built-in development secret; never do this in production');
  }

  return {
    config,
    logger,
    dataSource,
    queryLogger,
    cache,
    events,
    queue,
    services,
    metrics,
    metricsUrl,
    url,
    databaseUrl,
    stop: () => lifecycle.stop(config.shutdownTimeoutMs),
  };
}

async function readiness(
  dataSource: DataSource,
  redisClients: RedisClient[],
): Promise<Record<string, boolean>> {
  const postgres = dataSource
    .query('SELECT 1')
    .then(() => true)
    .catch(() => false);
  const redis = Promise.all(redisClients.slice(0, 1).map((client) => client.ping()))
    .then(() => true)
    .catch(() => false);
  const [pg, rd] = await Promise.all([postgres, redis]);
  return redisClients.length > 0 ? { postgres: pg, redis: rd } : { postgres: pg };
}

/** `1mb`, `512kb`, `1000b` (the validated BODY_LIMIT forms) in bytes. */
function bytes(limit: string): number {
  const [, amount, unit] = /^(\d+)(b|kb|mb)$/i.exec(limit)!;
  return Number(amount) * { b: 1, kb: 1024, mb: 1024 * 1024 }[unit!.toLowerCase() as 'b' | 'kb' | 'mb'];
}

/** Memoises an async value for `ms`, so a scrape-time gauge does not hit the database on every scrape. */
function cachedFor<T>(ms: number, load: () => Promise<T>): () => Promise<T> {
  let value: { at: number; promise: Promise<T> } | undefined;
  return () => {
    if (!value || Date.now() - value.at > ms) value = { at: Date.now(), promise: load() };
    return value.promise;
  };
}
