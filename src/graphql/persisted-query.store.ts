import { LRUCache } from 'lru-cache';
import type { Logger } from '../platform/logging/logger';
import type { RedisClient } from '../platform/redis/redis.connection';

/**
 * Where automatic persisted queries (APQ) are registered: a document under the SHA-256 of its text. Content-addressed,
 * so an entry never changes and needs no invalidation; it only expires.
 *
 * A driver must:
 * - `get`: answer the document registered under the hash, or undefined when there is none, it expired, or the store
 *   cannot be reached (the client then sends the full document again: a miss is always safe). Never throws.
 * - `set`: register the document for the store's TTL; best effort (a failure is logged and reported, never thrown:
 *   the request still runs, only the next one by hash misses).
 * - be shared by every gateway of a deployment when it says `shared` (a document registered on one is found on any).
 */
export interface PersistedQueryStore {
  readonly driver: 'redis' | 'memory';
  readonly shared: boolean;
  get(hash: string): Promise<string | undefined>;
  set(hash: string, query: string): Promise<void>;
}

/** Bounds of an in-process tier (the embedded store, and the Redis driver's front): count and total characters. */
export const LOCAL_STORE_ENTRIES = 2_000;
export const LOCAL_STORE_CHARS = 8_000_000;

function localTier(ttlSeconds: number): LRUCache<string, string> {
  return new LRUCache<string, string>({
    max: LOCAL_STORE_ENTRIES,
    maxSize: LOCAL_STORE_CHARS,
    sizeCalculation: (query) => Math.max(1, query.length),
    ttl: ttlSeconds * 1000,
  });
}

/** Embedded mode (no REDIS_URL): an LRU in this process, bounded by LOCAL_STORE_ENTRIES and LOCAL_STORE_CHARS. */
export class MemoryPersistedQueryStore implements PersistedQueryStore {
  readonly driver = 'memory' as const;
  readonly shared = false;
  private readonly entries: LRUCache<string, string>;

  constructor(options: { ttlSeconds: number }) {
    this.entries = localTier(options.ttlSeconds);
  }

  async get(hash: string): Promise<string | undefined> {
    return this.entries.get(hash);
  }

  async set(hash: string, query: string): Promise<void> {
    this.entries.set(hash, query);
  }
}

/** The key of a registered document: one key per hash, so every command touches one slot (Redis Cluster). */
export function persistedQueryKey(hash: string): string {
  return `crm:apq:${hash}`;
}

/**
 * Redis (or Redis Cluster): `SET crm:apq:<sha256> <document> EX <ttl>`, shared by every gateway. An in-process LRU in
 * front keeps hash hits off the network (safe without invalidation: an entry's content never changes).
 */
export class RedisPersistedQueryStore implements PersistedQueryStore {
  readonly driver = 'redis' as const;
  readonly shared = true;
  private readonly local: LRUCache<string, string>;

  constructor(
    private readonly options: {
      redis: RedisClient;
      ttlSeconds: number;
      logger: Logger;
      /** Told of every Redis failure (a metric); the lookup counts as a miss, the registration as skipped. */
      onFailure?: (operation: 'get' | 'set') => void;
    },
  ) {
    this.local = localTier(options.ttlSeconds);
  }

  async get(hash: string): Promise<string | undefined> {
    const known = this.local.get(hash);
    if (known !== undefined) return known;
    try {
      const query = await this.options.redis.get(persistedQueryKey(hash));
      if (query === null) return undefined;
      this.local.set(hash, query);
      return query;
    } catch (error) {
      this.fail('get', error);
      return undefined;
    }
  }

  async set(hash: string, query: string): Promise<void> {
    this.local.set(hash, query);
    try {
      await this.options.redis.set(persistedQueryKey(hash), query, 'EX', this.options.ttlSeconds);
    } catch (error) {
      this.fail('set', error);
    }
  }

  private fail(operation: 'get' | 'set', error: unknown): void {
    this.options.onFailure?.(operation);
    this.options.logger.warn({ err: error }, `persisted query store: Redis ${operation} failed`);
  }
}
