import pino from 'pino';
import { cacheKey } from '../../src/platform/cache/cache.store';
import { RedisCacheStore } from '../../src/platform/cache/redis.cache';
import { ReadThroughCache } from '../../src/platform/cache/read-through.cache';
import { closeRedis, createRedisConnection, waitForReady } from '../../src/platform/redis/redis.connection';

const logger = pino({ level: 'silent' });

describe('Redis cache store', () => {
  it('reads through, shares entries across stores, and invalidates on demand', async () => {
    const a = createRedisConnection({ url: process.env.REDIS_URL, name: 'cache-a', logger });
    const b = createRedisConnection({ url: process.env.REDIS_URL, name: 'cache-b', logger });
    try {
      expect(await waitForReady(a, 3000)).toBe(true);
      expect(await waitForReady(b, 3000)).toBe(true);
      const make = (client: typeof a) =>
        new ReadThroughCache<{ id: string; n: number }>({
          store: new RedisCacheStore(client, logger),
          namespace: 'entity',
          kind: 'thing',
          ttlSeconds: 60,
          revive: (raw) => raw as never,
        });
      const first = make(a);
      const second = make(b);
      let loads = 0;
      const load = async (ids: string[]) => {
        loads += ids.length;
        return new Map(ids.map((id) => [id, { id, n: id.length }]));
      };
      const company = `co-${Date.now()}`;
      expect(await first.getMany(company, ['x', 'yy'], load)).toEqual([
        { id: 'x', n: 1 },
        { id: 'yy', n: 2 },
      ]);
      expect(await second.getMany(company, ['yy', 'x'], load)).toEqual([
        { id: 'yy', n: 2 },
        { id: 'x', n: 1 },
      ]);
      expect(loads).toBe(2);
      // Another tenant asking for the same ids never sees these entries.
      expect(await second.getMany(`${company}-other`, ['x'], async () => new Map())).toEqual([null]);
      await first.invalidate(company, ['x']);
      await second.getMany(company, ['x'], load);
      expect(loads).toBe(3);
      expect(cacheKey('entity', company, 'thing', 'x')).toBe(`crm:entity:{${company}}:thing:x`);
    } finally {
      await closeRedis(a);
      await closeRedis(b);
    }
  });

  it('degrades to misses (and counts them) when Redis is unreachable, without throwing or hanging', async () => {
    const dead = createRedisConnection({ url: 'redis://127.0.0.1:1/0', name: 'cache-dead', logger });
    try {
      const store = new RedisCacheStore(dead, logger);
      const cache = new ReadThroughCache<{ id: string }>({
        store,
        namespace: 'entity',
        kind: 'thing',
        ttlSeconds: 60,
        revive: (raw) => raw as never,
      });
      const started = Date.now();
      const values = await cache.getMany('co', ['a'], async (ids) => new Map(ids.map((id) => [id, { id }])));
      expect(values).toEqual([{ id: 'a' }]);
      expect(store.fallbacks).toBeGreaterThanOrEqual(2); // the read and the write-back
      expect(store.isHealthy()).toBe(false);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      dead.disconnect();
    }
  });
});
