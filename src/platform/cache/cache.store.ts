/** A string key/value store with TTLs: Redis in production, an in-process LRU when nothing is configured. */
export interface CacheStore {
  readonly driver: 'redis' | 'memory';
  /** Returns undefined on a miss, and also when the store is unreachable (counted as a fallback). */
  mget(keys: readonly string[]): Promise<Array<string | undefined>>;
  /**
   * Stores values read from the source, except for keys invalidated in the last few seconds: a read that started
   * before a write committed must not put the old row back after the write's invalidation. Best effort: failures are
   * logged and counted, never thrown.
   */
  mset(entries: ReadonlyArray<readonly [key: string, value: string]>, ttlSeconds: number): Promise<void>;
  /** Removes the keys and blocks their write-back for a few seconds; retried until the store takes it. */
  invalidate(keys: readonly string[]): Promise<void>;
  /** True when the last call reached the store. */
  isHealthy(): boolean;
}

/** How long an invalidated key refuses write-backs: longer than any read that could have started before it. */
export const INVALIDATION_GUARD_SECONDS = 2;

/**
 * A key is `crm:<namespace>:{<companyId>}:...`, so a cluster keeps a tenant on one slot. Namespaces are declared by the
 * modules that own them (`cacheNamespaces`); the composition root refuses two modules claiming one.
 */
export function cacheKey(namespace: string, companyId: string, ...parts: string[]): string {
  return ['crm', namespace, `{${companyId}}`, ...parts].join(':');
}
