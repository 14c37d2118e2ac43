import { connect } from 'node:net';
import { Redis } from 'ioredis';
import pino from 'pino';
import { MemoryCacheStore } from '../../src/platform/cache/memory.cache';
import { TieredCache } from '../../src/platform/cache/tiered.cache';
import { RedisEventBus } from '../../src/platform/pubsub/event-bus';
import { closeRedis, createRedisConnection, waitForReady } from '../../src/platform/redis/redis.connection';
import { IDENTITY_CACHE, IdentityService } from '../../src/modules/identity/identity.service';
import { createTenant, type TestTenant } from '../helpers/fixtures';
import { startTestApp, type TestApp } from '../helpers/test-app';

const logger = pino({ level: 'silent' });

/** Every command Redis runs while `during` runs that names one of the identity cache's keys (MONITOR's lines). */
async function identityCommands(during: () => Promise<void>): Promise<string[]> {
  const { hostname, port } = new URL(process.env.REDIS_URL!);
  const socket = connect(Number(port), hostname);
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  socket.write('MONITOR\r\n');
  await waitFor(() => text.startsWith('+OK'));
  try {
    await during();
    // A marker through the monitored server: once it shows, every earlier command has.
    const marker = `marker-${Date.now()}`;
    const client = new Redis(process.env.REDIS_URL!);
    await client.echo(marker);
    client.disconnect();
    await waitFor(() => text.includes(marker));
  } finally {
    socket.destroy();
  }
  return text.split('\r\n').filter((line) => line.includes(`"crm:${IDENTITY_CACHE}:`));
}

async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('MONITOR did not answer');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function me(t: TestApp, token: string) {
  return t.gql<{ me: { id: string; isAdmin: boolean } }>('{ me { id isAdmin } }', {}, token);
}

describe('user cache: an unchanged user costs no Redis round trip; a change reaches every gateway at once', () => {
  let t: TestApp;
  let other: TestApp;
  let a: TestTenant;

  beforeAll(async () => {
    t = await startTestApp();
    other = await startTestApp();
    a = await createTenant(t.app, { extraUsers: 2 });
  });
  afterAll(async () => {
    await other.stop();
    await t.stop();
  });

  it('authenticating an unchanged user reads no identity key from Redis', async () => {
    expect((await me(t, a.rep.token)).data?.me.id).toBe(a.rep.id); // warm this gateway
    const stats = t.app.services.identity['options'].users.stats;
    const before = { ...stats };
    const commands = await identityCommands(async () => {
      for (let i = 0; i < 5; i++) expect((await me(t, a.rep.token)).data?.me.id).toBe(a.rep.id);
    });
    expect(commands).toEqual([]);
    expect(stats.localHits - before.localHits).toBeGreaterThanOrEqual(5);
    expect(stats.misses).toBe(before.misses);
  });

  it('a role change and a deactivation on one gateway are seen by the other on its very next request', async () => {
    const user = a.others[0]!;
    for (const gateway of [t, other]) expect((await me(gateway, user.token)).data?.me.isAdmin).toBe(false);
    // The other gateway serves the user from its in-process tier now.
    const commands = await identityCommands(async () => {
      expect((await me(other, user.token)).data?.me.isAdmin).toBe(false);
    });
    expect(commands).toEqual([]);

    const promoted = await t.gql(
      `mutation { updateUserAccess(userId: "${user.id}", input: { isAdmin: true }) { isAdmin } }`,
      {},
      a.admin.token,
    );
    expect(promoted.errors).toBeUndefined();
    expect((await me(other, user.token)).data?.me.isAdmin).toBe(true);

    const deactivated = await t.gql(
      `mutation { deactivateUser(userId: "${user.id}") { id } }`,
      {},
      a.admin.token,
    );
    expect(deactivated.errors).toBeUndefined();
    const refused = await me(other, user.token);
    expect(refused.status).toBe(401);
    expect(refused.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    // Others of the company are read again once (their company's version moved), and still pass.
    expect((await me(other, a.rep.token)).data?.me.id).toBe(a.rep.id);
  });

  it('while its change feed is silent (no heartbeat comes back) a gateway asks Redis, so a deactivation is not missed', async () => {
    const user = a.others[1]!;
    const clients: Redis[] = [];
    const connectRedis = async (failFast = true) => {
      const client = createRedisConnection({
        url: process.env.REDIS_URL,
        name: 'user-cache',
        logger,
        failFast,
      });
      clients.push(client as Redis);
      await waitForReady(client, 3000);
      return client;
    };
    const subscriber = await connectRedis(false);
    const events = new RedisEventBus(await connectRedis(), subscriber, logger, { heartbeatMs: 50 });
    const users = new TieredCache({ name: IDENTITY_CACHE, redis: await connectRedis(), events, logger });
    await users.start();
    const identity = new IdentityService({
      dataSource: t.app.dataSource,
      cache: new MemoryCacheStore(),
      users,
      tokens: t.app.services.tokens,
      cacheTtlSeconds: 300,
    });
    try {
      expect(events.isListening()).toBe(true);
      await identity.authenticate(user.token);
      const warm = { ...users.stats };
      await identity.authenticate(user.token);
      expect(users.stats.localHits - warm.localHits).toBe(1); // trusted while the heartbeat comes back

      // The subscription goes quiet without the connection closing (what no connection event reports).
      await subscriber.unsubscribe();
      await new Promise((resolve) => setTimeout(resolve, 250));
      expect(events.isListening()).toBe(false);

      const deactivated = await t.gql(
        `mutation { deactivateUser(userId: "${user.id}") { id } }`,
        {},
        a.admin.token,
      );
      expect(deactivated.errors).toBeUndefined();
      const stale = { ...users.stats };
      const commands = await identityCommands(async () => {
        await expect(identity.authenticate(user.token)).rejects.toMatchObject({
          code: 'UNAUTHENTICATED',
          details: { reason: 'DEACTIVATED_USER' },
        });
      });
      expect(users.stats.localHits).toBe(stale.localHits);
      expect(commands.some((command) => /"get" "crm:identity:\{.+\}:version"/i.test(command))).toBe(true);
    } finally {
      await users.stop();
      await events.close();
      await Promise.all(clients.map(closeRedis));
    }
  });
});
