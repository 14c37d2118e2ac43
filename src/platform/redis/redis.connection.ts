import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../logging/logger';

export type RedisClient = Redis | Cluster;

export interface RedisConnectionOptions {
  /** redis:// URL; ignored when `clusterNodes` is non-empty. */
  url?: string;
  /** host:port seeds of a Redis Cluster. Default none. */
  clusterNodes?: readonly string[];
  /** Name shown in CLIENT LIST and logs. */
  name: string;
  logger: Logger;
  /**
   * Fail commands at once while disconnected instead of queueing them (cache clients: a down Redis must cost a
   * miss, not a hang). Default true. BullMQ connections need false.
   */
  failFast?: boolean;
  /** Logical database index (not supported by Redis Cluster). Default from the URL. */
  db?: number;
  /**
   * Send the commands issued in one event-loop tick as one pipeline (ioredis `enableAutoPipelining`): fewer writes and
   * replies for a client that issues many small commands at once. Default false.
   */
  autoPipelining?: boolean;
}

/** One ioredis connection (or cluster client) with the retry and timeout policy used across the gateway. */
export function createRedisConnection(options: RedisConnectionOptions): RedisClient {
  const failFast = options.failFast ?? true;
  const base: RedisOptions = {
    connectionName: options.name,
    lazyConnect: false,
    enableOfflineQueue: !failFast,
    maxRetriesPerRequest: failFast ? 1 : null,
    commandTimeout: failFast ? 500 : undefined,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    ...(options.db !== undefined ? { db: options.db } : {}),
    ...(options.autoPipelining ? { enableAutoPipelining: true } : {}),
  };
  let client: RedisClient;
  if (options.clusterNodes && options.clusterNodes.length > 0) {
    client = new Cluster(
      options.clusterNodes.map((node) => {
        const [host, port] = node.split(':');
        return { host: host ?? '127.0.0.1', port: Number(port ?? 6379) };
      }),
      {
        redisOptions: base,
        enableOfflineQueue: !failFast,
        enableAutoPipelining: options.autoPipelining ?? false,
      },
    );
  } else {
    if (!options.url) throw new Error('REDIS_URL: required for the redis driver');
    client = new Redis(options.url, base);
  }
  let wasReady = false;
  client.on('ready', () => {
    if (wasReady) options.logger.info({ connection: options.name }, 'redis reconnected');
    wasReady = true;
  });
  client.on('error', (error: Error) => {
    options.logger.warn({ connection: options.name, err: error.message }, 'redis connection error');
  });
  return client;
}

export async function closeRedis(client: RedisClient): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

/** Waits up to `timeoutMs` for the connection to be ready; false if Redis does not answer (callers go on without it). */
export function waitForReady(client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ready);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    client.once('ready', onReady);
  });
}
