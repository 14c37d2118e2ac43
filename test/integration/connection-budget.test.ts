import { Client } from 'pg';
import { createTenant, type TestTenant } from '../helpers/fixtures';
import { startTestApp, type TestApp } from '../helpers/test-app';

const BUDGET = 10;
const SEARCH = `query ($input: SearchInput!) { search(input: $input) { total facets { field buckets { key count } } } }`;
const REPORT = `query ($input: ReportInput!) { report(input: $input) { source aggregates { rows { value } } } }`;
const DEAL = `query ($id: ID!) { deal(id: $id) { id name owner { id } account { name } } }`;

describe('one connection budget per process (DATABASE_MAX_CONNECTIONS)', () => {
  const applicationName = `budget-${process.pid}`;
  let t: TestApp;
  let tenant: TestTenant;
  let observer: Client;
  let dealIds: string[];

  beforeAll(async () => {
    const url = new URL(process.env.DATABASE_URL!);
    url.searchParams.set('application_name', applicationName);
    t = await startTestApp({ DATABASE_URL: url.toString(), DATABASE_MAX_CONNECTIONS: String(BUDGET) });
    // Users of their own for the export streams (each user may hold two at once).
    tenant = await createTenant(t.app, { extraUsers: 15 });
    await t.app.dataSource.query(
      `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score)
       SELECT $1, $2, 'B', 'Lead ' || n, (ARRAY['NEW','CONTACTED'])[1 + n % 2], n FROM generate_series(1, 500) AS n`,
      [tenant.companyId, tenant.rep.id],
    );
    dealIds = (
      await t.app.dataSource.query<Array<{ id: string }>>(
        `INSERT INTO deals (company_id, owner_id, name, stage, amount)
         SELECT $1, $2, 'Deal ' || n, 'PROSPECTING', n FROM generate_series(1, 50) AS n RETURNING id`,
        [tenant.companyId, tenant.rep.id],
      )
    ).map((row) => row.id);
    observer = new Client({ connectionString: process.env.DATABASE_URL });
    await observer.connect();
  });
  afterAll(async () => {
    await observer?.end();
    await t?.stop();
  });

  it('splits the budget among the pools (the split the start-up line logs)', () => {
    const plan = t.app.connectionBudget.plan();
    expect(Object.values(plan).reduce((sum, size) => sum + size, 0)).toBe(BUDGET);
    expect(Object.keys(plan)).toEqual([
      'main',
      'search pool',
      'search build pool',
      'export pool',
      'report pool',
      'report rollup pool',
    ]);
    expect(t.app.connectionBudget.describe()).toMatch(
      /^database connections: budget 10 on primary: main \d+, /,
    );
  });

  it('never holds more Postgres connections than the budget under mixed load, and the gauge says what they do', async () => {
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await observer.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
          [applicationName],
        );
        most = Math.max(most, rows[0]!.n);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const token = tenant.rep.token;
    const load = Array.from({ length: 60 }, (_, i) => {
      switch (i % 4) {
        case 0:
          return t.gql(
            SEARCH,
            { input: { entityType: 'LEAD', facets: [{ field: 'status' }], text: `Lead ${i}` } },
            token,
          );
        case 1:
          return t.gql(
            REPORT,
            {
              input: {
                entityType: 'LEAD',
                source: 'LIVE',
                aggregates: [{ name: 'n', type: 'COUNT', dimensions: ['status'] }],
              },
            },
            token,
          );
        case 2:
          return t.gql(DEAL, { id: dealIds[i % dealIds.length]! }, token);
        default:
          return fetch(`${t.url}/exports/stream?entityType=LEAD&format=CSV&fields=id,lastName`, {
            headers: { authorization: `Bearer ${tenant.others[(i - 3) / 4]!.token}` },
          }).then(async (response) => ({ status: response.status, body: await response.text() }));
      }
    });
    const answers = await Promise.all(load);
    sampling = false;
    await sampler;
    expect(answers.flatMap((answer) => ('errors' in answer ? (answer.errors ?? []) : []))).toEqual([]);
    expect(answers.filter((answer) => 'body' in answer && answer.status !== 200)).toEqual([]);
    // The load reached several pools at once, and stayed within the budget.
    expect(most).toBeGreaterThan(3);
    expect(most).toBeLessThanOrEqual(BUDGET);

    const gauge = await t.app.metrics.registry.getSingleMetric('crm_db_connections')!.get();
    const pools = new Set(gauge.values.map((value) => value.labels.pool));
    expect(pools).toEqual(new Set(Object.keys(t.app.connectionBudget.plan())));
    const open = gauge.values.reduce((sum, value) => sum + value.value, 0);
    expect(open).toBeGreaterThan(0);
    expect(open).toBeLessThanOrEqual(BUDGET);
    const sizes = await t.app.metrics.registry.getSingleMetric('crm_db_connections_max')!.get();
    expect(sizes.values.reduce((sum, value) => sum + value.value, 0)).toBe(BUDGET);
  });

  it('refuses to start when explicit pool sizes cannot fit the budget, saying which and by how much', async () => {
    await expect(
      startTestApp({ DATABASE_MAX_CONNECTIONS: '12', DATABASE_POOL_SIZE: '10', SEARCH_DB_POOL_SIZE: '4' }),
    ).rejects.toThrow(
      /^DATABASE_MAX_CONNECTIONS=12 cannot hold this process's database pools: main 10 \(DATABASE_POOL_SIZE\) \+ search pool 4 \(SEARCH_DB_POOL_SIZE\) \+ .* = 20\. Raise DATABASE_MAX_CONNECTIONS to at least 20/,
    );
  });
});
