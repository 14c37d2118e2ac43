import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { RedisRateLimitStore } from '../../src/platform/rate-limit/flexible.rate-limit';
import { LeasedRateLimitStore } from '../../src/platform/rate-limit/leased.rate-limit';
import type {
  RateLimitBucket,
  RateLimitCount,
  RateLimitStore,
} from '../../src/platform/rate-limit/rate-limit.store';
import { closeRedis, createRedisConnection, waitForReady } from '../../src/platform/redis/redis.connection';

const logger = pino({ level: 'silent' });

/** The real Redis store, with a tally of the calls that reach it: the round trips a lease saves or costs. */
class CountingStore implements RateLimitStore {
  readonly driver = 'redis' as const;
  calls = 0;
  constructor(private readonly inner: RateLimitStore) {}
  consume(bucket: RateLimitBucket, key: string, points: number): Promise<RateLimitCount> {
    this.calls++;
    return this.inner.consume(bucket, key, points);
  }
  refund(bucket: RateLimitBucket, key: string, points: number): Promise<void> {
    this.calls++;
    return this.inner.refund(bucket, key, points);
  }
  peek(bucket: RateLimitBucket, key: string): Promise<RateLimitCount> {
    return this.inner.peek(bucket, key);
  }
}

describe('rate-limit leases: batches taken from the shared Redis counters (real Redis, two gateways)', () => {
  const clients: Redis[] = [];
  afterAll(async () => {
    await Promise.all(clients.map(closeRedis));
  });

  /** One gateway's store: its own connection, as each process has. */
  async function gateway(share = 0.02, now?: () => number) {
    const client = createRedisConnection({ url: process.env.REDIS_URL, name: 'leases', logger }) as Redis;
    clients.push(client);
    await waitForReady(client, 3000);
    const shared = new CountingStore(new RedisRateLimitStore(client));
    return { shared, store: new LeasedRateLimitStore(shared, { share, now }) };
  }
  const bucket = (quota: number, windowSeconds = 60): RateLimitBucket => ({
    name: `lease-test-${randomUUID().slice(0, 8)}`,
    quota,
    windowSeconds,
  });

  it('admits exactly the quota across two gateways, with a fraction of the round trips', async () => {
    const [a, b] = [await gateway(), await gateway()];
    const quota = bucket(1000);
    const key = `{${randomUUID()}}:user`;
    const admitted = { a: 0, b: 0 };
    // Both gateways take operations of 1 to 3 points until each is refused; neither may pass the quota.
    let open = { a: true, b: true };
    for (let i = 0; open.a || open.b; i++) {
      const side = i % 3 === 0 ? 'b' : 'a';
      if (!open[side]) continue;
      const points = 1 + (Math.floor(i / 3) % 3);
      const count = await (side === 'a' ? a : b).store.consume(quota, key, points);
      if (count.admitted) admitted[side] += points;
      else {
        await (side === 'a' ? a : b).store.refund(quota, key, points);
        // A refusal while the other gateway still holds a lease is allowed; one of a single point is final.
        if (points === 1) open = { ...open, [side]: false };
      }
      if (i > 5000) throw new Error('never refused');
    }
    // Every admitted point came from the shared counter, and once both are refused nothing is left unspent anywhere.
    expect(admitted.a + admitted.b).toBe(1000);
    expect(admitted.a).toBeGreaterThan(0);
    expect(admitted.b).toBeGreaterThan(0);
    const shared = await a.shared.peek(quota, key);
    expect(shared.consumed).toBe(admitted.a + admitted.b);
    // ~660 operations: counted one by one they would be as many round trips (plus refunds).
    expect(a.shared.calls + b.shared.calls).toBeLessThan(200);
  });

  it('refuses an operation that does not fit and leaves the counter as it was once refunded', async () => {
    const { store, shared } = await gateway();
    const quota = bucket(500);
    const key = `{${randomUUID()}}`;
    for (let i = 0; i < 10; i++) expect((await store.consume(quota, key, 40)).admitted).toBe(true);
    const before = await store.peek(quota, key);
    expect(before.consumed).toBe(400);
    const refused = await store.consume(quota, key, 150);
    expect(refused).toMatchObject({ admitted: false, remaining: 0 });
    // The refusal counts the operation's points, as the store's contract says, until the caller refunds them.
    expect(refused.consumed).toBe(550);
    await store.refund(quota, key, 150);
    expect((await store.peek(quota, key)).consumed).toBe(400);
    // What is left still takes an operation that fits, to the last point.
    expect((await store.consume(quota, key, 100)).admitted).toBe(true);
    expect((await shared.peek(quota, key)).consumed).toBeLessThanOrEqual(500);
    expect((await store.consume(quota, key, 1)).admitted).toBe(false);
  });

  it('takes one batch for a burst of concurrent operations of one key', async () => {
    const { store, shared } = await gateway();
    const quota = bucket(100_000);
    const key = `{${randomUUID()}}`;
    const counts = await Promise.all(Array.from({ length: 50 }, () => store.consume(quota, key, 10)));
    expect(counts.every((count) => count.admitted)).toBe(true);
    // One batch covers 2,000 points (2 % of the quota) plus the first operation's: 50 x 10 needs one round trip.
    expect(shared.calls).toBe(1);
    expect((await store.peek(quota, key)).consumed).toBe(500);
  });

  it("lets a lease lapse with its window: the next window's points come from the shared counter", async () => {
    let clock = Date.now();
    const { store, shared } = await gateway(0.02, () => clock);
    const quota = bucket(10_000, 1);
    const key = `{${randomUUID()}}`;
    expect((await store.consume(quota, key, 5)).admitted).toBe(true);
    expect((await store.consume(quota, key, 5)).admitted).toBe(true);
    expect(shared.calls).toBe(1);
    // The shared counter's window (1 s) has ended: the lease it came from is gone too.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    clock += 1100;
    expect((await store.consume(quota, key, 5)).admitted).toBe(true);
    expect(shared.calls).toBe(2);
    expect((await store.peek(quota, key)).consumed).toBe(5);
  });

  it('counts quotas too small to lease from one operation at a time', async () => {
    const { store, shared } = await gateway();
    const quota = bucket(50);
    const key = `{${randomUUID()}}`;
    for (let i = 0; i < 50; i++) expect((await store.consume(quota, key, 1)).admitted).toBe(true);
    expect(shared.calls).toBe(50);
    expect((await store.consume(quota, key, 1)).admitted).toBe(false);
  });

  it('spends an operation from its leases with no round trip, all of its counters or none', async () => {
    const { store, shared } = await gateway();
    const [requests, complexity] = [bucket(1000), bucket(1000)];
    const key = `{${randomUUID()}}:user`;
    const spends = (points: number) => [
      { bucket: requests, key, points: 1 },
      { bucket: complexity, key, points },
    ];
    // No lease yet: nothing is spent, and the shared counters are where the first operation goes.
    expect(store.spendLocally(spends(5))).toBe(false);
    await store.consume(requests, key, 1);
    await store.consume(complexity, key, 5);
    const calls = shared.calls;
    // Leases of 20 points each (2 % of 1,000), the first point of each taken by the operations above.
    expect(store.spendLocally(spends(5))).toBe(true);
    expect(store.spendLocally(spends(5))).toBe(true);
    expect(shared.calls).toBe(calls);
    // 20 - 5 - 5 = 10 complexity points left in the lease (the first operation's 5 were taken beside it): an
    // operation of 11 does not fit it, and takes nothing from the request lease either.
    expect(store.spendLocally(spends(11))).toBe(false);
    const before = await store.peek(requests, key);
    expect(store.spendLocally([{ bucket: requests, key, points: 1 }])).toBe(true);
    expect((await store.peek(requests, key)).consumed).toBe(before.consumed + 1);
    // The same lease named twice counts twice: 10 left, so 6 + 6 does not fit and the 10 are still there.
    expect(
      store.spendLocally([
        { bucket: complexity, key, points: 6 },
        { bucket: complexity, key, points: 6 },
      ]),
    ).toBe(false);
    expect(store.spendLocally([{ bucket: complexity, key, points: 10 }])).toBe(true);
    expect(store.spendLocally([{ bucket: complexity, key, points: 1 }])).toBe(false);
    // Every point spent in process was counted in Redis when its lease was taken: the shared counters never lag.
    const used = await store.peek(complexity, key);
    expect(used.consumed).toBe(5 + 5 + 5 + 10);
    expect(shared.calls).toBe(calls);
  });
});
