import type { Logger } from '../logging/logger';
import { noCacheMetrics, type CacheMetrics } from '../metrics/metrics';
import type { RedisClient } from '../redis/redis.connection';
import { INVALIDATION_GUARD_SECONDS, type CacheStore } from './cache.store';

const WRITE_BACK_SCRIPT = `
local n = #KEYS / 2
local ttl = ARGV[n + 1]
for i = 1, n do
  if redis.call('EXISTS', KEYS[2 * i]) == 0 then
    redis.call('SET', KEYS[2 * i - 1], ARGV[i], 'EX', ttl)
  end
end
return n`;

function guardKey(key: string): string {
  return `${key}:invalidated`;
}

/**
 * Redis-backed store. Every failure degrades to "miss" (reads) or "skipped" (writes) so callers fall back to
 * Postgres; `fallbacks` counts them and the connection recovers by itself.
 */
export class RedisCacheStore implements CacheStore {
  readonly driver = 'redis' as const;
  private healthy = true;
  private readonly pendingInvalidations = new Set<string>();
  private flushing = false;
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
      this.markHealthy();
      return values.map((value) => value ?? undefined);
    } catch (error) {
      this.recordFailure('mget', error);
      return keys.map(() => undefined);
    }
  }

  async mset(entries: ReadonlyArray<readonly [string, string]>, ttlSeconds: number): Promise<void> {
    if (entries.length === 0) return;
    try {
      // One script per batch: each key is written only if its invalidation guard is absent. Keys of one batch share
      // a tenant hash tag, so in a cluster they live on one slot.
      await this.redis.eval(
        WRITE_BACK_SCRIPT,
        entries.length * 2,
        ...entries.flatMap(([key]) => [key, guardKey(key)]),
        ...entries.map(([, value]) => value),
        ttlSeconds,
      );
      this.markHealthy();
    } catch (error) {
      this.recordFailure('mset', error);
    }
  }

  async invalidate(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    try {
      const pipeline = this.redis.pipeline();
      for (const key of keys) {
        pipeline.del(key);
        pipeline.set(guardKey(key), '1', 'EX', INVALIDATION_GUARD_SECONDS);
      }
      const results = await pipeline.exec();
      const failed = results?.find(([error]) => error);
      if (failed?.[0]) throw failed[0];
      this.markHealthy();
    } catch (error) {
      // The write is committed; the stale entry must still go. Retry once Redis answers again.
      keys.forEach((key) => this.pendingInvalidations.add(key));
      this.recordFailure('invalidate', error);
    }
  }

  private markHealthy(): void {
    this.healthy = true;
    if (this.pendingInvalidations.size === 0 || this.flushing) return;
    const keys = [...this.pendingInvalidations];
    this.pendingInvalidations.clear();
    this.flushing = true;
    void this.invalidate(keys).finally(() => (this.flushing = false));
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
