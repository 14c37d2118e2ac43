import type { Logger } from '../logging/logger';
import { noCacheMetrics, type CacheMetrics } from '../metrics/metrics';
import type { RedisClient } from '../redis/redis.connection';
import type { CacheStore } from './cache.store';

/**
 * Redis-backed store. Every failure degrades to "miss" (reads) or "skipped" (writes) so callers fall back to
 * Postgres; `fallbacks` counts them and the connection recovers by itself.
 */
export class RedisCacheStore implements CacheStore {
  readonly driver = 'redis' as const;
  private healthy = true;
  fallbacks = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly logger: Logger,
    private readonly metrics: CacheMetrics = noCacheMetrics,
  ) {}

  async mget(keys: readonly string[]): Promise<Array<string | undefined>> {
    if (keys.length === 0) return [];
    try {
      // Keys of one call share a tenant hash tag, so MGET stays on one cluster slot.
      const values = await this.redis.mget(...keys);
      this.healthy = true;
      return values.map((value) => value ?? undefined);
    } catch (error) {
      this.recordFailure('mget', error);
      return keys.map(() => undefined);
    }
  }

  async mset(entries: ReadonlyArray<readonly [string, string]>, ttlSeconds: number): Promise<void> {
    if (entries.length === 0) return;
    try {
      const pipeline = this.redis.pipeline();
      for (const [key, value] of entries) pipeline.set(key, value, 'EX', ttlSeconds);
      const results = await pipeline.exec();
      const failed = results?.find(([error]) => error);
      if (failed?.[0]) throw failed[0];
      this.healthy = true;
    } catch (error) {
      this.recordFailure('mset', error);
    }
  }

  async del(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    try {
      await this.redis.del(...keys);
      this.healthy = true;
    } catch (error) {
      this.recordFailure('del', error);
    }
  }

  isHealthy(): boolean {
    return this.healthy;
  }

  private recordFailure(operation: string, error: unknown): void {
    this.fallbacks++;
    this.metrics.recordCacheFallback('entity');
    if (this.healthy)
      this.logger.warn(
        { operation, err: (error as Error).message },
        'redis cache unavailable, using Postgres',
      );
    this.healthy = false;
  }
}
