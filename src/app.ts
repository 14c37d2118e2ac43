import 'reflect-metadata';
import { resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { DataSource } from 'typeorm';
import type { AppConfig } from './config/config';
import { ContextFactory } from './graphql/context';
import type { OperationLimits } from './graphql/limits';
import { OperationMetrics } from './graphql/operation-metrics';
import { buildGatewaySchema } from './graphql/schema';
import { type ModuleDrivers, type ProcessRole, type ServiceRegistry } from './modules/kernel';
import type { CrmModule } from './modules/kernel';
import { MODULES, schemaOf } from './modules/modules';
import type { CacheStore } from './platform/cache/cache.store';
import { MemoryCacheStore } from './platform/cache/memory.cache';
import { RedisCacheStore } from './platform/cache/redis.cache';
import { createDataSource } from './platform/db/data-source.factory';
import { startEmbeddedPostgres } from './platform/db/embedded-postgres';
import { assertMigrated } from './platform/db/migration-state';
import type { QueryCountingLogger } from './platform/db/query-counting.logger';
import { Lifecycle, ShutdownPhase } from './platform/lifecycle/lifecycle';
import { createLogger, type Logger } from './platform/logging/logger';
import { redactCredentials } from './platform/logging/redact';
import { Metrics } from './platform/metrics/metrics';
import { DbMetricsSubscriber } from './platform/metrics/db-metrics.subscriber';
import { MemoryEventBus, RedisEventBus, type EventBus } from './platform/pubsub/event-bus';
import { createGraphQLPubSub, type GraphQLPubSub } from './platform/pubsub/graphql-pubsub';
import { BullMqQueueDriver } from './platform/queue/bullmq.queue';
import { InProcessQueueDriver } from './platform/queue/in-process.queue';
import type { QueueDriver } from './platform/queue/queue.driver';
import {
  closeRedis,
  createRedisConnection,
  waitForReady,
  type RedisClient,
} from './platform/redis/redis.connection';
import type { FileStorage } from './platform/storage/file-storage';
import { LocalFileStorage } from './platform/storage/local-file.storage';
import { seedDemoIfEmpty } from './seed/demo.seed';
import { createHttpGateway } from './server/http.server';
import { startGraphQLWs } from './server/graphql-ws.server';
import { startMetricsServer } from './server/metrics.server';

export type { ProcessRole };

export interface AppOptions {
  config: AppConfig;
  /** gateway: HTTP + WebSocket; worker: queue processors only; cli: drivers and services only. */
  role: ProcessRole;
  logger?: Logger;
  /**
   * Run pending migrations at start. Default: `config.database.migrate` (auto for the embedded database); otherwise a
   * gateway or worker refuses to start while any is pending (a CLI is left to its own command).
   */
  migrate?: boolean;
  /** BullMQ key prefix (tests isolate themselves with their own). Default `crm`. */
  queuePrefix?: string;
  /** The capabilities to compose, in build order. Default every module (src/modules/modules.ts). */
  modules?: readonly CrmModule[];
}

export interface App {
  readonly config: AppConfig;
  readonly logger: Logger;
  readonly dataSource: DataSource;
  readonly queryLogger: QueryCountingLogger;
  readonly cache: CacheStore;
  readonly events: EventBus;
  readonly queue: QueueDriver;
  readonly storage: FileStorage;
  readonly pubsub: GraphQLPubSub;
  readonly services: ServiceRegistry;
  readonly metrics: Metrics;
  /** URL of the Prometheus sidecar, when enabled. */
  readonly metricsUrl?: string;
  /** Base URL of the HTTP server (gateway role). */
  readonly url?: string;
  readonly databaseUrl: string;
  stop(): Promise<void>;
}

/**
 * The composition root: config -> drivers (database, cache, pub/sub, queue, storage) -> each module's services, in
 * module order -> schema, loaders, routes, processors and scheduled jobs from every module -> transport.
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
  const modules = options.modules ?? MODULES;
  assertUniqueNames(modules);
  const drivers: Record<string, string> = {};
  const metrics = new Metrics({ process: role });

  let databaseUrl = config.database.url;
  if (!databaseUrl) {
    const embedded = await startEmbeddedPostgres({ dataDir: config.database.embeddedDataDir, logger });
    lifecycle.register('embedded-postgres', ShutdownPhase.database, () => embedded.stop());
    databaseUrl = embedded.url;
    drivers.postgres = `embedded PGlite + pgvector (${config.database.embeddedDataDir})`;
  } else {
    drivers.postgres = `postgres (${redactCredentials(databaseUrl)})`;
  }
  const { dataSource, queryLogger } = createDataSource({
    url: databaseUrl,
    ...schemaOf(modules),
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
  if (options.migrate ?? config.database.migrate === 'auto') {
    await dataSource.runMigrations({ transaction: 'each' });
  } else if (role !== 'cli') {
    await assertMigrated(dataSource);
  }

  let cache: CacheStore;
  let cacheClient: RedisClient | undefined;
  let events: EventBus;
  let queue: QueueDriver;
  let pubsub: GraphQLPubSub;
  const redisClients: RedisClient[] = [];
  if (config.redis.driver === 'memory') {
    cache = new MemoryCacheStore();
    events = new MemoryEventBus();
    queue = new InProcessQueueDriver();
    pubsub = createGraphQLPubSub();
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
    pubsub = createGraphQLPubSub({
      publish: connect('graphql-publish', true),
      subscribe: connect('graphql-subscribe', false),
      logger,
    });
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
  queue.declareQueues(modules.flatMap((module) => module.queues ?? []));
  for (const family of modules.flatMap((module) => module.metrics ?? [])) metrics.declare(family);
  assertDistinct(modules, 'cache namespace', (module) => module.cacheNamespaces ?? []);
  metrics.provideQueueCounts(() => queue.counts().catch(() => []));
  const storage = new LocalFileStorage(resolve(config.storage.directory));
  drivers.storage = `local directory (${config.storage.directory})`;

  // Each module builds its services from the drivers and the services of the modules before it.
  const moduleDrivers: ModuleDrivers = {
    config,
    role,
    logger,
    dataSource,
    cache,
    redis: cacheClient,
    events,
    queue,
    storage,
    pubsub,
    metrics,
    lifecycle,
  };
  const registry: Record<string, unknown> = {};
  for (const module of modules) {
    const built = (await module.createServices?.({ ...moduleDrivers, services: registry })) ?? {};
    for (const [name, service] of Object.entries(built)) {
      if (name in registry) throw new Error(`module ${module.name}: service "${name}" is already registered`);
      registry[name] = service;
    }
  }
  const services = registry as unknown as ServiceRegistry;
  for (const module of modules) await module.start?.(services, moduleDrivers);

  // Workers run jobs on BullMQ. Without Redis nothing is shared between processes, so the gateway runs them itself and
  // a worker runs none (its timers would fire every schedule a second time).
  const runsJobs = queue.driver === 'bullmq' ? role === 'worker' : role === 'gateway';
  if (runsJobs) {
    for (const module of modules) {
      for (const binding of module.processors?.(services) ?? [])
        queue.process(binding.queue, binding.processor as never, binding.options);
    }
  }
  if (role !== 'cli') {
    // Declared together, so every handler is known before the scheduler's worker takes its first job.
    const jobs = modules.flatMap((module) => module.scheduledJobs?.(services) ?? []);
    await Promise.all(jobs.map((job) => queue.schedule(job.name, job.schedule, job.run, { run: runsJobs })));
  }

  if (role === 'gateway' && config.database.driver === 'embedded' && config.seedDemoWhenEmpty) {
    await seedDemoIfEmpty(dataSource, services.vectors, logger);
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
      maxInputDepth: config.graphql.maxInputDepth,
      maxJsonValues: config.graphql.maxJsonValues,
    };
    const schema = await buildGatewaySchema(
      modules.flatMap((module) => module.resolvers?.(services) ?? []),
      pubsub,
    );
    const contexts = new ContextFactory({
      identity: services.identity,
      modules,
      services,
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
      fastPath: config.graphql.fastPath,
      compileQueries: config.graphql.compileQueries,
      bodyLimit: config.http.bodyLimit,
      bodyLimitBytes: bytes(config.http.bodyLimit),
      readiness: () => readiness(dataSource, redisClients),
      onDrain: () => websocket.close(),
      drainTimeoutMs: Math.floor(config.shutdownTimeoutMs / 2),
      metrics,
      operationMetrics,
      routes: modules.flatMap((module) => module.routes?.(services) ?? []),
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
      modules: modules.map((module) => module.name),
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
    storage,
    pubsub,
    services,
    metrics,
    metricsUrl,
    url,
    databaseUrl,
    stop: () => lifecycle.stop(config.shutdownTimeoutMs),
  };
}

function assertUniqueNames(modules: readonly CrmModule[]): void {
  assertDistinct(modules, 'name', (module) => [module.name]);
}

/** Two modules may not claim the same name, cache namespace, ...: a collision would mix their keys. */
function assertDistinct(
  modules: readonly CrmModule[],
  what: string,
  claims: (module: CrmModule) => readonly string[],
): void {
  const owner = new Map<string, string>();
  for (const module of modules) {
    for (const claim of claims(module)) {
      const previous = owner.get(claim);
      if (previous) throw new Error(`modules ${previous} and ${module.name} both claim the ${what} ${claim}`);
      owner.set(claim, module.name);
    }
  }
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
