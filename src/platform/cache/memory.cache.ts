import { LRUCache } from 'lru-cache';
import { INVALIDATION_GUARD_SECONDS, type CacheStore } from './cache.store';

export interface MemoryCacheOptions {
  /** Maximum number of entries before the least recently used go. Default 50,000. */
  maxEntries?: number;
}

export class MemoryCacheStore implements CacheStore {
  readonly driver = 'memory' as const;
  private readonly lru: LRUCache<string, string>;
  private readonly guards = new LRUCache<string, number>({ max: 10_000 });

  constructor(options: MemoryCacheOptions = {}) {
    this.lru = new LRUCache({ max: options.maxEntries ?? 50_000 });
  }

  async mget(keys: readonly string[]): Promise<Array<string | undefined>> {
    return keys.map((key) => this.lru.get(key));
  }

  async mset(entries: ReadonlyArray<readonly [string, string]>, ttlSeconds: number): Promise<void> {
    const now = Date.now();
    for (const [key, value] of entries) {
      if ((this.guards.get(key) ?? 0) > now) continue;
      this.lru.set(key, value, { ttl: ttlSeconds * 1000 });
    }
  }

  async invalidate(keys: readonly string[]): Promise<void> {
    const until = Date.now() + INVALIDATION_GUARD_SECONDS * 1000;
    for (const key of keys) {
      this.lru.delete(key);
      this.guards.set(key, until);
    }
  }

  isHealthy(): boolean {
    return true;
  }
}
