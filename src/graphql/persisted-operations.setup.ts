import type { AppConfig } from '../config/config';
import type { Logger } from '../platform/logging/logger';
import type { Metrics } from '../platform/metrics/metrics';
import type { RedisClient } from '../platform/redis/redis.connection';
import { loadOperationManifest } from './operation-manifest';
import { persistedQueriesCounter, type PersistedOperationsOptions } from './persisted-operations';
import {
  MemoryPersistedQueryStore,
  RedisPersistedQueryStore,
  type PersistedQueryStore,
} from './persisted-query.store';

/**
 * The persisted-operation settings made real at boot: the manifest read and checked (a bad one throws, naming the
 * file and the entry), the store on the deployment's Redis, or in this process when there is none.
 */
export function persistedOperationsSetup(
  settings: AppConfig['graphql']['operations'],
  drivers: { redis: RedisClient | undefined; logger: Logger; metrics: Metrics },
): PersistedOperationsOptions {
  const { redis, logger, metrics } = drivers;
  const manifest = settings.manifestPath ? loadOperationManifest(settings.manifestPath) : undefined;
  const ttlSeconds = settings.apqTtlSeconds;
  const outcomes = persistedQueriesCounter(metrics);
  const store: PersistedQueryStore = redis
    ? new RedisPersistedQueryStore({
        redis,
        ttlSeconds,
        logger,
        onFailure: () => outcomes.inc({ outcome: 'store_error' }),
      })
    : new MemoryPersistedQueryStore({ ttlSeconds });
  logger.info(
    {
      mode: settings.mode,
      store: store.driver,
      manifest: manifest ? { file: manifest.source, operations: manifest.size } : undefined,
    },
    'graphql operations',
  );
  return { mode: settings.mode, manifest, store, metrics };
}
