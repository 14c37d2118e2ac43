import { createTenant, type TestTenant } from '../helpers/fixtures';
import { freePort } from '../helpers/ports';
import { startTestApp, type TestApp } from '../helpers/test-app';

const SEARCH = `query ($input: SearchInput!) { search(input: $input) {
  total facetSource items { ... on Lead { id } }
  facets { field other missing buckets { key count } } } }`;

interface Result {
  total: number;
  facetSource: 'INDEX' | 'LIVE';
  items: Array<{ id: string }>;
  facets: unknown[];
}

/** Sum of the samples of `name` whose labels include every pair in `labels`. */
function sample(exposition: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

const STATUSES = ['NEW', 'CONTACTED', 'QUALIFIED', 'UNQUALIFIED', 'CONVERTED'];

/** The i-th search of the test: filters and sort vary, so no cached window answers it. */
function searchInput(i: number): Record<string, unknown> {
  const filters: Array<Record<string, unknown>> = [{ field: 'score', op: 'GTE', value: i % 37 }];
  if (i % 3 === 1)
    filters.push({ field: 'status', op: 'IN', values: [STATUSES[i % 5], STATUSES[(i + 2) % 5]] });
  return {
    entityType: 'LEAD',
    ...(i % 4 === 2 ? { text: ['ada', 'grace', 'acme', 'lov'][i % 4] } : {}),
    filters,
    facets: [{ field: 'status' }, { field: 'ownerId' }, { field: 'source' }, { field: 'score' }],
    sort: [{ field: i % 2 ? 'score' : 'createdAt', direction: i % 3 ? 'DESC' : 'ASC' }],
    pageSize: 20,
  };
}

describe('search: counting indexes within SEARCH_INDEX_MAX_MB', () => {
  let live: TestApp;
  const apps: TestApp[] = [];
  let tenants: TestTenant[];

  async function search(app: TestApp, token: string, input: Record<string, unknown>): Promise<Result> {
    const res = await app.gql<{ search: Result }>(SEARCH, { input }, token);
    expect(res.errors).toBeUndefined();
    return res.data!.search;
  }

  async function budgeted(megabytes: number): Promise<{ app: TestApp; scrape: () => Promise<string> }> {
    const app = await startTestApp({
      SEARCH_INDEX_MAX_MB: String(megabytes),
      SEARCH_INDEX_BUILD_WAIT_MS: '10000',
      METRICS_PORT: String(await freePort()),
    });
    apps.push(app);
    return { app, scrape: async () => (await fetch(app.app.metricsUrl!)).text() };
  }

  beforeAll(async () => {
    // Its own in-process cache: nothing an indexed gateway cached in Redis can answer for it.
    live = await startTestApp({ SEARCH_INDEX: 'off', REDIS_URL: '' });
    tenants = [await createTenant(live.app), await createTenant(live.app)];
    for (const [n, tenant] of tenants.entries())
      await live.app.dataSource.query(
        `INSERT INTO leads (company_id, owner_id, first_name, last_name, email, company_name, status, source, score,
                            created_at)
         SELECT $1, CASE WHEN i % 3 = 0 THEN $2::uuid ELSE $3::uuid END,
                (ARRAY['Ada', 'Grace', 'Alan', 'Barbara'])[1 + i % 4], (ARRAY['Lovelace', 'Hopper', 'Turing'])[1 + i % 3],
                'lead' || i || '@example.com', (ARRAY['Acme', 'Globex', 'Initech'])[1 + i % 3] || ' ' || (i % 50),
                (ARRAY['NEW','CONTACTED','QUALIFIED','UNQUALIFIED','CONVERTED'])[1 + (i * 7) % 5],
                CASE WHEN i % 4 = 0 THEN NULL ELSE (ARRAY['WEB','REFERRAL','EVENT'])[1 + i % 3] END,
                i * 37 % 101, timestamptz '2025-01-01 00:00:00+00' + make_interval(mins => i * 13)
           FROM generate_series(1, $4::int) AS i`,
        [tenant.companyId, tenant.admin.id, tenant.rep.id, 3000 + n * 300],
      );
  }, 60_000);

  afterAll(async () => {
    for (const app of apps) await app.stop();
    await live?.stop();
  });

  it('keeps the index bytes under a budget smaller than two companies, evicting the least recently used, with every answer as LIVE', async () => {
    // What the two indexes take, built by a gateway with room for both.
    const roomy = await budgeted(64);
    const sizes: number[] = [];
    for (const tenant of tenants)
      sizes.push((await roomy.app.app.services.searchIndexes.rebuild(tenant.companyId, 'LEAD')).bytes());
    const budget = Math.max(...sizes) * 1.5;
    expect(budget).toBeLessThan(sizes[0]! + sizes[1]!);

    const { app, scrape } = await budgeted(budget / (1024 * 1024));
    const logged = jest.spyOn(app.app.logger, 'info');
    const budgetBytes = sample(await scrape(), 'crm_search_index_budget_bytes');
    expect(budgetBytes).toBe(Math.floor(budget));
    const sources: string[] = [];
    let peak = 0;
    for (let i = 0; i < 16; i++) {
      const tenant = tenants[i % 2]!;
      const user = i % 4 < 2 ? tenant.admin : tenant.rep;
      const input = searchInput(i);
      if (i % 4 === 3)
        // A write while the other company's index is held: the next build (or catch-up) must see it.
        await live.app.dataSource.query(
          `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score) VALUES ($1, $2, 'Ada', 'Written', 'NEW', 99)`,
          [tenant.companyId, user.id],
        );
      const [got, expected] = await Promise.all([
        search(app, user.token, input),
        search(live, user.token, input),
      ]);
      expect(expected.facetSource).toBe('LIVE');
      expect({ i, ...got, facetSource: undefined }).toEqual({ i, ...expected, facetSource: undefined });
      sources.push(got.facetSource);
      const exposition = await scrape();
      const bytes = sample(exposition, 'crm_search_index_bytes');
      peak = Math.max(peak, bytes);
      expect({ i, bytes, over: bytes > budgetBytes }).toEqual({ i, bytes, over: false });
      expect(sample(exposition, 'crm_search_indexes', { state: 'held' })).toBe(1);
    }
    const exposition = await scrape();
    // Each search of the other company evicted the one held and built its own (waited for: answered from the index).
    const evictions = sample(exposition, 'crm_search_index_evictions_total', { reason: 'budget' });
    expect(evictions).toBeGreaterThanOrEqual(14);
    // One log line each, naming the company, the type, the bytes and the reason.
    const lines = logged.mock.calls.filter(([, message]) => message === 'search index evicted');
    expect(lines).toHaveLength(evictions);
    for (const [fields] of lines)
      expect(fields).toEqual({
        companyId: expect.stringMatching(new RegExp(`^(${tenants[0]!.companyId}|${tenants[1]!.companyId})$`)),
        type: 'LEAD',
        bytes: expect.any(Number),
        reason: 'budget',
      });
    expect(sources.filter((source) => source === 'INDEX').length).toBeGreaterThanOrEqual(14);
    expect(peak).toBeGreaterThan(Math.min(...sizes) * 0.9);
  });

  it('does not keep an index larger than the whole budget: its searches are answered LIVE, without loading it', async () => {
    const { app, scrape } = await budgeted(0.02);
    const warned = jest.spyOn(app.app.logger, 'warn');
    const before = await scrape();
    for (let i = 0; i < 4; i++) {
      const tenant = tenants[i % 2]!;
      // Searches the first test did not ask (its cached windows and facets would answer them).
      const input = searchInput(100 + i);
      const [got, expected] = await Promise.all([
        search(app, tenant.admin.token, input),
        search(live, tenant.admin.token, input),
      ]);
      expect(got).toEqual(expected);
    }
    const after = await scrape();
    expect(sample(after, 'crm_search_live_total', { reason: 'over_budget' })).toBe(4);
    // Logged once per company, not once per search.
    const lines = warned.mock.calls.filter(([, message]) => String(message).includes('SEARCH_INDEX_MAX_MB'));
    expect(lines.map(([fields]) => (fields as { companyId: string }).companyId).sort()).toEqual(
      tenants.map((tenant) => tenant.companyId).sort(),
    );
    expect(sample(after, 'crm_search_index_bytes')).toBe(0);
    // Refused from the row count before any record was read: no build ran.
    expect(
      sample(after, 'crm_search_index_rebuilds_total') - sample(before, 'crm_search_index_rebuilds_total'),
    ).toBe(0);
  });
});
