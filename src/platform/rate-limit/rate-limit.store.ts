/**
 * Counters of points per key per fixed window, shared by every gateway (Redis) or held by this process (memory). The
 * store knows no tenant, user or rule: callers name the buckets, build the keys and decide what a point is.
 */

/** One family of counters with the quota they are held to (a key's counter lives for one window from its first point). */
export interface RateLimitBucket {
  /** Names the family; every key of the bucket lives under it (`crm:ratelimit:<name>:<key>`). Letters, digits, `-`. */
  name: string;
  /** Points a key may take per window; a consume that would pass it is refused. */
  quota: number;
  /** Length of the window, in seconds, counted from a key's first point. */
  windowSeconds: number;
}

/** A key's counter after a consume (or as it stands, for `peek`). */
export interface RateLimitCount {
  /** False when the consume took the counter past the quota (the points stay counted until `refund`). */
  admitted: boolean;
  /** Points counted in the current window. */
  consumed: number;
  /** Points left in the window (0 when over). */
  remaining: number;
  /** Milliseconds until the window ends and the counter starts again (0 when it holds no points). */
  resetMs: number;
}

export interface RateLimitStoreOptions {
  /**
   * Told each time a shared counter could not be reached and the process's own counter answered instead (fail open:
   * the quota then holds per process, not per deployment). Default none.
   */
  onFallback?: () => void;
}

/**
 * rate-limiter-flexible on ioredis (Redis or Redis Cluster), or its in-process limiter when no Redis is configured.
 * A driver never refuses an operation because its store is down: the Redis driver answers from an in-process counter
 * with the same quota (rate-limiter-flexible's insurance limiter) and reports it through `onFallback`.
 */
export interface RateLimitStore {
  readonly driver: 'redis' | 'memory';
  /** Adds `points` (a positive integer) to `key`'s counter in `bucket`; resolves `admitted: false` when over quota. */
  consume(bucket: RateLimitBucket, key: string, points: number): Promise<RateLimitCount>;
  /** Takes `points` back (an operation refused by another counter, or one that did not fit, never ran). */
  refund(bucket: RateLimitBucket, key: string, points: number): Promise<void>;
  /** The counter as it stands, without consuming; `consumed: 0` when the key holds none. */
  peek(bucket: RateLimitBucket, key: string): Promise<RateLimitCount>;
  /**
   * Spends every one of `spends` from points this process already holds, with no round trip and no promise: all of
   * them or none. False when any of them needs the shared counter (then nothing was spent: call `consume`). A store
   * that holds no points of its own leaves it out.
   */
  spendLocally?(spends: readonly RateLimitSpend[]): boolean;
}

/** One counter's share of an operation. */
export interface RateLimitSpend {
  bucket: RateLimitBucket;
  key: string;
  points: number;
}

/** Every key of the stores lives under this prefix (claimed as the `ratelimit` namespace by its module). */
export const RATE_LIMIT_KEY_PREFIX = 'crm:ratelimit';

const BUCKET_NAME = /^[a-z0-9-]{1,64}$/;

export function assertBucket(bucket: RateLimitBucket): void {
  if (!BUCKET_NAME.test(bucket.name))
    throw new Error(`rate-limit bucket ${bucket.name}: name must match ${BUCKET_NAME}`);
  if (!Number.isInteger(bucket.quota) || bucket.quota < 1)
    throw new Error(`rate-limit bucket ${bucket.name}: quota must be a positive integer`);
  if (!Number.isInteger(bucket.windowSeconds) || bucket.windowSeconds < 1)
    throw new Error(`rate-limit bucket ${bucket.name}: windowSeconds must be a positive integer`);
}

/** The count rate-limiter-flexible's result (or its absence) describes, against the bucket's quota. */
export function countOf(
  bucket: RateLimitBucket,
  result: { consumedPoints: number; msBeforeNext: number } | null,
): RateLimitCount {
  const consumed = Math.max(0, result?.consumedPoints ?? 0);
  return {
    admitted: consumed <= bucket.quota,
    consumed,
    remaining: Math.max(0, bucket.quota - consumed),
    resetMs: consumed > 0 ? Math.max(0, result?.msBeforeNext ?? 0) : 0,
  };
}
