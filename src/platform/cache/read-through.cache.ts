import { noCacheMetrics, type CacheMetrics } from '../metrics/metrics';
import { cacheKey, type CacheStore } from './cache.store';

export interface ReadThroughCacheOptions<T> {
  store: CacheStore;
  /** The owning module's namespace. */
  namespace: string;
  /** Kind of entity, part of the key (e.g. `user`). */
  kind: string;
  /** Seconds an entry lives; 0 disables the cache (pass-through). */
  ttlSeconds: number;
  /** Rebuilds a value from its JSON form (dates come back as strings). */
  revive: (raw: Record<string, unknown>) => T;
  /**
   * Namespaces these entries lived under in earlier releases: invalidations clear those keys too, so gateways of the
   * previous release (still running during a rolling deploy) stop serving what this one changed.
   */
  formerNamespaces?: readonly string[];
  /** Hits, misses and timings, labelled with `kind` and the store's tier. */
  metrics?: CacheMetrics;
}

/**
 * Tenant-scoped read-through cache of small, hot entities shared by every request and process. Keys always carry
 * the company id, so a lookup can only ever return rows of the caller's tenant.
 */
export class ReadThroughCache<T> {
  constructor(private readonly options: ReadThroughCacheOptions<T>) {}

  /** Values in key order, null where neither cache nor `loadMissing` knows the id. */
  async getMany(
    companyId: string,
    ids: readonly string[],
    loadMissing: (ids: string[]) => Promise<Map<string, T>>,
  ): Promise<Array<T | null>> {
    if (this.options.ttlSeconds === 0) {
      const loaded = await loadMissing([...new Set(ids)]);
      return ids.map((id) => loaded.get(id) ?? null);
    }
    const metrics = this.options.metrics ?? noCacheMetrics;
    const tier = this.options.store.driver;
    const keys = ids.map((id) => this.key(companyId, id));
    const started = process.hrtime.bigint();
    const cached = await this.options.store.mget(keys);
    metrics.recordCacheOperation(this.options.kind, tier, Number(process.hrtime.bigint() - started) / 1e9);
    const result: Array<T | null> = new Array<T | null>(ids.length).fill(null);
    const missing: string[] = [];
    cached.forEach((raw, index) => {
      if (raw === undefined) missing.push(ids[index]!);
      else result[index] = this.options.revive(JSON.parse(raw) as Record<string, unknown>);
    });
    for (let i = missing.length; i < ids.length; i++) metrics.recordCacheHit(this.options.kind, tier);
    for (let i = 0; i < missing.length; i++) metrics.recordCacheMiss(this.options.kind, tier);
    if (missing.length === 0) return result;

    const loaded = await loadMissing([...new Set(missing)]);
    ids.forEach((id, index) => {
      if (result[index] === null) result[index] = loaded.get(id) ?? null;
    });
    await this.options.store.mset(
      [...loaded].map(([id, value]) => [this.key(companyId, id), JSON.stringify(value)] as const),
      this.options.ttlSeconds,
    );
    return result;
  }

  async invalidate(companyId: string, ids: readonly string[]): Promise<void> {
    const namespaces = [this.options.namespace, ...(this.options.formerNamespaces ?? [])];
    await this.options.store.invalidate(
      namespaces.flatMap((namespace) =>
        ids.map((id) => cacheKey(namespace, companyId, this.options.kind, id)),
      ),
    );
  }

  private key(companyId: string, id: string): string {
    return cacheKey(this.options.namespace, companyId, this.options.kind, id);
  }
}

export function reviveDates<T>(raw: Record<string, unknown>, fields: readonly string[]): T {
  for (const field of fields) {
    const value = raw[field];
    if (typeof value === 'string') raw[field] = new Date(value);
  }
  return raw as T;
}
