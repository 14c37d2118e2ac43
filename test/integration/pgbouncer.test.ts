import { Client, Pool } from 'pg';
import { startPgBouncer, type PgBouncer } from '../../bench/cluster/pgbouncer';
import { ConnectionBudget } from '../../src/platform/db/connection-budget';
import { createPoolOpener } from '../../src/platform/db/pool-opener';
import { PoolerPolicy } from '../../src/platform/db/pooler';
import { Lifecycle } from '../../src/platform/lifecycle/lifecycle';
import { createLogger } from '../../src/platform/logging/logger';
import { createTenant, type TestTenant } from '../helpers/fixtures';
import { startTestApp, type TestApp } from '../helpers/test-app';

/*
 * A real PgBouncer 1.18 (Debian's), started here in transaction mode in front of the test database: named prepared
 * statements, startup parameters and session state do not survive it. Not skipped when pgbouncer is missing: the
 * test setup installs it where it can, and otherwise this fails saying how to install it.
 */

const logger = createLogger({ level: 'silent', name: 'test' });
const SEARCH = `query ($input: SearchInput!) { search(input: $input) {
  total facetSource items { ... on Lead { id } } facets { field buckets { key count } } } }`;
const REPORT = `query ($input: ReportInput!) { report(input: $input) {
  source aggregates { name source rollup rows { dimensions value } } } }`;
const DEAL = `query ($id: ID!) { deal(id: $id) { id name amount stage owner { id } account { id name } } }`;
const DEALS = `{ deals(pageSize: 50, sortBy: "amount") { total items { id name amount account { name } } } }`;

async function seed(t: TestApp, tenant: TestTenant): Promise<string[]> {
  const db = t.app.dataSource;
  const [account] = await db.query<[{ id: string }]>(
    `INSERT INTO accounts (company_id, owner_id, name) VALUES ($1, $2, 'Pooled Account') RETURNING id`,
    [tenant.companyId, tenant.rep.id],
  );
  const deals = await db.query<Array<{ id: string }>>(
    `INSERT INTO deals (company_id, owner_id, account_id, name, stage, amount)
     SELECT $1, CASE WHEN n % 3 = 0 THEN $3::uuid ELSE $2::uuid END, $4, 'Deal ' || n,
            (ARRAY['PROSPECTING','PROPOSAL','NEGOTIATION'])[1 + n % 3], n * 10
       FROM generate_series(1, 60) AS n RETURNING id`,
    [tenant.companyId, tenant.rep.id, tenant.admin.id, account.id],
  );
  await db.query(
    `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score)
     SELECT $1, $2, 'Pooled', 'Lead ' || n, (ARRAY['NEW','CONTACTED','QUALIFIED'])[1 + n % 3], n
       FROM generate_series(1, 40) AS n`,
    [tenant.companyId, tenant.rep.id],
  );
  return deals.map((deal) => deal.id);
}

/** Client connections PgBouncer holds for one application_name (its admin console's SHOW CLIENTS). */
async function bouncerClients(bouncer: PgBouncer, applicationName: string): Promise<number> {
  const admin = new Client({ connectionString: bouncer.adminUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ application_name: string }>('SHOW CLIENTS');
    return rows.filter((row) => row.application_name === applicationName).length;
  } finally {
    await admin.end();
  }
}

describe('a gateway through PgBouncer in transaction mode', () => {
  const applicationName = `pooled-${process.pid}`;
  let bouncer: PgBouncer;
  let direct: TestApp;
  let pooled: TestApp;
  let tenant: TestTenant;
  let dealIds: string[];

  beforeAll(async () => {
    bouncer = await startPgBouncer({ upstreamUrl: process.env.DATABASE_URL!, poolSize: 10 });
    const through = new URL(bouncer.url);
    through.searchParams.set('application_name', applicationName);
    // In-process jobs: the pooled gateway runs its own exports, through PgBouncer.
    direct = await startTestApp({ REDIS_URL: '' });
    pooled = await startTestApp({
      REDIS_URL: '',
      DATABASE_URL: through.toString(),
      DATABASE_MAX_CONNECTIONS: '12',
    });
    tenant = await createTenant(direct.app);
    dealIds = await seed(direct, tenant);
  });
  afterAll(async () => {
    await pooled?.stop();
    await direct?.stop();
    await bouncer?.stop();
  });

  it('is detected at start: statements run unnamed; a direct gateway keeps them named', () => {
    expect(pooled.app.pooler.transactionPooling).toBe(true);
    expect(pooled.app.pooler.namedStatements).toBe(false);
    expect(direct.app.pooler.transactionPooling).toBe(false);
    expect(direct.app.pooler.namedStatements).toBe(true);
  });

  it('serves records and single reads (the prepared path) as the direct gateway does, many at once', async () => {
    for (const token of [tenant.rep.token, tenant.admin.token]) {
      const list = await pooled.gql(DEALS, {}, token);
      expect(list.errors).toBeUndefined();
      expect(list.data).toEqual((await direct.gql(DEALS, {}, token)).data);
    }
    const reads = await Promise.all(
      [...dealIds, ...dealIds].map((id) => pooled.gql(DEAL, { id }, tenant.rep.token)),
    );
    expect(reads.flatMap((read) => read.errors ?? [])).toEqual([]);
    const expected = await Promise.all(dealIds.map((id) => direct.gql(DEAL, { id }, tenant.rep.token)));
    expect(reads.slice(0, dealIds.length).map((read) => read.data)).toEqual(
      expected.map((read) => read.data),
    );
    // The rep sees their own deals, not the admin's third.
    expect(reads.filter((read) => read.data?.deal).length).toBe(2 * 40);
  });

  it('answers a search, a live report and a rollup report as the direct gateway does', async () => {
    const search = {
      input: {
        entityType: 'LEAD',
        facets: [{ field: 'status' }, { field: 'score', edges: [10, 20] }],
        pageSize: 5,
      },
    };
    const searched = await pooled.gql(SEARCH, search, tenant.rep.token);
    expect(searched.errors).toBeUndefined();
    expect(searched.data!.search.total).toBe(40);
    expect(searched.data!.search.facets).toEqual(
      (await direct.gql(SEARCH, search, tenant.rep.token)).data!.search.facets,
    );
    for (const source of ['LIVE', 'MATERIALIZED']) {
      const input = {
        input: {
          entityType: 'DEAL',
          source,
          aggregates: [{ name: 'sum', type: 'SUM', field: 'amount', dimensions: ['stage'] }],
        },
      };
      const report = await pooled.gql(REPORT, input, tenant.rep.token);
      expect(report.errors).toBeUndefined();
      expect(report.data).toEqual((await direct.gql(REPORT, input, tenant.rep.token)).data);
      expect(report.data!.report.source).toBe(source);
    }
  });

  it('runs an export job and the direct export stream', async () => {
    const started = await pooled.gql(
      `mutation($input: StartExportInput!) { startExport(input: $input) { id } }`,
      { input: { entityType: 'LEAD', format: 'CSV', compression: 'NONE', fields: ['id', 'lastName'] } },
      tenant.rep.token,
    );
    expect(started.errors).toBeUndefined();
    const id = started.data!.startExport.id as string;
    let job: Record<string, unknown> | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
      const res = await pooled.gql(
        `query($id: ID!) { exportJob(id: $id) { status rowsExported error } }`,
        { id },
        tenant.rep.token,
      );
      job = res.data?.exportJob as Record<string, unknown>;
      if (job?.status === 'COMPLETED' || job?.status === 'FAILED') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(job).toEqual({ status: 'COMPLETED', rowsExported: 40, error: null });
    const stream = await fetch(`${pooled.url}/exports/stream?entityType=DEAL&format=CSV&fields=id,amount`, {
      headers: { authorization: `Bearer ${tenant.rep.token}` },
    });
    expect(stream.status).toBe(200);
    expect((await stream.text()).trim().split('\n')).toHaveLength(1 + 40);
  });

  it('runs audit maintenance among other traffic and leaves no advisory lock behind on any server session', async () => {
    // Other clients take the server sessions PgBouncer frees between the maintenance's statements: a session lock
    // (pg_advisory_lock ... pg_advisory_unlock) would be taken on one session and released on another.
    const traffic = Promise.all(
      Array.from({ length: 5 }, async () => {
        for (let i = 0; i < 8; i++) await pooled.gql(DEAL, { id: dealIds[i]! }, tenant.rep.token);
      }),
    );
    await Promise.all([
      pooled.app.services.auditMaintenance.run(),
      pooled.app.services.auditMaintenance.run(),
    ]);
    await traffic;
    const [{ n }] = await direct.app.dataSource.query<[{ n: number }]>(
      `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1`,
      [0x41554449],
    );
    expect(n).toBe(0);
  });

  it("keeps the process's client connections within its budget", async () => {
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        i % 3 === 0
          ? pooled.gql(DEAL, { id: dealIds[i]! }, tenant.rep.token)
          : i % 3 === 1
            ? pooled.gql(
                REPORT,
                {
                  input: {
                    entityType: 'DEAL',
                    source: 'LIVE',
                    aggregates: [{ name: 'n', type: 'COUNT', dimensions: ['stage'] }],
                  },
                },
                tenant.admin.token,
              )
            : pooled.gql(DEALS, {}, tenant.rep.token),
      ),
    );
    const clients = await bouncerClients(bouncer, applicationName);
    expect(clients).toBeGreaterThan(0);
    expect(clients).toBeLessThanOrEqual(12);
  });
});

describe('pools and statements behind PgBouncer (transaction mode)', () => {
  let bouncer: PgBouncer;
  const lifecycle = new Lifecycle(logger);

  beforeAll(async () => {
    bouncer = await startPgBouncer({ upstreamUrl: process.env.DATABASE_URL!, poolSize: 5 });
  });
  afterAll(async () => {
    await lifecycle.stop(5000);
    await bouncer?.stop();
  });

  /** A and B on PgBouncer: A's named statement is prepared on the session B then holds in a transaction. */
  async function namedAfterItsSessionMoved(run: (client: Client) => Promise<unknown>): Promise<unknown> {
    const a = new Client({ connectionString: bouncer.url });
    const b = new Client({ connectionString: bouncer.url });
    await a.connect();
    await b.connect();
    try {
      await run(a);
      await b.query('BEGIN');
      await b.query('SELECT 1');
      return await run(a).then(
        (value) => value,
        (error: Error) => error,
      );
    } finally {
      await b.query('ROLLBACK').catch(() => undefined);
      await Promise.all([a.end(), b.end()]);
    }
  }

  it('makes a named statement fail once its session moved (the problem), and the fallback runs it unnamed', async () => {
    const named = { name: 'crm_pooler_test', text: 'SELECT $1::int + 1 AS n', values: [1] };
    const failure = await namedAfterItsSessionMoved((client) => client.query(named));
    expect(failure).toMatchObject({
      code: '26000',
      message: 'prepared statement "crm_pooler_test" does not exist',
    });

    const policy = new PoolerPolicy({
      transactionPooling: false,
      namedStatements: true,
      fallback: true,
      logger,
    });
    expect(policy.namedStatements).toBe(true);
    const answer = await namedAfterItsSessionMoved((client) =>
      policy.run((useName) =>
        client.query(useName ? { ...named, name: 'crm_pooler_test_2' } : named.text, named.values),
      ),
    );
    expect((answer as { rows: unknown[] }).rows).toEqual([{ n: 2 }]);
    expect(policy.namedStatements).toBe(false);
    expect(policy.transactionPooling).toBe(true);
  });

  it("applies a pool's statement timeout and settings per transaction (PgBouncer refuses them at connect)", async () => {
    const refused = new Client({ connectionString: bouncer.url, statement_timeout: 100 });
    await expect(refused.connect()).rejects.toThrow('unsupported startup parameter: statement_timeout');

    const budget = new ConnectionBudget({
      server: 'primary',
      max: 4,
      claims: [
        { name: 'timed', weight: 2 },
        { name: 'plain', weight: 2 },
      ],
    });
    const open = createPoolOpener({ url: bouncer.url, logger, lifecycle, budget, transactionPooling: true });
    const timed = open('timed', {
      statementTimeoutMs: 200,
      settings: { max_parallel_workers_per_gather: 0 },
    });
    const plain: Pool = open('plain');
    await expect(timed.query('SELECT pg_sleep(2)')).rejects.toMatchObject({ code: '57014' });
    const { rows } = await timed.query<{ setting: string }>(
      "SELECT current_setting('max_parallel_workers_per_gather') AS setting",
    );
    expect(rows).toEqual([{ setting: '0' }]);
    // Nothing leaked into the server sessions the other clients of PgBouncer get.
    const others = await Promise.all(
      Array.from({ length: 4 }, () =>
        plain.query<{ timeout: string; workers: string }>(
          "SELECT current_setting('statement_timeout') AS timeout, current_setting('max_parallel_workers_per_gather') AS workers",
        ),
      ),
    );
    expect(new Set(others.map((other) => other.rows[0]!.timeout))).toEqual(new Set(['0']));
    expect(others.every((other) => other.rows[0]!.workers !== '0')).toBe(true);
  });
});
