import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../src/config/config';
import { createTenant, type TestTenant, type TestUser } from '../helpers/fixtures';
import { freePort } from '../helpers/ports';
import { startRedisServer } from '../helpers/redis-server';
import { startTestApp, wsClient, wsExecute, type GraphQLResponse, type TestApp } from '../helpers/test-app';

/**
 * Per-tenant rate limits and cost quotas at the edge: real gateways (HTTP through the fast path or Apollo, per jest
 * project, and graphql-ws) on the real Redis, small quotas so a test can spend them.
 */

const USER_REQUESTS = 5;
const COMPANY_REQUESTS = 8;
const CHEAP = '{ me { id } }';
const EXPENSIVE =
  '{ deals(pageSize: 100) { items { id name amount owner { id name } account { id name } } } }';
const RATE_LIMITS_QUERY =
  '{ rateLimits { companyId enabled overridden windowSeconds policies { name scope measure quota windowSeconds used remaining resetSeconds } } }';
const SET_OVERRIDE = `mutation($input: RateLimitOverrideInput!) {
  setRateLimitOverride(input: $input) { companyId overridden policies { name quota } }
}`;

interface RawResponse extends GraphQLResponse {
  headers: Headers;
}

async function post(app: TestApp, query: string, token: string, variables?: object): Promise<RawResponse> {
  const response = await fetch(`${app.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as GraphQLResponse;
  return { ...body, status: response.status, headers: response.headers };
}

type Extensions = {
  code?: string;
  retryAfterSeconds?: number;
  scope?: string;
  measure?: string;
  policy?: string;
};
const extensionsOf = (res: GraphQLResponse) => (res.errors?.[0]?.extensions ?? {}) as Extensions;

async function counterValue(
  app: TestApp,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = await app.app.metrics.registry.getSingleMetric(name)?.get();
  return (metric?.values ?? [])
    .filter((value) => Object.entries(labels).every(([key, wanted]) => value.labels[key] === wanted))
    .reduce((sum, value) => sum + value.value, 0);
}

/** A company admin whose user id is in PLATFORM_OPERATOR_USER_IDS (the id is chosen before the gateways start). */
async function createOperator(app: TestApp, userId: string): Promise<TestUser> {
  const companyId = randomUUID();
  await app.app.dataSource.query('INSERT INTO companies (id, name) VALUES ($1, $2)', [
    companyId,
    'Operators',
  ]);
  const email = `${userId}@operators.example.com`;
  await app.app.dataSource.query(
    'INSERT INTO users (id, company_id, email, name, is_admin) VALUES ($1, $2, $3, $4, true)',
    [userId, companyId, email, 'Operator'],
  );
  return { id: userId, email, isAdmin: true, token: await app.app.services.tokens.mint(userId, companyId) };
}

const limitsEnv = (operatorId: string, extra: Record<string, string> = {}) => ({
  RATE_LIMITS: 'true',
  RATE_LIMIT_USER_REQUESTS: String(USER_REQUESTS),
  RATE_LIMIT_COMPANY_REQUESTS: String(COMPANY_REQUESTS),
  RATE_LIMIT_USER_COMPLEXITY: '1000000',
  RATE_LIMIT_COMPANY_COMPLEXITY: '1000000',
  PLATFORM_OPERATOR_USER_IDS: operatorId,
  ...extra,
});

describe('rate limits and cost quotas', () => {
  const operatorId = randomUUID();
  let a: TestApp;
  let b: TestApp;
  let operator: TestUser;

  beforeAll(async () => {
    // Two gateways on the same Redis and database: one deployment.
    a = await startTestApp(limitsEnv(operatorId));
    b = await startTestApp(limitsEnv(operatorId));
    operator = await createOperator(a, operatorId);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('answers an operation over the request limit with 429, Retry-After, RateLimit-Policy/RateLimit and RATE_LIMITED', async () => {
    const tenant = await createTenant(a.app);
    const refusedBefore = await counterValue(a, 'crm_rate_limited_total', {
      scope: 'user',
      measure: 'requests',
    });
    for (let i = 0; i < USER_REQUESTS; i++) {
      const ok = await post(a, CHEAP, tenant.rep.token);
      expect(ok.status).toBe(200);
      expect(ok.data?.me?.id).toBe(tenant.rep.id);
    }
    const refused = await post(a, CHEAP, tenant.rep.token);
    expect(refused.status).toBe(429);
    expect(refused.data ?? null).toBeNull();
    const extensions = extensionsOf(refused);
    expect(extensions).toMatchObject({
      code: 'RATE_LIMITED',
      scope: 'user',
      measure: 'requests',
      policy: 'user-requests',
    });
    expect(extensions.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(extensions.retryAfterSeconds).toBeLessThanOrEqual(60);
    expect(refused.errors?.[0]?.extensions).not.toHaveProperty('http');
    expect(Number(refused.headers.get('retry-after'))).toBe(extensions.retryAfterSeconds);
    const policy = refused.headers.get('ratelimit-policy') ?? '';
    expect(policy).toContain(`"user-requests";q=${USER_REQUESTS};w=60;qu="request"`);
    expect(policy).toContain(`"company-requests";q=${COMPANY_REQUESTS};w=60`);
    expect(policy).toContain('"user-complexity";q=1000000;w=60');
    expect(refused.headers.get('ratelimit')).toMatch(
      new RegExp(`"user-requests";r=0;t=${extensions.retryAfterSeconds}(,|$)`),
    );
    expect(await counterValue(a, 'crm_rate_limited_total', { scope: 'user', measure: 'requests' })).toBe(
      refusedBefore + 1,
    );
  });

  it('counts WebSocket operations the same way and refuses with the code and retry time', async () => {
    const tenant = await createTenant(a.app);
    const client = wsClient(a.url, `Bearer ${tenant.rep.token}`, { keepOpen: true });
    try {
      // One over HTTP and the rest over the socket: one counter whatever the transport.
      expect((await post(a, CHEAP, tenant.rep.token)).status).toBe(200);
      for (let i = 1; i < USER_REQUESTS; i++) {
        const ok = await wsExecute(client, CHEAP);
        expect(ok.data?.me?.id).toBe(tenant.rep.id);
      }
      const refused = await wsExecute(client, CHEAP);
      expect(refused.data ?? null).toBeNull();
      const extensions = extensionsOf(refused);
      expect(extensions).toMatchObject({ code: 'RATE_LIMITED', scope: 'user', measure: 'requests' });
      expect(extensions.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(refused.errors?.[0]?.extensions).not.toHaveProperty('http');
    } finally {
      await client.dispose();
    }
  });

  it('holds each user to their own quota and all users of a company to the company quota', async () => {
    const tenant = await createTenant(a.app, { extraUsers: 1 });
    const other = await createTenant(a.app);
    const [first, second] = [tenant.rep, tenant.others[0]!];
    for (let i = 0; i < USER_REQUESTS; i++) expect((await post(a, CHEAP, first.token)).status).toBe(200);
    expect(extensionsOf(await post(a, CHEAP, first.token))).toMatchObject({
      code: 'RATE_LIMITED',
      scope: 'user',
    });
    // The second user's own quota is untouched, but the company has COMPANY_REQUESTS - USER_REQUESTS left.
    for (let i = USER_REQUESTS; i < COMPANY_REQUESTS; i++)
      expect((await post(a, CHEAP, second.token)).status).toBe(200);
    const refused = await post(a, CHEAP, second.token);
    expect(refused.status).toBe(429);
    expect(extensionsOf(refused)).toMatchObject({
      code: 'RATE_LIMITED',
      scope: 'company',
      measure: 'requests',
      policy: 'company-requests',
    });
    expect(refused.headers.get('ratelimit')).toMatch(/"company-requests";r=0;t=\d+/);
    // Another company is not affected.
    expect((await post(a, CHEAP, other.rep.token)).status).toBe(200);
  });

  it('shares the counters between gateways through Redis', async () => {
    const tenant = await createTenant(a.app);
    for (let i = 0; i < USER_REQUESTS; i++) {
      const gateway = i % 2 === 0 ? a : b;
      expect((await post(gateway, CHEAP, tenant.rep.token)).status).toBe(200);
    }
    expect((await post(b, CHEAP, tenant.rep.token)).status).toBe(429);
    expect((await post(a, CHEAP, tenant.rep.token)).status).toBe(429);
  });

  it('admits exactly the quota through two gateways that lease points from Redis and spend them in process', async () => {
    // A lease of 25 % of a 40-request quota is 10 requests (less near the end: never more than an eighth of what is
    // left), so most operations are admitted from a lease without asking Redis, on both gateways at once.
    const leasing = {
      RATE_LIMIT_USER_REQUESTS: '40',
      RATE_LIMIT_COMPANY_REQUESTS: '1000',
      RATE_LIMIT_LEASE_PERCENT: '25',
    };
    const [c, d] = [
      await startTestApp(limitsEnv(operatorId, leasing)),
      await startTestApp(limitsEnv(operatorId, leasing)),
    ];
    try {
      const tenant = await createTenant(c.app);
      const open = new Set([c, d]);
      let admitted = 0;
      for (let i = 0; open.size > 0; i++) {
        if (i > 200) throw new Error('never refused');
        const gateway = i % 3 === 0 ? d : c;
        if (!open.has(gateway)) continue;
        const res = await post(gateway, CHEAP, tenant.rep.token);
        if (res.status === 200) admitted++;
        else {
          expect(res.status).toBe(429);
          expect(extensionsOf(res)).toMatchObject({ code: 'RATE_LIMITED', policy: 'user-requests' });
          // Refused while the other gateway may still hold unspent points of its lease: a refusal that is final
          // comes once both are refused.
          open.delete(gateway);
        }
      }
      // Every admitted operation was counted in Redis before it ran: together the gateways never pass the quota,
      // and they leave at most their unspent leases behind (10 % of the quota here, at most an eighth near the end).
      expect(admitted).toBeLessThanOrEqual(40);
      expect(admitted).toBeGreaterThanOrEqual(36);
    } finally {
      await Promise.all([c.stop(), d.stop()]);
    }
  });

  it("shows a company admin the company's limits and usage, and refuses anyone else", async () => {
    const tenant = await createTenant(a.app);
    await post(a, CHEAP, tenant.admin.token);
    const res = await post(a, RATE_LIMITS_QUERY, tenant.admin.token);
    expect(res.status).toBe(200);
    const view = res.data!.rateLimits;
    expect(view).toMatchObject({
      companyId: tenant.companyId,
      enabled: true,
      overridden: false,
      windowSeconds: 60,
    });
    const byName: Record<string, Record<string, unknown>> = Object.fromEntries(
      (view.policies as Array<{ name: string }>).map((policy) => [policy.name, policy]),
    );
    // The earlier request and this query itself.
    expect(byName['user-requests']).toMatchObject({
      scope: 'user',
      measure: 'requests',
      quota: USER_REQUESTS,
      used: 2,
    });
    expect(byName['user-requests']!.remaining).toBe(USER_REQUESTS - 2);
    expect(byName['company-requests']).toMatchObject({ quota: COMPANY_REQUESTS, used: 2 });
    expect(byName['user-complexity']!.used).toBeGreaterThan(2);
    expect(byName['company-complexity']!.used).toBe(byName['user-complexity']!.used);
    expect(byName['user-requests']!.resetSeconds).toBeGreaterThan(0);

    const rep = await post(a, RATE_LIMITS_QUERY, tenant.rep.token);
    expect(rep.data ?? null).toBeNull();
    expect(extensionsOf(rep).code).toBe('FORBIDDEN');
  });

  it("takes a platform operator's override at once on every gateway", async () => {
    const tenant = await createTenant(a.app);
    // Gateway b has read (and cached) the defaults for this company.
    expect((await post(b, CHEAP, tenant.rep.token)).status).toBe(200);
    const set = await post(a, SET_OVERRIDE, operator.token, {
      input: { companyId: tenant.companyId, userRequests: 2 },
    });
    expect(set.errors).toBeUndefined();
    expect(set.data!.setRateLimitOverride).toMatchObject({ companyId: tenant.companyId, overridden: true });
    expect(set.data!.setRateLimitOverride.policies).toContainEqual({ name: 'user-requests', quota: 2 });
    // The count so far stays: one spent, one left under the new quota of 2.
    expect((await post(b, CHEAP, tenant.rep.token)).status).toBe(200);
    const refused = await post(b, CHEAP, tenant.rep.token);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('ratelimit-policy')).toContain('"user-requests";q=2;w=60');
    const [row] = await a.app.dataSource.query<Array<{ user_requests: number; updated_by: string }>>(
      'SELECT user_requests, updated_by FROM company_rate_limits WHERE company_id = $1',
      [tenant.companyId],
    );
    expect(row).toEqual({ user_requests: 2, updated_by: operatorId });

    // Every field null: back to the defaults.
    const cleared = await post(a, SET_OVERRIDE, operator.token, { input: { companyId: tenant.companyId } });
    expect(cleared.data!.setRateLimitOverride.overridden).toBe(false);
    expect(cleared.data!.setRateLimitOverride.policies).toContainEqual({
      name: 'user-requests',
      quota: USER_REQUESTS,
    });
  });

  it('refuses overrides from company admins, for their own company or another, and bad values', async () => {
    const tenant: TestTenant = await createTenant(a.app);
    const other = await createTenant(a.app);
    const own = await post(a, SET_OVERRIDE, tenant.admin.token, {
      input: { companyId: tenant.companyId, userRequests: 1_000_000 },
    });
    expect(extensionsOf(own).code).toBe('FORBIDDEN');
    expect(own.errors?.[0]?.message).toMatch(/Only platform operators/);
    const foreign = await post(a, SET_OVERRIDE, tenant.admin.token, {
      input: { companyId: other.companyId, userRequests: 1 },
    });
    expect(extensionsOf(foreign).code).toBe('FORBIDDEN');
    expect(foreign.errors?.[0]?.message).toMatch(/another company/);
    const bad = await post(a, SET_OVERRIDE, operator.token, {
      input: { companyId: other.companyId, userRequests: 0, windowSeconds: 100_000 },
    });
    expect(extensionsOf(bad).code).toBe('BAD_USER_INPUT');
    expect(bad.errors?.[0]?.message).toMatch(/input\.windowSeconds must be an integer from 1 to 86400/);
    expect(bad.errors?.[0]?.message).toMatch(/input\.userRequests must be an integer from 1 to/);
    const missing = await post(a, SET_OVERRIDE, operator.token, {
      input: { companyId: randomUUID(), userRequests: 1 },
    });
    expect(extensionsOf(missing).code).toBe('NOT_FOUND');
    const rows = await a.app.dataSource.query<unknown[]>(
      'SELECT 1 FROM company_rate_limits WHERE company_id = ANY($1)',
      [[tenant.companyId, other.companyId]],
    );
    expect(rows).toHaveLength(0);
  });

  it('refuses expensive queries once the complexity quota is spent, while cheap ones still fit', async () => {
    // The expensive query's cost, read from the usage the admin's own counters show.
    const probe = await createTenant(a.app);
    const usedComplexity = async () =>
      (
        (await post(a, RATE_LIMITS_QUERY, probe.admin.token)).data!.rateLimits.policies as Array<{
          name: string;
          used: number;
        }>
      ).find((policy) => policy.name === 'user-complexity')!.used;
    const first = await usedComplexity();
    expect((await post(a, EXPENSIVE, probe.admin.token)).status).toBe(200);
    const cost = (await usedComplexity()) - 2 * first;
    expect(cost).toBeGreaterThan(100);

    // Room for two and a half expensive queries; requests are plentiful.
    const quota = Math.floor(cost * 2.5);
    const c = await startTestApp(
      limitsEnv(operatorId, { RATE_LIMIT_USER_REQUESTS: '100', RATE_LIMIT_USER_COMPLEXITY: String(quota) }),
    );
    try {
      const tenant = await createTenant(c.app);
      for (let i = 0; i < 2; i++) expect((await post(c, EXPENSIVE, tenant.rep.token)).status).toBe(200);
      const refused = await post(c, EXPENSIVE, tenant.rep.token);
      expect(refused.status).toBe(429);
      expect(extensionsOf(refused)).toMatchObject({
        code: 'RATE_LIMITED',
        scope: 'user',
        measure: 'complexity',
        policy: 'user-complexity',
      });
      // The refused query spent nothing: what the two left still takes cheap queries.
      expect(refused.headers.get('ratelimit')).toContain(`"user-complexity";r=${quota - 2 * cost};`);
      for (let i = 0; i < 5; i++) expect((await post(c, CHEAP, tenant.rep.token)).status).toBe(200);
      expect((await post(c, EXPENSIVE, tenant.rep.token)).status).toBe(429);
    } finally {
      await c.stop();
    }
  });

  it('fails open with a per-process limiter when Redis stops, counting it, and never answers 500', async () => {
    const port = await freePort();
    let redis: ChildProcess | undefined = await startRedisServer(port);
    const d = await startTestApp(
      limitsEnv(operatorId, { REDIS_URL: `redis://127.0.0.1:${port}/0`, RATE_LIMIT_USER_REQUESTS: '3' }),
    );
    try {
      const tenant = await createTenant(d.app);
      expect((await post(d, CHEAP, tenant.rep.token)).status).toBe(200);
      const failOpenBefore = await counterValue(d, 'crm_rate_limit_fail_open_total');
      await new Promise<void>((resolve) => {
        redis!.once('exit', () => resolve());
        redis!.kill('SIGKILL');
      });
      redis = undefined;
      // Answered from the process's own counter, which holds the same quota from zero.
      for (let i = 0; i < 3; i++) {
        const res = await post(d, CHEAP, tenant.rep.token);
        expect(res.status).toBe(200);
        expect(res.data?.me?.id).toBe(tenant.rep.id);
      }
      expect(await counterValue(d, 'crm_rate_limit_fail_open_total')).toBeGreaterThanOrEqual(
        failOpenBefore + 3,
      );
      const local = await post(d, CHEAP, tenant.rep.token);
      expect(local.status).toBe(429);
      expect(extensionsOf(local).code).toBe('RATE_LIMITED');
    } finally {
      // Redis back before the gateway stops, so its queues and subscribers close cleanly.
      redis ??= await startRedisServer(port);
      await d.stop();
      redis.kill('SIGKILL');
    }
  });

  it('refuses bad settings at boot, naming the variable', () => {
    expect(() => loadConfig({ RATE_LIMIT_USER_REQUESTS: '0' })).toThrow(/RATE_LIMIT_USER_REQUESTS: /);
    expect(() => loadConfig({ RATE_LIMIT_COMPANY_COMPLEXITY: 'lots' })).toThrow(
      /RATE_LIMIT_COMPANY_COMPLEXITY: /,
    );
    expect(() => loadConfig({ RATE_LIMIT_WINDOW_SECONDS: '100000' })).toThrow(/RATE_LIMIT_WINDOW_SECONDS: /);
    expect(() => loadConfig({ RATE_LIMITS: 'sometimes' })).toThrow(/RATE_LIMITS: /);
    expect(() => loadConfig({ RATE_LIMIT_LEASE_PERCENT: '30' })).toThrow(/RATE_LIMIT_LEASE_PERCENT: /);
    expect(loadConfig({ RATE_LIMIT_LEASE_PERCENT: '0' }).rateLimits.leaseShare).toBe(0);
    expect(loadConfig({}).rateLimits).toEqual({
      enabled: true,
      leaseShare: 0.02,
      defaults: {
        windowSeconds: 60,
        userRequests: 600,
        companyRequests: 6000,
        userComplexity: 200_000,
        companyComplexity: 2_000_000,
      },
    });
  });
});
