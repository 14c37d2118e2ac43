import { Client } from 'pg';
import { createTenant, type TestTenant } from '../helpers/fixtures';
import { startTestApp, type TestApp } from '../helpers/test-app';

const REPORT = `query ($input: ReportInput!) { report(input: $input) {
  entityType source computedAt tookMs aggregates { name type field dimensions rows { dimensions value } } } }`;

interface Row {
  dimensions: Record<string, unknown>;
  value: number | null;
}

/** Seeds deals and leads in two owners' names, spread over stages, amounts and (UTC) month boundaries. */
async function seed(t: TestApp, tenant: TestTenant): Promise<void> {
  const db = t.app.dataSource;
  await db.query(
    `INSERT INTO deals (company_id, owner_id, name, stage, amount, probability, close_date, created_at)
     SELECT $1, CASE WHEN n % 3 = 0 THEN $2::uuid ELSE $3::uuid END, 'Deal ' || n,
            (ARRAY['PROSPECTING','QUALIFICATION','PROPOSAL','NEGOTIATION','CLOSED_WON','CLOSED_LOST'])[1 + n % 6],
            (n * 137 % 10000) + 0.5, n % 100,
            CASE WHEN n % 7 = 0 THEN NULL ELSE date '2026-01-01' + (n * 3 % 300) END,
            timestamptz '2026-01-31 22:00:00+00' + make_interval(hours => n * 5)
       FROM generate_series(1, 240) AS n`,
    [tenant.companyId, tenant.rep.id, tenant.admin.id],
  );
  await db.query(
    `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, source, score, created_at)
     SELECT $1, CASE WHEN n % 4 = 0 THEN $2::uuid ELSE $3::uuid END, 'L', 'Lead ' || n,
            (ARRAY['NEW','CONTACTED','QUALIFIED','UNQUALIFIED','CONVERTED'])[1 + n % 5],
            CASE WHEN n % 9 = 0 THEN NULL ELSE (ARRAY['WEB','REFERRAL','EVENT'])[1 + n % 3] END,
            n % 100, timestamptz '2026-02-28 23:30:00+00' + make_interval(hours => n * 7)
       FROM generate_series(1, 300) AS n`,
    [tenant.companyId, tenant.rep.id, tenant.admin.id],
  );
}

describe('reports (live, under visibility, with a plan cache)', () => {
  let t: TestApp;
  let tenant: TestTenant;

  async function report(token: string, input: Record<string, unknown>) {
    // The live path is what this suite tests; report-rollups.test.ts tests the rollups against it.
    const res = await t.gql(REPORT, { input: { source: 'LIVE', ...input } }, token);
    expect(res.errors).toBeUndefined();
    return res.data!.report as {
      source: string;
      aggregates: Array<{ name: string; rows: Row[] }>;
    };
  }

  /** The reference: plain SQL written here, with the rep's PRIVATE view spelled out as "owner is the rep". */
  async function reference(sql: string, ownerOnly: string | null, params: unknown[] = []): Promise<Row[]> {
    const rows = await t.app.dataSource.query<Array<{ k: Record<string, unknown>; v: string | null }>>(
      sql.replace('$VIS', ownerOnly ? `owner_id = '${ownerOnly}'` : 'true'),
      [tenant.companyId, ...params],
    );
    return rows.map((row) => ({ dimensions: row.k, value: row.v === null ? null : Number(row.v) }));
  }

  beforeAll(async () => {
    // One connection, so the test can see which statements it has prepared.
    t = await startTestApp({ REPORT_DB_POOL_SIZE: '1' });
    tenant = await createTenant(t.app);
    await seed(t, tenant);
    // Another company with the same kind of data: none of it may reach the first company's figures.
    await seed(t, await createTenant(t.app));
  });

  afterAll(() => t?.stop());

  it('answers live, equal to reference SQL, for an admin and for a rep under PRIVATE', async () => {
    for (const [token, owner] of [
      [tenant.admin.token, null],
      [tenant.rep.token, tenant.rep.id],
    ] as const) {
      const deals = await report(token, {
        entityType: 'DEAL',
        aggregates: [
          { name: 'count', type: 'COUNT', dimensions: ['stage'] },
          { name: 'pipeline', type: 'SUM', field: 'amount', dimensions: ['stage', 'closeDate:quarter'] },
          { name: 'avgByOwner', type: 'AVG', field: 'probability', dimensions: ['ownerId'] },
          { name: 'smallest', type: 'MIN', field: 'amount' },
          { name: 'largest', type: 'MAX', field: 'amount' },
        ],
        filters: [{ field: 'stage', op: 'NE', value: 'CLOSED_LOST' }],
      });
      expect(deals.source).toBe('LIVE');
      const byName = Object.fromEntries(deals.aggregates.map((a) => [a.name, a.rows]));
      const where = `company_id = $1 AND $VIS AND stage IS DISTINCT FROM 'CLOSED_LOST'`;
      expect(byName.count).toEqual(
        await reference(
          `SELECT json_build_object('stage', stage) AS k, count(*) AS v FROM deals WHERE ${where} GROUP BY stage ORDER BY stage`,
          owner,
        ),
      );
      expect(byName.pipeline).toEqual(
        await reference(
          `SELECT json_build_object('stage', stage, 'closeDate:quarter', to_char(date_trunc('quarter', close_date), 'YYYY-MM-DD')) AS k,
                  sum(amount) AS v FROM deals WHERE ${where}
            GROUP BY stage, date_trunc('quarter', close_date) ORDER BY stage, date_trunc('quarter', close_date) NULLS LAST`,
          owner,
        ),
      );
      const averages = await reference(
        `SELECT json_build_object('ownerId', owner_id) AS k, avg(probability) AS v FROM deals WHERE ${where} GROUP BY owner_id ORDER BY owner_id`,
        owner,
      );
      expect(byName.avgByOwner!.map((r) => r.dimensions)).toEqual(averages.map((r) => r.dimensions));
      byName.avgByOwner!.forEach((row, i) => expect(row.value).toBeCloseTo(averages[i]!.value!, 9));
      expect(byName.smallest).toEqual(
        await reference(`SELECT '{}'::json AS k, min(amount) AS v FROM deals WHERE ${where}`, owner),
      );
      expect(byName.largest).toEqual(
        await reference(`SELECT '{}'::json AS k, max(amount) AS v FROM deals WHERE ${where}`, owner),
      );
      if (owner) expect(byName.avgByOwner!.map((r) => r.dimensions.ownerId)).toEqual([owner]);
    }
  });

  it('cuts dates into buckets in the given time zone, and honours a date range', async () => {
    const zone = 'America/New_York';
    const leads = await report(tenant.admin.token, {
      entityType: 'LEAD',
      timeZone: zone,
      dateRange: { field: 'createdAt', from: '2026-03-01T05:00:00Z', to: '2026-04-01T04:00:00Z' },
      aggregates: [
        { name: 'byMonthAndStatus', type: 'COUNT', dimensions: ['createdAt:month', 'status'] },
        { name: 'byWeek', type: 'SUM', field: 'score', dimensions: ['createdAt:week'] },
        { name: 'bySource', type: 'COUNT', dimensions: ['source'] },
      ],
    });
    const [byMonth, byWeek, bySource] = leads.aggregates.map((a) => a.rows);
    const range = `company_id = $1 AND created_at >= '2026-03-01T05:00:00Z' AND created_at < '2026-04-01T04:00:00Z'`;
    expect(byMonth).toEqual(
      await reference(
        `SELECT json_build_object('createdAt:month', m, 'status', status) AS k, count(*) AS v
           FROM (SELECT to_char(date_trunc('month', created_at AT TIME ZONE $2), 'YYYY-MM-DD') AS m, status
                   FROM leads WHERE ${range} AND $VIS) x
          GROUP BY m, status ORDER BY m, status`,
        null,
        [zone],
      ),
    );
    expect(byWeek).toEqual(
      await reference(
        `SELECT json_build_object('createdAt:week', w) AS k, sum(score) AS v
           FROM (SELECT to_char(date_trunc('week', created_at AT TIME ZONE $2), 'YYYY-MM-DD') AS w, score
                   FROM leads WHERE ${range} AND $VIS) x
          GROUP BY w ORDER BY w`,
        null,
        [zone],
      ),
    );
    // Missing values are a group of their own, sorted last.
    expect(bySource!.at(-1)!.dimensions).toEqual({ source: null });
    expect(bySource!.reduce((sum, row) => sum + row.value!, 0)).toBe(
      byMonth!.reduce((sum, row) => sum + row.value!, 0),
    );
  });

  it('puts a record in the month of the report zone; a range over a day field holds the same days in every zone', async () => {
    const company = await createTenant(t.app);
    // 02:00 UTC on 1 June is still 31 May in New York.
    await t.app.dataSource.query(
      `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, created_at)
       VALUES ($1, $2, 'L', 'Edge', 'NEW', '2026-06-01T02:00:00Z')`,
      [company.companyId, company.admin.id],
    );
    const month = async (timeZone: string) =>
      (
        await report(company.admin.token, {
          entityType: 'LEAD',
          timeZone,
          aggregates: [{ name: 'n', type: 'COUNT', dimensions: ['createdAt:month'] }],
        })
      ).aggregates[0]!.rows;
    expect(await month('UTC')).toEqual([{ dimensions: { 'createdAt:month': '2026-06-01' }, value: 1 }]);
    expect(await month('America/New_York')).toEqual([
      { dimensions: { 'createdAt:month': '2026-05-01' }, value: 1 },
    ]);
    // A deal closing on 28 February. A day is the same in every zone: a range over the day field closeDate takes
    // days (midnight UTC), and timeZone moves neither the bound nor the deal's day.
    await t.app.dataSource.query(
      `INSERT INTO deals (company_id, owner_id, name, stage, amount, close_date) VALUES ($1, $2, 'Edge', 'PROPOSAL', 1, '2026-02-28')`,
      [company.companyId, company.admin.id],
    );
    const closing = async (timeZone: string, dateRange: Record<string, string>) =>
      t.gql(
        REPORT,
        {
          input: {
            entityType: 'DEAL',
            timeZone,
            dateRange: { field: 'closeDate', ...dateRange },
            aggregates: [{ name: 'n', type: 'COUNT' }],
          },
        },
        company.admin.token,
      );
    const count = async (timeZone: string, dateRange: Record<string, string>) =>
      (await closing(timeZone, dateRange)).data?.report.aggregates[0].rows[0].value as number;
    for (const zone of ['UTC', 'Asia/Tokyo', 'America/New_York', 'Pacific/Kiritimati']) {
      expect(await count(zone, { from: '2026-02-28T00:00:00Z' })).toBe(1);
      expect(await count(zone, { from: '2026-03-01T00:00:00Z' })).toBe(0);
      expect(await count(zone, { to: '2026-03-01T00:00:00Z', from: '2026-02-28T00:00:00Z' })).toBe(1);
      expect(await count(zone, { to: '2026-02-28T00:00:00Z' })).toBe(0);
    }
    // An instant inside a day would mean another day in another zone: refused, naming the bound.
    expect((await closing('Asia/Tokyo', { from: '2026-02-28T15:00:00Z' })).errors?.[0]).toMatchObject({
      extensions: {
        code: 'BAD_USER_INPUT',
        violations: [
          {
            field: 'input.dateRange.from',
            rule: 'must be a day, written as midnight UTC (e.g. 2026-02-28T00:00:00Z), for the day field closeDate',
          },
        ],
      },
    });
  });

  it('prices the whole report: aggregates each under the budget but over it together are refused', async () => {
    const many = Array.from({ length: 20 }, (_, i) => ({
      name: `a${i}`,
      type: 'SUM',
      field: 'amount',
      dimensions: ['stage', 'probability'],
    }));
    const withBudget = async (budget: number, aggregates: unknown[]) => {
      const app = await startTestApp({ REPORT_MAX_COST: String(budget), REPORT_DB_POOL_SIZE: '1' });
      try {
        return await app.gql(REPORT, { input: { entityType: 'DEAL', aggregates } }, tenant.admin.token);
      } finally {
        await app.stop();
      }
    };
    // What one aggregate costs, read from the refusal under a budget of 1.
    const probe = await withBudget(1, many.slice(0, 1));
    const single = Number(/would cost about (\d+)/.exec(probe.errors![0]!.message)![1]);
    expect(single).toBeGreaterThan(1);
    // Three times that: one aggregate passes, twenty of the same (each well under the budget) do not.
    expect((await withBudget(single * 3, many.slice(0, 1))).errors).toBeUndefined();
    const refused = await withBudget(single * 3, many);
    expect(refused.errors?.[0]).toMatchObject({ extensions: { code: 'REPORT_TOO_EXPENSIVE' } });
    expect(Number(/would cost about (\d+)/.exec(refused.errors![0]!.message)![1])).toBeGreaterThan(
      single * 19,
    );
  });

  it('prepares each report shape once and reuses it: the second run is a plan-cache hit on the same statement', async () => {
    const counter = async (result: string) =>
      ((await t.app.metrics.registry.getSingleMetric('crm_report_plan_cache_total')?.get())?.values ?? [])
        .filter((v) => v.labels.result === result)
        .reduce((sum, v) => sum + v.value, 0);
    const input = (stage: string) => ({
      entityType: 'DEAL',
      aggregates: [{ name: 'n', type: 'COUNT', dimensions: ['probability'] }],
      filters: [{ field: 'stage', op: 'EQ', value: stage }],
    });
    const [hits, misses] = [await counter('hit'), await counter('miss')];
    const first = await report(tenant.rep.token, input('PROPOSAL'));
    const prepared = await t.app.services.reports.preparedStatements();
    expect(await counter('miss')).toBe(misses + 1);
    // Another value, same shape: the same prepared statement (a plan-cache hit), no new one.
    const second = await report(tenant.rep.token, input('NEGOTIATION'));
    expect(await counter('hit')).toBe(hits + 1);
    expect(await counter('miss')).toBe(misses + 1);
    expect(await t.app.services.reports.preparedStatements()).toEqual(prepared);
    expect(prepared.some((name) => name.startsWith('report_'))).toBe(true);
    expect(first.aggregates[0]!.rows).not.toEqual(second.aggregates[0]!.rows);
  });

  it('refuses bad input naming the aggregate, field or dimension', async () => {
    const bad = async (input: Record<string, unknown>) => {
      const res = await t.gql(REPORT, { input: { entityType: 'DEAL', ...input } }, tenant.rep.token);
      expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      return res.errors![0]!.message;
    };
    expect(await bad({ aggregates: [{ name: 'x', type: 'SUM', field: 'stage' }] })).toMatch(
      /input\.aggregates\[0\]\.field must be a numeric field of DEAL for SUM/,
    );
    expect(await bad({ aggregates: [{ name: 'x', type: 'AVG' }] })).toMatch(
      /input\.aggregates\[0\]\.field is required for AVG/,
    );
    expect(await bad({ aggregates: [{ name: 'x', type: 'COUNT', dimensions: ['password'] }] })).toMatch(
      /input\.aggregates\[0\]\.dimensions\[0\] must be one of/,
    );
    expect(await bad({ aggregates: [{ name: 'x', type: 'COUNT', dimensions: ['stage:month'] }] })).toMatch(
      /stage is not a date: it cannot be cut into months/,
    );
    expect(
      await bad({ aggregates: [{ name: 'x', type: 'COUNT', dimensions: ['closeDate:fortnight'] }] }),
    ).toMatch(/the bucket must be one of day, week, month, quarter, year/);
    expect(
      await bad({
        aggregates: [
          { name: 'x', type: 'COUNT' },
          { name: 'x', type: 'COUNT' },
        ],
      }),
    ).toMatch(/input\.aggregates\[1\]\.name "x" is the name of another aggregate/);
    expect(
      await bad({ aggregates: Array.from({ length: 21 }, (_, i) => ({ name: `a${i}`, type: 'COUNT' })) }),
    ).toMatch(/input\.aggregates must hold 1 to 20 aggregates/);
    expect(
      await bad({
        aggregates: [
          {
            name: 'x',
            type: 'COUNT',
            dimensions: ['stage', 'ownerId', 'accountId', 'probability', 'amount', 'closeDate:year'],
          },
        ],
      }),
    ).toMatch(/must hold at most 5 dimensions/);
    expect(await bad({ aggregates: [{ name: 'x', type: 'COUNT' }], timeZone: 'Mars/Olympus' })).toMatch(
      /input\.timeZone must be an IANA time zone/,
    );
    expect(
      await bad({
        aggregates: [{ name: 'x', type: 'COUNT' }],
        filters: [{ field: 'amount', op: 'RANGE', from: 10, to: 1 }],
      }),
    ).toMatch(/input\.filters\[0\]\.from must not be greater than to/);
  });
});

describe('reports: the cost budget and the statement timeout', () => {
  it('refuses a report over the cost budget before running anything', async () => {
    const t = await startTestApp({ REPORT_MAX_COST: '1', REPORT_DB_POOL_SIZE: '1' });
    try {
      const tenant = await createTenant(t.app);
      const res = await t.gql(
        REPORT,
        { input: { entityType: 'LEAD', aggregates: [{ name: 'n', type: 'COUNT', dimensions: ['status'] }] } },
        tenant.admin.token,
      );
      expect(res.errors?.[0]).toMatchObject({
        message: expect.stringMatching(
          /would cost about \d+ \(the budget is 1\): narrow it with a filter or a date range/,
        ),
        extensions: { code: 'REPORT_TOO_EXPENSIVE' },
      });
      // Priced by EXPLAIN only: no statement was prepared, so none ran.
      expect(await t.app.services.reports.preparedStatements()).toEqual([]);
    } finally {
      await t.stop();
    }
  });

  it('stops a live report at the statement timeout with a clear error', async () => {
    // The statement is made slow by a lock it must wait for, not by data and a machine's speed: the same report first
    // runs (planned and priced, so no EXPLAIN is left to wait), then waits behind an ACCESS EXCLUSIVE lock on leads.
    const t = await startTestApp({ REPORT_STATEMENT_TIMEOUT_MS: '300', REPORT_DB_POOL_SIZE: '1' });
    const locker = new Client({ connectionString: process.env.TEST_DATABASE_URL });
    try {
      const tenant = await createTenant(t.app);
      await t.app.dataSource.query(
        `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score)
         SELECT $1, $2, 'L', 'Lead ' || n, 'NEW', n % 100 FROM generate_series(1, 20) AS n`,
        [tenant.companyId, tenant.admin.id],
      );
      const input = {
        entityType: 'LEAD',
        source: 'LIVE',
        aggregates: [{ name: 'byScore', type: 'COUNT', dimensions: ['score', 'status'] }],
      };
      const first = await t.gql(REPORT, { input }, tenant.admin.token);
      expect(first.errors).toBeUndefined();
      await locker.connect();
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE leads IN ACCESS EXCLUSIVE MODE');
      const started = performance.now();
      const res = await t.gql(REPORT, { input }, tenant.admin.token);
      expect(res.errors?.[0]).toMatchObject({
        message: expect.stringMatching(/The report took longer than 300 ms and was stopped: narrow it/),
        extensions: { code: 'REPORT_TIMEOUT' },
      });
      expect(performance.now() - started).toBeGreaterThanOrEqual(290);
      expect(t.app.services.reports.cachedShapes).toBe(1);
      await locker.query('ROLLBACK');
      // The pool's one connection is usable again at once.
      const after = await t.gql(REPORT, { input }, tenant.admin.token);
      expect(after.errors).toBeUndefined();
    } finally {
      await locker.end().catch(() => undefined);
      await t.stop();
    }
  });
});
