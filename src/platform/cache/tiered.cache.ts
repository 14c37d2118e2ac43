import { LRUCache } from 'lru-cache';
import type { Logger } from '../logging/logger';
import { noCacheMetrics, type CacheMetrics } from '../metrics/metrics';
import type { EventBus } from '../pubsub/event-bus';
import type { RedisClient } from '../redis/redis.connection';

export interface TieredCacheOptions {
  /** Names the keys (`crm:<name>:...`) and the invalidation channel. */
  name: string;
  /** Shared tier; without it only the in-process tier exists (single-process embedded mode). */
  redis?: RedisClient;
  /** Carries invalidations to every process. */
  events: EventBus;
  logger: Logger;
  /** In-process entries before the least recently used go. Default 10,000. */
  maxLocalEntries?: number;
  /**
   * Longest an in-process entry or a scope's version is trusted without asking Redis again: bounds staleness if an
   * invalidation message were lost. Default 60 s.
   */
  localMaxAgeMs?: number;
  metrics?: CacheMetrics;
}

interface LocalEntry {
  value: unknown;
  version: number;
  expiresAt: number;
}

interface InvalidationMessage {
  scope: string;
  /** The scope's new version. */
  version: number;
}

export interface TieredCacheStats {
  localHits: number;
  redisHits: number;
  misses: number;
  /** Lookups computed without cache because Redis did not answer. */
  fallbacks: number;
}

/**
 * Two-tier cache (bounded in-process LRU in front of Redis) whose invalidation is O(1): every scope (a company) has a
 * version counter that is part of each key, so bumping it orphans all the scope's entries at once; a pub/sub message
 * makes every process drop its in-process copies. Concurrent misses for one key compute once. When Redis does not
 * answer, lookups are computed from the source without caching (and counted), and caching resumes by itself.
 */
export class TieredCache {
  readonly stats: TieredCacheStats = { localHits: 0, redisHits: 0, misses: 0, fallbacks: 0 };
  private readonly local: LRUCache<string, LocalEntry>;
  private readonly versions = new Map<string, { version: number; checkedAt: number }>();
  private readonly inFlight = new Map<string, Promise<unknown>>();
  /** Scopes whose version bump Redis refused; retried until it answers. */
  private readonly pendingScopes = new Set<string>();
  /** Bumps Redis took but whose message did not go out; re-sent until it does (other processes trust their tier). */
  private readonly pendingMessages = new Map<string, InvalidationMessage>();
  private retryTimer?: NodeJS.Timeout;
  private stopped = false;
  private readonly channel: string;
  private readonly localMaxAgeMs: number;
  private redisHealthy = true;
  private unsubscribe?: () => Promise<void>;
  private readonly metrics: CacheMetrics;

  constructor(private readonly options: TieredCacheOptions) {
    this.local = new LRUCache({ max: options.maxLocalEntries ?? 10_000 });
    this.channel = `crm:${options.name}:invalidated`;
    this.localMaxAgeMs = options.localMaxAgeMs ?? 60_000;
    this.metrics = options.metrics ?? noCacheMetrics;
  }

  /** Subscribes to invalidations from other processes. */
  async start(): Promise<void> {
    this.unsubscribe = await this.options.events.subscribe(this.channel, (raw) => this.onInvalidation(raw));
    // Messages published while our subscriber was reconnecting are lost: forget what we may have missed.
    this.options.events.onReconnect(() => this.resetLocal());
    // Until invalidations are heard the in-process tier stays off; it comes on by itself, so do not wait long.
    await this.options.events.whenListening(1000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.flushPending();
    await this.unsubscribe?.();
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.flushPending().then(() => {
        if (this.pendingScopes.size > 0 || this.pendingMessages.size > 0) this.scheduleRetry();
      });
    }, 500);
    this.retryTimer.unref();
  }

  private async flushPending(): Promise<void> {
    for (const message of [...this.pendingMessages.values()]) {
      if (this.pendingMessages.get(message.scope) === message) this.pendingMessages.delete(message.scope);
      await this.publish(message);
    }
    for (const scope of [...this.pendingScopes]) {
      this.pendingScopes.delete(scope);
      await this.invalidateScope(scope);
      if (this.pendingScopes.has(scope)) return;
    }
  }

  /** Forgets every in-process entry and version (after a reconnect, messages may have been missed). */
  resetLocal(): void {
    this.local.clear();
    this.versions.clear();
  }

  async getOrCompute<T>(
    scope: string,
    key: string,
    ttlSeconds: number,
    compute: () => Promise<T>,
  ): Promise<T> {
    const now = Date.now();
    const localKey = `${scope}|${key}`;
    const known = this.versions.get(scope);
    if (known && now - known.checkedAt < this.localMaxAgeMs && this.trustsLocalTier()) {
      const entry = this.local.get(localKey);
      if (entry && entry.version === known.version && entry.expiresAt > now) {
        this.stats.localHits++;
        this.metrics.recordCacheHit(this.options.name, 'memory');
        return entry.value as T;
      }
    }
    this.metrics.recordCacheMiss(this.options.name, 'memory');
    // Single flight per key and version: a request that arrives after an invalidation never joins a computation
    // that started before it.
    const flightKey = `${localKey}@${known?.version ?? '?'}`;
    const pending = this.inFlight.get(flightKey);
    if (pending) return pending as Promise<T>;
    const lookup = this.lookup(scope, key, localKey, ttlSeconds, compute).finally(() =>
      this.inFlight.delete(flightKey),
    );
    this.inFlight.set(flightKey, lookup);
    return lookup;
  }

  /**
   * Several keys of one scope, in key order (undefined where `computeMissing` found nothing; that is not cached).
   * In-process hits cost no round trip; the rest cost one version check (usually in-process too) and one MGET, and
   * what Redis lacks one `computeMissing` call. `revive` rebuilds a value from its JSON form (dates come back as
   * strings). Unlike `getOrCompute`, concurrent misses are not joined: callers batch their keys (a DataLoader).
   */
  async getMany<T>(
    scope: string,
    keys: readonly string[],
    ttlSeconds: number,
    computeMissing: (keys: string[]) => Promise<Map<string, T>>,
    revive: (raw: unknown) => T = (raw) => raw as T,
  ): Promise<Array<T | undefined>> {
    const now = Date.now();
    const known = this.versions.get(scope);
    const trustedVersion =
      known && now - known.checkedAt < this.localMaxAgeMs && this.trustsLocalTier()
        ? known.version
        : undefined;
    const result = new Array<T | undefined>(keys.length);
    const missing = new Set<string>();
    keys.forEach((key, index) => {
      const entry = trustedVersion === undefined ? undefined : this.local.get(`${scope}|${key}`);
      if (entry && entry.version === trustedVersion && entry.expiresAt > now) {
        this.stats.localHits++;
        this.metrics.recordCacheHit(this.options.name, 'memory');
        result[index] = entry.value as T;
      } else {
        this.metrics.recordCacheMiss(this.options.name, 'memory');
        missing.add(key);
      }
    });
    if (missing.size === 0) return result;
    const found = await this.lookupMany(scope, [...missing], ttlSeconds, computeMissing, revive);
    keys.forEach((key, index) => {
      if (missing.has(key)) result[index] = found.get(key);
    });
    return result;
  }

  private async lookupMany<T>(
    scope: string,
    keys: string[],
    ttlSeconds: number,
    computeMissing: (keys: string[]) => Promise<Map<string, T>>,
    revive: (raw: unknown) => T,
  ): Promise<Map<string, T>> {
    const redis = this.options.redis;
    if (!redis) {
      const version = this.versions.get(scope)?.version ?? 0;
      this.versions.set(scope, { version, checkedAt: Date.now() });
      this.stats.misses += keys.length;
      const computed = await computeMissing(keys);
      for (const [key, value] of computed) this.storeLocal(`${scope}|${key}`, value, version, ttlSeconds);
      return computed;
    }
    let version: number;
    let cached: Array<string | null>;
    const started = process.hrtime.bigint();
    try {
      version = await this.currentVersion(scope);
      // Keys of one scope share its hash tag, so MGET stays on one cluster slot.
      cached = await redis.mget(...keys.map((key) => this.redisKey(scope, version, key)));
      this.markHealthy();
    } catch (error) {
      this.markUnhealthy(error);
      this.stats.fallbacks += keys.length;
      this.metrics.recordCacheFallback(this.options.name);
      return computeMissing(keys);
    }
    this.metrics.recordCacheOperation(
      this.options.name,
      'redis',
      Number(process.hrtime.bigint() - started) / 1e9,
    );
    const values = new Map<string, T>();
    const absent: string[] = [];
    cached.forEach((raw, index) => {
      const key = keys[index]!;
      if (raw === null) {
        absent.push(key);
        return;
      }
      this.stats.redisHits++;
      this.metrics.recordCacheHit(this.options.name, 'redis');
      const value = revive(JSON.parse(raw));
      values.set(key, value);
      this.storeLocal(`${scope}|${key}`, value, version, ttlSeconds);
    });
    if (absent.length === 0) return values;
    this.stats.misses += absent.length;
    for (let i = 0; i < absent.length; i++) this.metrics.recordCacheMiss(this.options.name, 'redis');
    const computed = await computeMissing(absent);
    if (computed.size === 0) return values;
    try {
      const pipeline = redis.pipeline();
      for (const [key, value] of computed)
        pipeline.set(this.redisKey(scope, version, key), JSON.stringify(value), 'EX', ttlSeconds);
      const results = await pipeline.exec();
      const failed = results?.find(([error]) => error);
      if (failed?.[0]) throw failed[0];
    } catch (error) {
      this.markUnhealthy(error);
      for (const [key, value] of computed) values.set(key, value);
      return values;
    }
    for (const [key, value] of computed) {
      values.set(key, value);
      // Stored under the version read before computing: an invalidation meanwhile orphans it at once.
      this.storeLocal(`${scope}|${key}`, value, version, ttlSeconds);
    }
    return values;
  }

  /** Orphans every entry of the scope, here and in every process. */
  async invalidateScope(scope: string): Promise<void> {
    let version: number;
    if (this.options.redis) {
      try {
        version = await this.options.redis.incr(this.versionKey(scope));
        this.markHealthy();
      } catch (error) {
        // The change is committed; other processes must still learn of it. Retry until Redis takes the bump.
        this.markUnhealthy(error);
        this.versions.delete(scope);
        this.pendingScopes.add(scope);
        this.scheduleRetry();
        return;
      }
    } else {
      version = (this.versions.get(scope)?.version ?? 0) + 1;
    }
    this.versions.set(scope, { version, checkedAt: Date.now() });
    await this.publish({ scope, version });
  }

  private async lookup<T>(
    scope: string,
    key: string,
    localKey: string,
    ttlSeconds: number,
    compute: () => Promise<T>,
  ): Promise<T> {
    const redis = this.options.redis;
    if (!redis) {
      const version = this.versions.get(scope)?.version ?? 0;
      this.versions.set(scope, { version, checkedAt: Date.now() });
      this.stats.misses++;
      const value = await compute();
      this.storeLocal(localKey, value, version, ttlSeconds);
      return value;
    }
    let version: number;
    let cached: string | null;
    const started = process.hrtime.bigint();
    try {
      version = await this.currentVersion(scope);
      cached = await redis.get(this.redisKey(scope, version, key));
      this.markHealthy();
    } catch (error) {
      this.markUnhealthy(error);
      this.stats.fallbacks++;
      this.metrics.recordCacheFallback(this.options.name);
      return compute();
    }
    this.metrics.recordCacheOperation(
      this.options.name,
      'redis',
      Number(process.hrtime.bigint() - started) / 1e9,
    );
    if (cached !== null) {
      this.stats.redisHits++;
      this.metrics.recordCacheHit(this.options.name, 'redis');
      const value = JSON.parse(cached) as T;
      this.storeLocal(localKey, value, version, ttlSeconds);
      return value;
    }
    this.stats.misses++;
    this.metrics.recordCacheMiss(this.options.name, 'redis');
    const value = await compute();
    try {
      await redis.set(this.redisKey(scope, version, key), JSON.stringify(value), 'EX', ttlSeconds);
    } catch (error) {
      this.markUnhealthy(error);
      return value;
    }
    this.storeLocal(localKey, value, version, ttlSeconds);
    return value;
  }

  /**
   * The scope's current version (it changes on every invalidation), or undefined when Redis cannot say: callers that
   * key results by it must then not reuse anything.
   */
  async version(scope: string): Promise<number | undefined> {
    if (!this.options.redis) return this.versions.get(scope)?.version ?? 0;
    try {
      return await this.currentVersion(scope);
    } catch (error) {
      this.markUnhealthy(error);
      return undefined;
    }
  }

  private async currentVersion(scope: string): Promise<number> {
    const known = this.versions.get(scope);
    // A version is only kept while bumps would be heard; otherwise ask Redis every time.
    if (known && Date.now() - known.checkedAt < this.localMaxAgeMs && this.options.events.isListening())
      return known.version;
    const raw = await this.options.redis!.get(this.versionKey(scope));
    const version = raw === null ? 0 : Number(raw);
    this.versions.set(scope, { version, checkedAt: Date.now() });
    return version;
  }

  /**
   * The in-process tier is only as good as the invalidations this process hears. While Redis fails or the
   * subscription is down (a change elsewhere could narrow access unheard), every lookup goes to Redis or Postgres.
   */
  private trustsLocalTier(): boolean {
    return !this.options.redis || (this.redisHealthy && this.options.events.isListening());
  }

  private storeLocal(localKey: string, value: unknown, version: number, ttlSeconds: number): void {
    if (!this.trustsLocalTier()) return;
    this.local.set(localKey, {
      value,
      version,
      expiresAt: Date.now() + Math.min(ttlSeconds * 1000, this.localMaxAgeMs),
    });
  }

  private onInvalidation(raw: string): void {
    let message: InvalidationMessage;
    try {
      message = JSON.parse(raw) as InvalidationMessage;
    } catch {
      return;
    }
    const known = this.versions.get(message.scope);
    if (!known || known.version < message.version) {
      this.versions.set(message.scope, { version: message.version, checkedAt: Date.now() });
    }
  }

  private async publish(message: InvalidationMessage): Promise<void> {
    try {
      await this.options.events.publish(this.channel, JSON.stringify(message));
    } catch (error) {
      this.markUnhealthy(error);
      const queued = this.pendingMessages.get(message.scope);
      if (!queued || queued.version < message.version) this.pendingMessages.set(message.scope, message);
      this.scheduleRetry();
    }
  }

  private markHealthy(): void {
    if (this.redisHealthy) return;
    this.redisHealthy = true;
    // Invalidations sent while we could not hear them may be lost: start the in-process tier afresh.
    this.resetLocal();
    this.options.logger.info({ cache: this.options.name }, 'redis answers again: cache resumed');
  }

  private markUnhealthy(error: unknown): void {
    if (!this.redisHealthy) return;
    this.redisHealthy = false;
    this.resetLocal();
    this.options.logger.warn(
      { cache: this.options.name, err: (error as Error).message },
      'redis unavailable: computing without cache',
    );
  }

  private versionKey(scope: string): string {
    return `crm:${this.options.name}:{${scope}}:version`;
  }

  private redisKey(scope: string, version: number, key: string): string {
    return `crm:${this.options.name}:{${scope}}:v${version}:${key}`;
  }
}
