import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { RedisClient } from '../redis/redis.connection';
import {
  assertBucket,
  countOf,
  RATE_LIMIT_KEY_PREFIX,
  type RateLimitBucket,
  type RateLimitCount,
  type RateLimitStore,
  type RateLimitStoreOptions,
} from './rate-limit.store';

/** The process's own counter that answers while Redis cannot; each consume it takes is a fail-open. */
class FallbackLimiter extends RateLimiterMemory {
  constructor(
    options: ConstructorParameters<typeof RateLimiterMemory>[0],
    private readonly onFallback: () => void,
  ) {
    super(options);
  }

  override consume(key: string | number, points?: number, options?: Record<string, unknown>) {
    this.onFallback();
    return super.consume(key, points, options);
  }
}

/** rate-limiter-flexible keeps one limiter per quota and window; buckets that share a name share their counters. */
abstract class FlexibleRateLimitStore implements RateLimitStore {
  abstract readonly driver: 'redis' | 'memory';
  private readonly limiters = new Map<string, RateLimiterAbstract>();

  protected abstract createLimiter(options: {
    keyPrefix: string;
    points: number;
    duration: number;
  }): RateLimiterAbstract;

  private limiter(bucket: RateLimitBucket): RateLimiterAbstract {
    const id = `${bucket.name}|${bucket.quota}|${bucket.windowSeconds}`;
    let limiter = this.limiters.get(id);
    if (!limiter) {
      assertBucket(bucket);
      limiter = this.createLimiter({
        keyPrefix: `${RATE_LIMIT_KEY_PREFIX}:${bucket.name}`,
        points: bucket.quota,
        duration: bucket.windowSeconds,
      });
      this.limiters.set(id, limiter);
    }
    return limiter;
  }

  async consume(bucket: RateLimitBucket, key: string, points: number): Promise<RateLimitCount> {
    try {
      return countOf(bucket, await this.limiter(bucket).consume(key, points));
    } catch (refused) {
      // Over quota: rate-limiter-flexible rejects with the counter (anything else is a store error for the caller).
      if (refused instanceof RateLimiterRes) return countOf(bucket, refused);
      throw refused;
    }
  }

  async refund(bucket: RateLimitBucket, key: string, points: number): Promise<void> {
    await this.limiter(bucket).reward(key, points);
  }

  async peek(bucket: RateLimitBucket, key: string): Promise<RateLimitCount> {
    return countOf(bucket, await this.limiter(bucket).get(key));
  }
}

/**
 * Counters in Redis, so every gateway holds each caller to one quota. Keys are `crm:ratelimit:<bucket>:<key>`: a
 * caller that puts a hash tag in its keys (`{tenant}:...`) keeps them in one Redis Cluster slot. Each consume is one
 * Lua script on one key. While Redis does not answer, an in-process counter with the same quota answers (fail open).
 */
export class RedisRateLimitStore extends FlexibleRateLimitStore {
  readonly driver = 'redis' as const;

  constructor(
    private readonly client: RedisClient,
    private readonly options: RateLimitStoreOptions = {},
  ) {
    super();
  }

  protected createLimiter(options: { keyPrefix: string; points: number; duration: number }) {
    return new RateLimiterRedis({
      ...options,
      storeClient: this.client,
      // Not connected: go to the insurance limiter at once rather than wait for a command timeout.
      rejectIfRedisNotReady: true,
      insuranceLimiter: new FallbackLimiter(options, () => this.options.onFallback?.()),
    });
  }
}

/** Counters in this process (embedded mode, no Redis): one gateway, so its quota is the deployment's. */
export class MemoryRateLimitStore extends FlexibleRateLimitStore {
  readonly driver = 'memory' as const;

  protected createLimiter(options: { keyPrefix: string; points: number; duration: number }) {
    return new RateLimiterMemory(options);
  }
}
