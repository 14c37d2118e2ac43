import { LRUCache } from 'lru-cache';
import type { CacheStore } from './cache.store';

export interface MemoryCacheOptions {
  /** Maximum number of entries before the least recently used go. Default 50,000. */
  maxEntries?: number;
}

export class MemoryCacheStore implements CacheStore {
  readonly driver = 'memory' as const;
  private readonly lru: LRUCache<string, string>;

  constructor(options: MemoryCacheOptions = {}) {
    this.lru = new LRUCache({ max: options.maxEntries ?? 50_000 });
  }

  async mget(keys: readonly string[]): Promise<Array<string | undefined>> {
    return keys.map((key) => this.lru.get(key));
  }

  async mset(entries: ReadonlyArray<readonly [string, string]>, ttlSeconds: number): Promise<void> {
    for (const [key, value] of entries) this.lru.set(key, value, { ttl: ttlSeconds * 1000 });
  }

  async del(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.lru.delete(key);
  }

  isHealthy(): boolean {
    return true;
  }
}
