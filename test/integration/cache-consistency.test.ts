import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import pino from 'pino';
import { MemoryCacheStore } from '../../src/platform/cache/memory.cache';
import { RedisCacheStore } from '../../src/platform/cache/redis.cache';
import { TieredCache } from '../../src/platform/cache/tiered.cache';
import { RedisEventBus } from '../../src/platform/pubsub/event-bus';
import { closeRedis, createRedisConnection, waitForReady } from '../../src/platform/redis/redis.connection';

const logger = pino({ level: 'silent' });

describe('cache consistency under races and outages (real Redis)', () => {
  const clients: Redis[] = [];
  const connect = async (failFast = true) => {
    const client = createRedisConnection({
      url: process.env.REDIS_URL,
      name: 'consistency',
      logger,
      failFast,
    }) as Redis;
    clients.push(client);
    await waitForReady(client, 3000);
    return client;
  };
  afterAll(async () => {
    await Promise.all(clients.map(closeRedis));
  });

  it.each(['redis', 'memory'] as const)(
    '%s store: a read that started before an invalidation cannot put the old value back',
    async (kind) => {
      const store = kind === 'redis' ? new RedisCacheStore(await connect(), logger) : new MemoryCacheStore();
      const key = `crm:entity:{${randomUUID()}}:user:u1`;
      await store.mset([[key, 'v1']], 60);
      expect(await store.mget([key])).toEqual(['v1']);
      // A reader loads v1 from the database, a writer commits v2 and invalidates, then the reader writes back v1.
      await store.invalidate([key]);
      await store.mset([[key, 'v1']], 60);
      expect(await store.mget([key])).toEqual([undefined]);
    },
  );

  it('a version bump that Redis refuses is retried, and other processes then see the change', async () => {
    const scope = randomUUID();
    const make = async () => {
      const events = new RedisEventBus(await connect(), await connect(false), logger);
      const cache = new TieredCache({ name: 'consistency', redis: await connect(), events, logger });
      await cache.start();
      return cache;
    };
    const a = await make();
    const b = await make();
    let source = 'old';
    expect(await b.getOrCompute(scope, 'k', 60, async () => source)).toBe('old');
    expect(await b.getOrCompute(scope, 'k', 60, async () => 'not computed')).toBe('old');

    // Redis stops answering for a moment (longer than the cache client's command timeout) while a change commits.
    const blocker = await connect(false);
    await blocker.call('CLIENT', 'PAUSE', '1500', 'WRITE');
    source = 'new';
    await a.invalidateScope(scope); // INCR waits behind the pause and times out on the cache client

    const deadline = Date.now() + 5000;
    let seen = '';
    while (Date.now() < deadline && seen !== 'new') {
      await new Promise((resolve) => setTimeout(resolve, 100));
      seen = await b.getOrCompute(scope, 'k', 60, async () => source);
    }
    expect(seen).toBe('new');
    await a.stop();
    await b.stop();
  });
});
