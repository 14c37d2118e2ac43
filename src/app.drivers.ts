import type { DataSource } from 'typeorm';
import type { AppConfig } from './config/config';
import type { CrmModule, ProcessRole } from './modules/kernel';
import { schemaOf } from './modules/modules';
import type { CacheStore } from './platform/cache/cache.store';
import { MemoryCacheStore } from './platform/cache/memory.cache';
import { RedisCacheStore } from './platform/cache/redis.cache';
import { createDataSource } from './platform/db/data-source.factory';
import { startEmbeddedPostgres } from './platform/db/embedded-postgres';
import { assertMigrated } from './platform/db/migration-state';
import type { QueryCountingLogger } from './platform/db/query-counting.logger';
import { Pool } from 'pg';
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

/** Postgres (or the embedded PGlite when no URL is configured), its pool and metrics, migrated or checked. */
export async function startDatabase(
  options: { config: AppConfig; role: ProcessRole; migrate?: boolean },
  modules: readonly CrmModule[],
  { logger, lifecycle, metrics, drivers }: ComposeTools,
): Promise<{ dataSource: DataSource; queryLogger: QueryCountingLogger; url: string }> {
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
  return { dataSource, queryLogger, url: databaseUrl };
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
  { logger, lifecycle, metrics, drivers }: ComposeTools,
): Promise<ReadRouting> {
  const { replicaUrls, replicaMaxLagMs, replicaCheckMs, poolSize } = config.database;
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
  const replicaPools = replicaUrls.map((url, index) => {
    const pool = new Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 2000 });
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
