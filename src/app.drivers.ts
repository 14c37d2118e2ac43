import { Pool } from 'pg';
import type { DataSource } from 'typeorm';
import type { AppConfig } from './config/config';
import type { CrmModule, ProcessRole } from './modules/kernel';
import { schemaOf } from './modules/modules';
import type { CacheStore } from './platform/cache/cache.store';
import { MemoryCacheStore } from './platform/cache/memory.cache';
import { RedisCacheStore } from './platform/cache/redis.cache';
import { ConnectionBudget, type PoolClaim } from './platform/db/connection-budget';
import { createDataSource } from './platform/db/data-source.factory';
import { startEmbeddedPostgres } from './platform/db/embedded-postgres';
import { assertMigrated } from './platform/db/migration-state';
import { detectTransactionPooler, PoolerPolicy } from './platform/db/pooler';
import type { QueryCountingLogger } from './platform/db/query-counting.logger';
import { ReadRouting, WriteFloors, dataSourceConnection, type RowQuery } from './platform/db/read-routing';
import { ReplicaMonitor } from './platform/db/replica-monitor';
import { walPosition } from './platform/db/wal-position';
import { ShutdownPhase, type Lifecycle } from './platform/lifecycle/lifecycle';
import type { Logger } from './platform/logging/logger';
import { redactCredentials } from './platform/logging/redact';
import { DbMetricsSubscriber } from './platform/metrics/db-metrics.subscriber';
import type { Metrics } from './platform/metrics/metrics';
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

/** The composition's first steps (see app.ts): the database and the Redis-backed (or in-process) drivers. */

/** What every composition step may use: the logger, the lifecycle it registers with, metrics, driver descriptions. */
export interface ComposeTools {
  logger: Logger;
  lifecycle: Lifecycle;
  metrics: Metrics;
  /** What each driver is, for the start-up log line. */
  drivers: Record<string, string>;
}

/** The DataSource's pool, in the connection budget. */
export const MAIN_POOL = 'main';

/**
 * The primary's connection budget: the DataSource's pool and every module's (`pools`), sized under
 * DATABASE_MAX_CONNECTIONS; throws a ConnectionBudgetError when the explicit sizes cannot fit.
 */
/** The connection budget of one database server: the primary, or a read replica (the same pools, the same split). */
export function connectionBudgetFor(
  config: AppConfig,
  modules: readonly CrmModule[],
  server = 'primary',
): ConnectionBudget {
  const embedded = config.database.driver === 'embedded';
  const explicit = config.database.poolSize;
  const main: PoolClaim = {
    name: MAIN_POOL,
    // The embedded database serves every connection from one session: more than 5 only wait there.
    weight: embedded ? 5 : 10,
    size: explicit === undefined ? undefined : embedded ? Math.min(explicit, 5) : explicit,
    // Audit maintenance behind a transaction pooler holds its lock on one connection while it works on another.
    min: 2,
    setting: 'DATABASE_POOL_SIZE',
  };
  return new ConnectionBudget({
    server,
    max: config.database.maxConnections,
    setting: 'DATABASE_MAX_CONNECTIONS',
    claims: [main, ...modules.flatMap((module) => module.pools?.(config) ?? [])],
  });
}

export interface Database {
  dataSource: DataSource;
  queryLogger: QueryCountingLogger;
  url: string;
  pooler: PoolerPolicy;
}

/**
 * Postgres (or the embedded PGlite when no URL is configured), its pool (sized by the budget) and metrics, a
 * transaction pooler in front detected (DATABASE_POOLER=auto), migrated or checked.
 */
export async function startDatabase(
  options: { config: AppConfig; role: ProcessRole; migrate?: boolean },
  modules: readonly CrmModule[],
  budget: ConnectionBudget,
  { logger, lifecycle, metrics, drivers }: ComposeTools,
): Promise<Database> {
  const { config, role } = options;
  let databaseUrl = config.database.url;
  if (!databaseUrl) {
    const embedded = await startEmbeddedPostgres({ dataDir: config.database.embeddedDataDir, logger });
    lifecycle.register('embedded-postgres', ShutdownPhase.database, () => embedded.stop());
    databaseUrl = embedded.url;
    drivers.postgres = `embedded PGlite + pgvector (${config.database.embeddedDataDir})`;
  } else {
    drivers.postgres = `postgres (${redactCredentials(databaseUrl)})`;
  }
  const pooler = await poolerOf(config, databaseUrl, logger);
  if (pooler.transactionPooling)
    drivers.postgres += ' through a transaction pooler (unnamed statements, settings per transaction)';
  const { dataSource, queryLogger } = createDataSource({
    url: databaseUrl,
    ...schemaOf(modules),
    poolSize: budget.sizeOf(MAIN_POOL),
    logger,
  });
  await dataSource.initialize();
  lifecycle.register('postgres-pool', ShutdownPhase.database, () => dataSource.destroy());
  budget.track(MAIN_POOL, (dataSource.driver as unknown as { master: Pool }).master);
  dataSource.subscribers.push(
    new DbMetricsSubscriber(metrics, new Set(dataSource.entityMetadatas.map((m) => m.tableName))),
  );
  if (options.migrate ?? config.database.migrate === 'auto') {
    await dataSource.runMigrations({ transaction: 'each' });
  } else if (role !== 'cli') {
    await assertMigrated(dataSource);
  }
  return { dataSource, queryLogger, url: databaseUrl, pooler };
}

/** DATABASE_POOLER: declared, or (auto) probed once at start, with the fallback on a statement that shows one. */
async function poolerOf(config: AppConfig, url: string, logger: Logger): Promise<PoolerPolicy> {
  const setting = config.database.pooler;
  const embedded = config.database.driver === 'embedded';
  let transactionPooling = setting === 'pgbouncer';
  if (setting === 'auto' && !embedded) {
    transactionPooling = await detectTransactionPooler(url).catch((error: unknown) => {
      logger.warn(
        { err: error },
        'could not probe for a transaction pooler; assuming none (DATABASE_POOLER=auto)',
      );
      return false;
    });
  }
  return new PoolerPolicy({
    transactionPooling,
    // PGlite serves every connection from one session: a statement one connection prepared exists for all.
    namedStatements: !embedded,
    fallback: setting === 'auto',
    logger,
  });
}

export interface Messaging {
  cache: CacheStore;
  /** The cache's Redis connection (modules with Redis structures of their own use it); none in memory mode. */
  cacheClient: RedisClient | undefined;
  events: EventBus;
  queue: QueueDriver;
  pubsub: GraphQLPubSub;
  redisClients: RedisClient[];
}

/** Cache, event bus, GraphQL pub/sub and queue: on Redis (or a Redis Cluster), or in-process when none is configured. */
export async function startMessaging(
  options: { config: AppConfig; role: ProcessRole; queuePrefix?: string },
  { logger, lifecycle, metrics, drivers }: ComposeTools,
): Promise<Messaging> {
  const { config, role } = options;
  let messaging: Messaging;
  if (config.redis.driver === 'memory') {
    messaging = {
      cache: new MemoryCacheStore(),
      cacheClient: undefined,
      events: new MemoryEventBus(),
      queue: new InProcessQueueDriver(),
      pubsub: createGraphQLPubSub(),
      redisClients: [],
    };
    drivers.cache = 'in-process LRU';
    drivers.pubsub = 'in-process EventEmitter';
    drivers.queue = 'in-process runner';
  } else {
    const redisClients: RedisClient[] = [];
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
    const cacheClient = connect('cache', true);
    const queuePrefix = options.queuePrefix ?? 'crm';
    messaging = {
      cache: new RedisCacheStore(cacheClient, logger, metrics),
      cacheClient,
      events: new RedisEventBus(connect('publish', true), connect('subscribe', false), logger),
      pubsub: createGraphQLPubSub({
        publish: connect('graphql-publish', true),
        subscribe: connect('graphql-subscribe', false),
        logger,
      }),
      queue: new BullMqQueueDriver({
        connection: connect('queue', false),
        // On a cluster the driver hash-tags each queue's keys (BullMqQueueDriver.keyPrefix).
        prefix: queuePrefix,
        logger,
      }),
      redisClients,
    };
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
  const { events, redisClients, queue } = messaging;
  lifecycle.register('redis', ShutdownPhase.cache, async () => {
    await events.close();
    await Promise.all(redisClients.map(closeRedis));
  });
  lifecycle.register('queues', ShutdownPhase.queues, () => queue.closeQueues());
  lifecycle.register('queue-workers', ShutdownPhase.workers, () => queue.closeWorkers());
  return messaging;
}

/**
 * Read replicas, when DATABASE_REPLICA_URLS lists any: their health checks, and the routing that sends reads there
 * while keeping read-your-writes (floors in Redis, so every process honours a write any of them acknowledged).
 */
export async function startReadRouting(
  config: AppConfig,
  dataSource: DataSource,
  redis: RedisClient | undefined,
  replicas: ReadonlyArray<{ url: string; budget: ConnectionBudget }>,
  { logger, lifecycle, metrics, drivers }: ComposeTools,
): Promise<ReadRouting> {
  const { replicaUrls, replicaMaxLagMs, replicaCheckMs } = config.database;
  const primary: RowQuery = (sql, params) => dataSource.query(sql, params);
  const primaryConnection = () => dataSourceConnection(dataSource);
  if (replicaUrls.length === 0) return new ReadRouting({ primary, primaryConnection, logger, metrics });
  const primaryPosition = async () => {
    const [row] = await dataSource.query<Array<{ lsn: string }>>('SELECT pg_current_wal_lsn()::text AS lsn');
    return walPosition(row!.lsn);
  };
  const monitor = new ReplicaMonitor({
    replicaUrls,
    primaryPosition,
    maxLagMs: replicaMaxLagMs,
    checkIntervalMs: replicaCheckMs,
    logger,
  });
  await monitor.start();
  lifecycle.register('replica-checks', ShutdownPhase.database, () => monitor.stop());
  drivers.replicas = monitor.replicas
    .map(
      (replica) =>
        `${replica.name} ${redactCredentials(replica.url)} (${replica.up ? 'up' : replica.problem})`,
    )
    .join(', ');
  // A floor matters only while a replica within the lag limit may not have replayed it yet; checks add their period.
  const floorTtlMs = replicaMaxLagMs + 2 * replicaCheckMs + 1000;
  const replicaPools = replicas.map(({ url, budget }, index) => {
    const pool = new Pool({
      connectionString: url,
      max: budget.sizeOf(MAIN_POOL),
      connectionTimeoutMillis: 2000,
    });
    budget.track(MAIN_POOL, pool);
    pool.on('error', (error: Error & { code?: string }) =>
      logger.warn({ error: error.message, code: error.code, replica: index + 1 }, 'replica connection lost'),
    );
    lifecycle.register(`replica-${index + 1} pool`, ShutdownPhase.database, () => pool.end());
    return pool;
  });
  return new ReadRouting({
    primary,
    primaryConnection,
    monitor,
    replicaPools,
    floors: new WriteFloors(redis, floorTtlMs),
    primaryPosition,
    logger,
    metrics,
  });
}

export async function readiness(
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
