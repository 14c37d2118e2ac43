import type { ChildProcess } from 'node:child_process';
import { buildSharingOrg, type SharingOrg } from '../helpers/sharing-org';
import { spawnBuilt, testProcessEnv, type SpawnedProcess } from '../helpers/spawn-gateway';
import { freePort } from '../helpers/ports';
import { startRedisServer } from '../helpers/redis-server';
import { startTestApp, type TestApp } from '../helpers/test-app';

type LeadOwner = keyof SharingOrg['leads'];
type Subject = keyof SharingOrg['users'];

async function readableVia(url: string, org: SharingOrg, subject: Subject): Promise<LeadOwner[]> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${org.users[subject].token}` },
    body: JSON.stringify({ query: '{ leads(pageSize: 200) { items { lastName } } }' }),
  });
  const body = (await response.json()) as {
    data?: { leads: { items: Array<{ lastName: LeadOwner }> } };
    errors?: unknown;
  };
  if (!body.data) throw new Error(JSON.stringify(body.errors));
  return body.data.leads.items.map((item) => item.lastName).sort();
}

/** Polls until `url` shows `expected` to `subject`; returns how long that took. */
async function converges(
  url: string,
  org: SharingOrg,
  subject: Subject,
  expected: LeadOwner[],
  withinMs = 1000,
): Promise<number> {
  const started = Date.now();
  let seen: LeadOwner[] = [];
  while (Date.now() - started <= withinMs) {
    seen = await readableVia(url, org, subject);
    if (JSON.stringify(seen) === JSON.stringify(expected)) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(
    `${subject} still sees ${JSON.stringify(seen)} after ${withinMs} ms, expected ${JSON.stringify(expected)}`,
  );
}

describe('sharing cache: invalidation reaches this process and a second gateway process at once', () => {
  let t: TestApp;
  let second: SpawnedProcess;
  let secondUrl: string;

  beforeAll(async () => {
    t = await startTestApp();
    second = spawnBuilt('main', testProcessEnv());
    const [, url] = await second.waitFor(/"url":"(http:\/\/[^"]+)\/graphql"/);
    secondUrl = url!;
  });
  afterAll(async () => {
    second.child.kill('SIGTERM');
    await second.exited;
    await t.stop();
  });

  async function admin(org: SharingOrg, mutation: string) {
    const res = await t.gql(mutation, {}, org.users.admin.token);
    expect(res.errors).toBeUndefined();
  }

  /** Warms both processes' caches with the old view, applies the change on this process, checks both. */
  async function expectChange(
    org: SharingOrg,
    subject: Subject,
    before: LeadOwner[],
    change: () => Promise<void>,
    after: LeadOwner[],
  ) {
    expect(await readableVia(t.url, org, subject)).toEqual(before);
    expect(await readableVia(secondUrl, org, subject)).toEqual(before);
    expect(await readableVia(t.url, org, subject)).toEqual(before); // served from cache now
    await change();
    expect(await readableVia(t.url, org, subject)).toEqual(after); // same process: immediately
    await converges(secondUrl, org, subject, after, 1000); // other process: within a second
  }

  it('rule create, update and delete', async () => {
    const org = await buildSharingOrg(t.app);
    let ruleId = '';
    await expectChange(
      org,
      'sup',
      ['sup'],
      async () => {
        const res = await t.gql(
          `mutation { createSharingRule(input: { objectType: LEAD, name: "r", ruleType: OWNER, source: { type: ROLE, id: "${org.roles.rep}" }, target: { type: USER, id: "${org.users.sup.id}" } }) { id } }`,
          {},
          org.users.admin.token,
        );
        ruleId = res.data!.createSharingRule.id as string;
      },
      ['rep1', 'rep2', 'sup'],
    );
    await expectChange(
      org,
      'sup',
      ['rep1', 'rep2', 'sup'],
      () =>
        admin(
          org,
          `mutation { updateSharingRule(id: "${ruleId}", input: { objectType: LEAD, name: "r", ruleType: OWNER, source: { type: ROLE, id: "${org.roles.manager}" }, target: { type: USER, id: "${org.users.sup.id}" } }) { id } }`,
        ),
      ['mgr', 'sup'],
    );
    await expectChange(
      org,
      'sup',
      ['mgr', 'sup'],
      () => admin(org, `mutation { deleteSharingRule(id: "${ruleId}") }`),
      ['sup'],
    );
  });

  it('org-wide default change', async () => {
    const org = await buildSharingOrg(t.app);
    await expectChange(
      org,
      'rep1',
      ['rep1'],
      () =>
        admin(
          org,
          'mutation { setOrgWideDefault(objectType: LEAD, accessLevel: PUBLIC_READ) { accessLevel } }',
        ),
      ['mgr', 'outsider', 'rep1', 'rep2', 'sup', 'vp'],
    );
  });

  it('role tree change', async () => {
    const org = await buildSharingOrg(t.app);
    // Support moves between CEO and VP: sup now sits above the whole sales line.
    await expectChange(
      org,
      'sup',
      ['sup'],
      async () => {
        await admin(
          org,
          `mutation { updateRole(id: "${org.roles.vp}", input: { name: "VP", parentId: "${org.roles.support}" }) { id } }`,
        );
      },
      ['mgr', 'rep1', 'rep2', 'sup', 'vp'],
    );
  });

  it('group membership change', async () => {
    const org = await buildSharingOrg(t.app);
    await admin(
      org,
      `mutation { createSharingRule(input: { objectType: LEAD, name: "reps to g1", ruleType: OWNER, source: { type: ROLE, id: "${org.roles.rep}" }, target: { type: GROUP, id: "${org.groups.g1}" } }) { id } }`,
    );
    const member = `{ groupId: "${org.groups.g1}", memberType: USER, memberId: "${org.users.outsider.id}" }`;
    await expectChange(
      org,
      'outsider',
      ['outsider'],
      () => admin(org, `mutation { addGroupMember(input: ${member}) }`),
      ['outsider', 'rep1', 'rep2'],
    );
    await expectChange(
      org,
      'outsider',
      ['outsider', 'rep1', 'rep2'],
      () => admin(org, `mutation { removeGroupMember(input: ${member}) }`),
      ['outsider'],
    );
  });

  it('user role and admin flag change', async () => {
    const org = await buildSharingOrg(t.app);
    await expectChange(
      org,
      'outsider',
      ['outsider'],
      () =>
        admin(
          org,
          `mutation { updateUserAccess(userId: "${org.users.outsider.id}", input: { roleId: "${org.roles.manager}" }) { id } }`,
        ),
      ['outsider', 'rep1', 'rep2'],
    );
    await expectChange(
      org,
      'outsider',
      ['outsider', 'rep1', 'rep2'],
      () =>
        admin(
          org,
          `mutation { updateUserAccess(userId: "${org.users.outsider.id}", input: { isAdmin: true }) { isAdmin } }`,
        ),
      ['mgr', 'outsider', 'rep1', 'rep2', 'sup', 'vp'],
    );
  });

  it('manual share to a user and to a group', async () => {
    const org = await buildSharingOrg(t.app);
    await expectChange(
      org,
      'sup',
      ['sup'],
      () =>
        admin(
          org,
          `mutation { shareRecord(input: { objectType: LEAD, recordId: "${org.leads.rep1}", granteeType: USER, granteeId: "${org.users.sup.id}" }) { id } }`,
        ),
      ['rep1', 'sup'],
    );
    await expectChange(
      org,
      'sup',
      ['rep1', 'sup'],
      () =>
        admin(
          org,
          `mutation { shareRecord(input: { objectType: LEAD, recordId: "${org.leads.vp}", granteeType: GROUP, granteeId: "${org.groups.g2}" }) { id } }`,
        ),
      ['rep1', 'sup', 'vp'],
    );
  });

  it('serves repeated lookups from the in-process tier and counts tiers', async () => {
    const org = await buildSharingOrg(t.app);
    const stats = t.app.services.visibility['cache'].stats;
    await readableVia(t.url, org, 'vp');
    const before = { ...stats };
    for (let i = 0; i < 5; i++) await readableVia(t.url, org, 'vp');
    expect(stats.localHits - before.localHits).toBeGreaterThanOrEqual(5);
    expect(stats.misses).toBe(before.misses);
  });
});

describe('sharing cache when Redis goes away and comes back (a private redis-server)', () => {
  let redis: ChildProcess | undefined;
  let t: TestApp;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    redis = await startRedisServer(port);
    t = await startTestApp({ REDIS_URL: `redis://127.0.0.1:${port}/0` });
  });
  afterAll(async () => {
    await t.stop();
    redis?.kill('SIGKILL');
  });

  it('keeps answering correctly from Postgres while Redis is down, and uses the cache again once it is back', async () => {
    const org = await buildSharingOrg(t.app);
    const stats = t.app.services.visibility['cache'].stats;
    expect(await readableVia(t.url, org, 'mgr')).toEqual(['mgr', 'rep1', 'rep2']);

    redis!.kill('SIGKILL');
    await new Promise((resolve) => redis!.once('exit', resolve));
    const fallbacksBefore = stats.fallbacks;
    expect(await readableVia(t.url, org, 'mgr')).toEqual(['mgr', 'rep1', 'rep2']);
    // A change while Redis is down is still seen at once (nothing stale is served from the in-process tier).
    const shared = await t.gql(
      `mutation { shareRecord(input: { objectType: LEAD, recordId: "${org.leads.sup}", granteeType: USER, granteeId: "${org.users.mgr.id}" }) { id } }`,
      {},
      org.users.admin.token,
    );
    expect(shared.errors).toBeUndefined();
    expect(await readableVia(t.url, org, 'mgr')).toEqual(['mgr', 'rep1', 'rep2', 'sup']);
    expect(stats.fallbacks).toBeGreaterThan(fallbacksBefore);

    redis = await startRedisServer(port);
    const deadline = Date.now() + 10_000;
    let cached = false;
    while (Date.now() < deadline && !cached) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const hits = stats.localHits + stats.redisHits;
      expect(await readableVia(t.url, org, 'mgr')).toEqual(['mgr', 'rep1', 'rep2', 'sup']);
      await readableVia(t.url, org, 'mgr');
      cached = stats.localHits + stats.redisHits > hits;
    }
    expect(cached).toBe(true);
  });
});

describe('narrowed access while Redis is down: a second gateway stops serving it at once', () => {
  let redis: ChildProcess | undefined;
  let t: TestApp;
  let second: SpawnedProcess;
  let secondUrl: string;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    redis = await startRedisServer(port);
    const redisUrl = `redis://127.0.0.1:${port}/0`;
    t = await startTestApp({ REDIS_URL: redisUrl });
    second = spawnBuilt('main', testProcessEnv({ REDIS_URL: redisUrl }));
    const [, url] = await second.waitFor(/"url":"(http:\/\/[^"]+)\/graphql"/);
    secondUrl = url!;
  });
  afterAll(async () => {
    second.child.kill('SIGTERM');
    await second.exited;
    await t.stop();
    redis?.kill('SIGKILL');
  });

  async function leadById(url: string, token: string, id: string) {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: `{ lead(id: "${id}") { id } }` }),
    });
    return ((await response.json()) as { data: { lead: { id: string } | null } }).data.lead;
  }

  it('PUBLIC_READ -> kill Redis -> PRIVATE on gateway A: gateway B serves only what is still visible', async () => {
    const org = await buildSharingOrg(t.app);
    const everyone: LeadOwner[] = ['mgr', 'outsider', 'rep1', 'rep2', 'sup', 'vp'];
    const publicRead = await t.gql(
      'mutation { setOrgWideDefault(objectType: LEAD, accessLevel: PUBLIC_READ) { accessLevel } }',
      {},
      org.users.admin.token,
    );
    expect(publicRead.errors).toBeUndefined();
    await converges(secondUrl, org, 'rep1', everyone, 2000);
    // Warm B's in-process tier with the wide view.
    for (let i = 0; i < 3; i++) expect(await readableVia(secondUrl, org, 'rep1')).toEqual(everyone);
    expect(await leadById(secondUrl, org.users.rep1.token, org.leads.vp)).toEqual({ id: org.leads.vp });

    redis!.kill('SIGKILL');
    await new Promise((resolve) => redis!.once('exit', resolve));
    const narrowed = await t.gql(
      'mutation { setOrgWideDefault(objectType: LEAD, accessLevel: PRIVATE) { accessLevel } }',
      {},
      org.users.admin.token,
    );
    expect(narrowed.errors).toBeUndefined();

    // B cannot hear the invalidation; it must not trust what it holds in process.
    const ms = await converges(secondUrl, org, 'rep1', ['rep1'], 1000);
    expect(ms).toBeLessThan(1000);
    expect(await leadById(secondUrl, org.users.rep1.token, org.leads.vp)).toBeNull();

    redis = await startRedisServer(port);
    // Once Redis and the subscription are back, B keeps answering the narrowed view (and caches it again).
    await new Promise((resolve) => setTimeout(resolve, 1500));
    for (let i = 0; i < 3; i++) expect(await readableVia(secondUrl, org, 'rep1')).toEqual(['rep1']);
    const widened = await t.gql(
      'mutation { setOrgWideDefault(objectType: LEAD, accessLevel: PUBLIC_READ) { accessLevel } }',
      {},
      org.users.admin.token,
    );
    expect(widened.errors).toBeUndefined();
    await converges(secondUrl, org, 'rep1', everyone, 2000);
  });
});
