import { buildSharingOrg, type SharingOrg } from '../helpers/sharing-org';
import { spawnBuilt, testProcessEnv, type SpawnedProcess } from '../helpers/spawn-gateway';
import { startTestApp, type TestApp } from '../helpers/test-app';

type Entity = 'LEAD' | 'DEAL' | 'ACCOUNT';
type UserName = 'admin' | 'mgr' | 'rep1' | 'rep2' | 'sup';

const SEARCH = `query ($input: SearchInput!) { search(input: $input) {
  total page pageSize tookMs facetSource window endCursor hasNextPage
  items { ... on Lead { id } ... on Deal { id owner { id } account { id } } ... on Account { id } }
  facets { field type other missing buckets { key label from to count } } } }`;

interface Bucket {
  key: string;
  label: string;
  from: string | null;
  to: string | null;
  count: number;
}
interface Facet {
  field: string;
  type: string;
  other: number;
  missing: number;
  buckets: Bucket[];
}
interface Result {
  total: number;
  facetSource: 'INDEX' | 'LIVE';
  window: 'HIT' | 'MISS';
  endCursor: string | null;
  hasNextPage: boolean;
  items: Array<{ id: string }>;
  facets: Facet[];
}

/** What the test knows of each table, written out here rather than read from the code under test. */
const TABLE: Record<Entity, string> = { LEAD: 'leads', DEAL: 'deals', ACCOUNT: 'accounts' };
const COLUMN: Record<string, string> = {
  ownerId: 'owner_id',
  accountId: 'account_id',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  lastName: 'last_name',
  email: 'email',
  companyName: 'company_name',
  status: 'status',
  source: 'source',
  industry: 'industry',
  score: 'score',
  estimatedValue: 'estimated_value',
  name: 'name',
  stage: 'stage',
  amount: 'amount',
  probability: 'probability',
  closeDate: 'close_date',
  country: 'country',
  annualRevenue: 'annual_revenue',
  employees: 'employees',
};
const DOCUMENT: Record<Entity, string> = {
  LEAD: `to_tsvector('simple', coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || translate(coalesce(email, ''), '@.', '  ') || ' ' || coalesce(company_name, '') || ' ' || coalesce(description, ''))`,
  DEAL: `to_tsvector('simple', coalesce(name, ''))`,
  ACCOUNT: `to_tsvector('simple', coalesce(name, ''))`,
};
const SORTS: Record<Entity, string[]> = {
  LEAD: ['createdAt', 'lastName', 'status', 'score', 'estimatedValue'],
  DEAL: ['createdAt', 'name', 'stage', 'amount', 'closeDate'],
  ACCOUNT: ['createdAt', 'name', 'annualRevenue', 'employees'],
};
const WORDS: Record<Entity, string[]> = {
  LEAD: ['ada', 'grace', 'acme', 'glo', 'urgent', 'ñan', 'example', 'xav 1', 'ada lov', 'zed'],
  DEAL: ['renewal', 'pilot', 'exp', 'big'],
  ACCOUNT: ['acme', 'globex', 'init'],
};
const STATUSES = ['NEW', 'CONTACTED', 'QUALIFIED', 'UNQUALIFIED', 'CONVERTED'];
const STAGES = ['PROSPECTING', 'QUALIFICATION', 'PROPOSAL', 'NEGOTIATION', 'CLOSED_WON', 'CLOSED_LOST'];
const INDUSTRIES = ['TECHNOLOGY', 'FINANCE', 'RETAIL', 'HEALTHCARE'];
const ZONES = ['UTC', 'America/New_York', 'Asia/Kolkata', 'Europe/Berlin'];

/** mulberry32: the same random searches on every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Condition {
  field: string;
  /** The reference's own SQL for the condition, over bare columns, with `?` for each parameter in order. */
  sql: string;
  params: unknown[];
}

interface RandomSearch {
  input: Record<string, any>;
  conditions: Condition[];
  text: string | null;
}

function randomSearch(
  random: () => number,
  entity: Entity,
  owners: string[],
  accounts: string[],
): RandomSearch {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const filters: Array<Record<string, unknown>> = [];
  const conditions: Condition[] = [];
  const add = (filter: Record<string, unknown>, sql: string, params: unknown[]) => {
    filters.push(filter);
    conditions.push({ field: filter.field as string, sql, params });
  };
  const choices: Array<() => void> = [
    () => {
      const values = [pick(owners), pick(owners)];
      add({ field: 'ownerId', op: 'IN', values }, 'owner_id = ANY(?::uuid[])', [values]);
    },
    () => {
      const from = `2025-0${1 + Math.floor(random() * 6)}-1${Math.floor(random() * 9)}T0${Math.floor(random() * 9)}:30:00Z`;
      add({ field: 'createdAt', op: 'GTE', value: from }, 'created_at >= ?::timestamptz', [from]);
    },
  ];
  if (entity === 'LEAD')
    choices.push(
      () => {
        const value = pick(STATUSES);
        add({ field: 'status', op: 'EQ', value }, 'status = ?', [value]);
      },
      () => {
        const values = [pick(STATUSES), pick(STATUSES)];
        add({ field: 'status', op: 'IN', values }, 'status = ANY(?::text[])', [values]);
      },
      () => {
        const value = pick(INDUSTRIES);
        add({ field: 'industry', op: 'NE', value }, 'industry IS DISTINCT FROM ?', [value]);
      },
      () => {
        const from = Math.floor(random() * 50);
        const to = from + Math.floor(random() * 50);
        add({ field: 'score', op: 'RANGE', from, to }, 'score BETWEEN ? AND ?', [from, to]);
      },
      () => add({ field: 'industry', op: 'IS_NULL', value: true }, 'industry IS NULL', []),
      () => {
        const value = pick(['a', 'g', 'x']);
        add({ field: 'email', op: 'PREFIX', value }, 'lower(email) LIKE ?', [`${value}%`]);
      },
      () => {
        const value = pick(['Ac', 'gl', 'I']);
        add({ field: 'companyName', op: 'PREFIX', value }, 'lower(company_name) LIKE ?', [
          `${value.toLowerCase()}%`,
        ]);
      },
    );
  if (entity === 'DEAL')
    choices.push(
      () => {
        const values = [pick(STAGES), pick(STAGES), pick(STAGES)];
        add({ field: 'stage', op: 'IN', values }, 'stage = ANY(?::text[])', [values]);
      },
      () => {
        const value = 100 + Math.floor(random() * 5000);
        add({ field: 'amount', op: 'LTE', value }, 'amount <= ?::numeric', [value]);
      },
      () => {
        const from = `2025-${String(1 + Math.floor(random() * 12)).padStart(2, '0')}-10`;
        add(
          { field: 'closeDate', op: 'RANGE', from, to: '2026-12-31' },
          'close_date BETWEEN ?::date AND ?::date',
          [from, '2026-12-31'],
        );
      },
      () => {
        const value = pick(accounts);
        add({ field: 'accountId', op: 'EQ', value }, 'account_id = ?::uuid', [value]);
      },
      () => add({ field: 'accountId', op: 'IS_NULL', value: false }, 'account_id IS NOT NULL', []),
      () => {
        const value = pick([10, 50, 90]);
        add({ field: 'probability', op: 'GTE', value }, 'probability >= ?', [value]);
      },
    );
  if (entity === 'ACCOUNT')
    choices.push(
      () => {
        const values = [pick(['US', 'DE', 'FR', 'JP']), pick(['US', 'DE'])];
        add({ field: 'country', op: 'IN', values }, 'country = ANY(?::text[])', [values]);
      },
      () => {
        const value = pick([50, 500, 5000]);
        add({ field: 'employees', op: 'GTE', value }, 'employees >= ?', [value]);
      },
      () => {
        const value = pick(INDUSTRIES);
        add({ field: 'industry', op: 'EQ', value }, 'industry = ?', [value]);
      },
    );
  const filterCount = Math.floor(random() * 3);
  for (let i = 0; i < filterCount; i++) pick(choices)();
  const text = random() < 0.35 ? pick(WORDS[entity]) : null;
  const sortCount = 1 + Math.floor(random() * 2);
  const sortFields = [...SORTS[entity]].sort(() => random() - 0.5).slice(0, sortCount);
  const sort = sortFields.map((field) => ({ field, direction: random() < 0.5 ? 'ASC' : 'DESC' }));
  const facets: Array<Record<string, unknown>> = [{ field: 'ownerId', size: 3 }];
  const zone = pick(ZONES);
  if (entity === 'LEAD')
    facets.push(
      { field: 'status' },
      { field: 'industry', size: 2 },
      { field: 'score', edges: [10, 30, 60] },
      { field: 'createdAt', interval: pick(['DAY', 'WEEK', 'MONTH', 'QUARTER']), timeZone: zone },
    );
  if (entity === 'DEAL')
    facets.push(
      { field: 'stage' },
      { field: 'accountId', size: 2 },
      { field: 'amount' },
      { field: 'closeDate', interval: pick(['WEEK', 'MONTH', 'QUARTER']) },
      { field: 'createdAt', interval: 'MONTH', timeZone: zone },
    );
  if (entity === 'ACCOUNT')
    facets.push({ field: 'country' }, { field: 'industry' }, { field: 'employees', edges: [100, 1000] });
  const pageSize = 2 + Math.floor(random() * 6);
  const page = random() < 0.2 ? 11 + Math.floor(random() * 3) : 1 + Math.floor(random() * 3);
  return {
    input: { entityType: entity, text, filters, sort, facets, page, pageSize },
    conditions,
    text,
  };
}

describe('search: exact per-user results and facets, from the index and from SQL', () => {
  let t: TestApp;
  let live: TestApp;
  let other: SharingOrg;
  let org: SharingOrg;
  let owners: string[];
  let accounts: string[];
  const random = prng(20261129);

  async function search(token: string, input: Record<string, unknown>, url = t.url): Promise<Result> {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: SEARCH, variables: { input } }),
    });
    const body = (await response.json()) as { data?: { search: Result }; errors?: unknown };
    expect(body.errors).toBeUndefined();
    return body.data!.search;
  }

  async function gql(query: string, token: string, variables: Record<string, unknown> = {}) {
    const res = await t.gql(query, variables, token);
    expect(res.errors).toBeUndefined();
    return res.data!;
  }

  /** The ids a user may read, from the record list API (sharing's own path, tested on its own). */
  async function visibleIds(user: UserName, entity: Entity): Promise<string[]> {
    const plural = { LEAD: 'leads', DEAL: 'deals', ACCOUNT: 'accounts' }[entity];
    const ids: string[] = [];
    for (let page = 1; ; page++) {
      const data = await gql(
        `{ ${plural}(page: ${page}, pageSize: 200) { items { id } } }`,
        org.users[user].token,
      );
      const items = (data[plural] as { items: Array<{ id: string }> }).items;
      ids.push(...items.map((item) => item.id));
      if (items.length < 200) return ids;
    }
  }

  /** WHERE of the reference: the visible ids, the text, and every condition except those on `except`. */
  function referenceWhere(
    spec: RandomSearch,
    ids: string[],
    except?: string,
  ): { sql: string; params: unknown[] } {
    const params: unknown[] = [org.companyId, ids];
    const parts = ['company_id = $1', 'id = ANY($2::uuid[])'];
    if (spec.text) {
      params.push(
        spec.text
          .split(' ')
          .map((word) => `${word}:*`)
          .join(' & '),
      );
      parts.push(`${DOCUMENT[spec.input.entityType as Entity]} @@ to_tsquery('simple', $${params.length})`);
    }
    for (const condition of spec.conditions) {
      if (condition.field === except) continue;
      let sql = condition.sql;
      for (const value of condition.params) {
        params.push(value);
        sql = sql.replace('?', `$${params.length}`);
      }
      parts.push(sql);
    }
    return { sql: parts.join(' AND '), params };
  }

  async function expectMatchesReference(spec: RandomSearch, user: UserName, result: Result, label: string) {
    const entity = spec.input.entityType as Entity;
    const table = TABLE[entity];
    const ids = await visibleIds(user, entity);
    const db = t.app.dataSource;
    const where = referenceWhere(spec, ids);
    const [{ n }] = await db.query<[{ n: number }]>(
      `SELECT count(*)::int AS n FROM ${table} WHERE ${where.sql}`,
      where.params,
    );
    expect({ label, total: result.total }).toEqual({ label, total: n });
    const sort = spec.input.sort as Array<{ field: string; direction: string }>;
    const order = sort.map((s) => {
      const column = COLUMN[s.field]!;
      const collated = ['lastName', 'status', 'name', 'stage'].includes(s.field)
        ? `${column} COLLATE "C"`
        : column;
      return `${collated} ${s.direction} NULLS LAST`;
    });
    const offset = (spec.input.page - 1) * spec.input.pageSize;
    const rows = await db.query<Array<{ id: string }>>(
      `SELECT id FROM ${table} WHERE ${where.sql} ORDER BY ${order.join(', ')}, id ${sort.at(-1)!.direction}
        LIMIT ${spec.input.pageSize} OFFSET ${offset}`,
      where.params,
    );
    expect({ label, items: result.items.map((i) => i.id) }).toEqual({ label, items: rows.map((r) => r.id) });
    for (const facet of spec.input.facets as Array<Record<string, any>>) {
      const got = result.facets.find((f) => f.field === facet.field)!;
      const own = referenceWhere(spec, ids, facet.field);
      const column = COLUMN[facet.field]!;
      const at = `${label} facet ${facet.field}`;
      if (['ownerId', 'status', 'industry', 'stage', 'accountId', 'country'].includes(facet.field)) {
        const counts = await db.query<Array<{ k: string | null; n: number }>>(
          `SELECT ${column}::text AS k, count(*)::int AS n FROM ${table} WHERE ${own.sql} GROUP BY 1`,
          own.params,
        );
        const missing = counts.find((c) => c.k === null)?.n ?? 0;
        const ranked = counts.filter((c) => c.k !== null).sort((a, b) => b.n - a.n || (a.k! < b.k! ? -1 : 1));
        const size = facet.size ?? 10;
        expect({
          at,
          buckets: got.buckets.map((b) => [b.key, b.count]),
          other: got.other,
          missing: got.missing,
        }).toEqual({
          at,
          buckets: ranked.slice(0, size).map((c) => [c.k, c.n]),
          other: ranked.slice(size).reduce((sum, c) => sum + c.n, 0),
          missing,
        });
        if (!spec.conditions.some((c) => c.field === facet.field))
          expect(got.buckets.reduce((sum, b) => sum + b.count, 0) + got.other + got.missing).toBe(
            result.total,
          );
      } else if (facet.interval || facet.field === 'createdAt' || facet.field === 'closeDate') {
        const local =
          facet.field === 'closeDate'
            ? 'close_date::timestamp'
            : `(created_at AT TIME ZONE '${facet.timeZone ?? 'UTC'}')`;
        const unit = (facet.interval ?? 'MONTH').toLowerCase();
        const step = unit === 'quarter' ? '3 months' : `1 ${unit}`;
        const zone = facet.timeZone ?? 'UTC';
        // Where a bucket begins and the next one begins, as instants in the zone (days for closeDate).
        const bounds =
          facet.field === 'closeDate'
            ? `to_char(date_trunc('${unit}', close_date::timestamp), 'YYYY-MM-DD') AS f,
               to_char(date_trunc('${unit}', close_date::timestamp) + interval '${step}', 'YYYY-MM-DD') AS t`
            : `to_char((date_trunc('${unit}', ${local}) AT TIME ZONE '${zone}') AT TIME ZONE 'UTC',
                       'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS f,
               to_char(((date_trunc('${unit}', ${local}) + interval '${step}') AT TIME ZONE '${zone}') AT TIME ZONE 'UTC',
                       'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS t`;
        const counts = await db.query<Array<{ k: string | null; n: number; f: string; t: string }>>(
          `SELECT to_char(date_trunc('${unit}', ${local}), 'YYYY-MM-DD') AS k, ${bounds},
                  count(*)::int AS n FROM ${table} WHERE ${own.sql} GROUP BY 1, 2, 3 ORDER BY 1`,
          own.params,
        );
        expect({
          at,
          buckets: got.buckets.map((b) => [b.key, b.count, b.from, b.to]),
          missing: got.missing,
        }).toEqual({
          at,
          buckets: counts.filter((c) => c.k !== null).map((c) => [c.k, c.n, c.f, c.t]),
          missing: counts.find((c) => c.k === null)?.n ?? 0,
        });
      } else {
        const values = await db.query<Array<{ v: string | null }>>(
          `SELECT ${column}::text AS v FROM ${table} WHERE ${own.sql}`,
          own.params,
        );
        const edges: number[] = got.buckets.slice(1).map((b) => Number(b.from));
        const expected = new Array(edges.length + 1).fill(0);
        let missing = 0;
        for (const { v } of values) {
          if (v === null) missing++;
          else expected[edges.filter((e) => Number(v) >= e).length]++;
        }
        if (facet.edges) expect(edges).toEqual(facet.edges);
        expect({ at, counts: got.buckets.map((b) => b.count), missing: got.missing }).toEqual({
          at,
          counts: expected,
          missing,
        });
      }
    }
  }

  beforeAll(async () => {
    t = await startTestApp({ SEARCH_INDEX_BUILD_WAIT_MS: '10000' });
    // Its own in-process cache: nothing the indexed gateway cached in Redis can answer for it.
    live = await startTestApp({ SEARCH_INDEX: 'off', REDIS_URL: '' });
    org = await buildSharingOrg(t.app);
    other = await buildSharingOrg(t.app);
    const { users } = org;
    owners = [
      users.admin.id,
      users.vp.id,
      users.mgr.id,
      users.rep1.id,
      users.rep2.id,
      users.sup.id,
      users.outsider.id,
    ];
    const db = t.app.dataSource;
    const accountRows = await db.query<Array<{ id: string }>>(
      `INSERT INTO accounts (company_id, owner_id, name, industry, country, annual_revenue, employees, created_at)
       SELECT $1, ($2::uuid[])[1 + n % 7],
              (ARRAY['Acme', 'Globex', 'Initech', 'Umbrella'])[1 + n % 4] || ' ' || n,
              CASE WHEN n % 5 = 0 THEN NULL ELSE (ARRAY['TECHNOLOGY','FINANCE','RETAIL','HEALTHCARE'])[1 + n % 4] END,
              CASE WHEN n % 7 = 0 THEN NULL ELSE (ARRAY['US','DE','FR','JP'])[1 + (n * 3) % 4] END,
              CASE WHEN n % 6 = 0 THEN NULL ELSE n * 1234567.89 END, n * 97 % 20000,
              timestamptz '2025-01-01 00:00:00+00' + make_interval(hours => n * 53)
         FROM generate_series(1, 60) AS n RETURNING id`,
      [org.companyId, owners],
    );
    accounts = accountRows.map((r) => r.id);
    await db.query(
      `INSERT INTO leads (company_id, owner_id, first_name, last_name, email, company_name, description, status, source,
                          industry, score, estimated_value, created_at)
       SELECT $1, ($2::uuid[])[1 + n % 7],
              (ARRAY['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara'])[1 + n % 5],
              (ARRAY['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Ñandú', 'zeta', 'Zed'])[1 + (n * 3) % 8],
              CASE WHEN n % 9 = 0 THEN NULL ELSE lower((ARRAY['ada', 'grace', 'xavier'])[1 + n % 3]) || n || '@example.com' END,
              CASE WHEN n % 8 = 0 THEN NULL ELSE (ARRAY['Acme', 'Globex', 'Initech'])[1 + n % 3] || ' ' || (ARRAY['Inc', 'GmbH'])[1 + n % 2] END,
              CASE WHEN n % 10 = 0 THEN 'urgent follow-up' ELSE NULL END,
              (ARRAY['NEW','CONTACTED','QUALIFIED','UNQUALIFIED','CONVERTED'])[1 + (n * 7) % 5],
              CASE WHEN n % 4 = 0 THEN NULL ELSE (ARRAY['WEB','REFERRAL','EVENT'])[1 + n % 3] END,
              CASE WHEN n % 6 = 0 THEN NULL ELSE (ARRAY['TECHNOLOGY','FINANCE','RETAIL','HEALTHCARE'])[1 + n % 4] END,
              n * 37 % 101,
              CASE WHEN n % 5 = 0 THEN NULL ELSE (n * 211 % 120000) + 0.5 END,
              timestamptz '2025-01-01 00:00:00+00' + make_interval(hours => n * 29, secs => n * 0.000123)
         FROM generate_series(1, 420) AS n`,
      [org.companyId, owners],
    );
    await db.query(
      `INSERT INTO deals (company_id, owner_id, account_id, name, stage, amount, probability, close_date, created_at)
       SELECT $1, ($2::uuid[])[1 + n % 7], CASE WHEN n % 3 = 0 THEN NULL ELSE ($3::uuid[])[1 + n % 60] END,
              (ARRAY['Renewal', 'Pilot', 'Expansion', 'Big bet'])[1 + n % 4] || ' ' || n,
              (ARRAY['PROSPECTING','QUALIFICATION','PROPOSAL','NEGOTIATION','CLOSED_WON','CLOSED_LOST'])[1 + (n * 5) % 6],
              (n * 137 % 150000) + 0.25, n % 101,
              CASE WHEN n % 9 = 0 THEN NULL ELSE date '2025-01-15' + (n * 5 % 700) END,
              timestamptz '2025-03-30 00:30:00+00' + make_interval(hours => n * 31)
         FROM generate_series(1, 400) AS n`,
      [org.companyId, owners, accounts],
    );
    // The other company: the same shapes, never to be counted here.
    await db.query(
      `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score)
       SELECT $1, $2, 'Ada', 'Other', 'NEW', 50 FROM generate_series(1, 30)`,
      [other.companyId, other.users.admin.id],
    );
    const admin = users.admin.token;
    // rep1: leads in FINANCE by a criteria rule, and three deals by hand; sup: the manager's records by an owner rule.
    await gql(
      `mutation { createSharingRule(input: { objectType: LEAD, name: "finance to rep1", ruleType: CRITERIA,
          criteria: [{ field: "industry", operator: eq, value: "FINANCE" }], target: { type: USER, id: "${users.rep1.id}" } }) { id } }`,
      admin,
    );
    await gql(
      `mutation { createSharingRule(input: { objectType: DEAL, name: "big to rep1", ruleType: CRITERIA,
          criteria: [{ field: "amount", operator: gte, value: 140000 }], target: { type: USER, id: "${users.rep1.id}" } }) { id } }`,
      admin,
    );
    const shared = await db.query<Array<{ id: string }>>(
      'SELECT id FROM deals WHERE company_id = $1 AND owner_id = $2 ORDER BY id LIMIT 3',
      [org.companyId, users.vp.id],
    );
    for (const deal of shared)
      await gql(
        `mutation { shareRecord(input: { objectType: DEAL, recordId: "${deal.id}", granteeType: USER, granteeId: "${users.rep1.id}" }) { id } }`,
        admin,
      );
    await gql(
      `mutation { createSharingRule(input: { objectType: ACCOUNT, name: "mgr accounts to support", ruleType: OWNER,
          source: { type: ROLE, id: "${org.roles.manager}" }, target: { type: GROUP, id: "${org.groups.g1}" } }) { id } }`,
      admin,
    );
  }, 60_000);

  afterAll(async () => {
    await live?.stop();
    await t?.stop();
  });

  it('answers random searches exactly for every user, from the index and from SQL alike', async () => {
    for (let round = 0; round < 6; round++) {
      for (const entity of ['LEAD', 'DEAL', 'ACCOUNT'] as const) {
        const spec = randomSearch(random, entity, owners, accounts);
        for (const user of ['admin', 'mgr', 'rep1', 'sup'] as const) {
          const token = org.users[user].token;
          const label = `${user} ${JSON.stringify(spec.input)}`;
          const indexed = await search(token, spec.input);
          expect({ label, source: indexed.facetSource }).toEqual({ label, source: 'INDEX' });
          await expectMatchesReference(spec, user, indexed, `${label} INDEX`);
          const fromSql = await search(token, spec.input, live.url);
          expect(fromSql.facetSource).toBe('LIVE');
          await expectMatchesReference(spec, user, fromSql, `${label} LIVE`);
          // The same query again is a cached window with the same answer.
          const again = await search(token, spec.input);
          expect(again.window).toBe('HIT');
          expect(again.items).toEqual(indexed.items);
          expect(again.facets).toEqual(indexed.facets);
        }
      }
    }
  }, 240_000);

  it('adding a filter never raises a count, and owner facets carry names', async () => {
    const token = org.users.mgr.token;
    const facets = [{ field: 'status' }, { field: 'ownerId' }, { field: 'source' }];
    const plain = await search(token, { entityType: 'LEAD', facets });
    const narrowed = await search(token, {
      entityType: 'LEAD',
      facets,
      filters: [{ field: 'source', op: 'EQ', value: 'WEB' }],
    });
    expect(narrowed.total).toBeLessThan(plain.total);
    for (const facet of ['status', 'ownerId']) {
      const before = new Map(
        plain.facets.find((f) => f.field === facet)!.buckets.map((b) => [b.key, b.count]),
      );
      for (const bucket of narrowed.facets.find((f) => f.field === facet)!.buckets)
        expect(bucket.count).toBeLessThanOrEqual(before.get(bucket.key) ?? 0);
    }
    // Disjunctive: the facet of the filtered field still counts the other sources.
    expect(narrowed.facets.find((f) => f.field === 'source')).toEqual(
      plain.facets.find((f) => f.field === 'source'),
    );
    const owner = plain.facets.find((f) => f.field === 'ownerId')!.buckets[0]!;
    const [{ name }] = await t.app.dataSource.query<[{ name: string }]>(
      'SELECT name FROM users WHERE id = $1',
      [owner.key],
    );
    expect(owner.label).toBe(name);
  });

  it('pages past the window by keyset from its last row, never OFFSET, and cursors continue a search', async () => {
    const statements: string[] = [];
    const engine = live.app.services.search.live;
    engine.onStatement = (sql) => statements.push(sql);
    try {
      const input = {
        entityType: 'DEAL',
        sort: [{ field: 'amount', direction: 'DESC' }],
        pageSize: 5,
        page: 23,
      };
      const deep = await search(org.users.admin.token, input, live.url);
      const expected = await t.app.dataSource.query<Array<{ id: string }>>(
        'SELECT id FROM deals WHERE company_id = $1 ORDER BY amount DESC NULLS LAST, id DESC LIMIT 5 OFFSET 110',
        [org.companyId],
      );
      expect(deep.items.map((i) => i.id)).toEqual(expected.map((r) => r.id));
      expect(statements.length).toBeGreaterThan(0);
      for (const sql of statements) expect(sql).not.toMatch(/\bOFFSET\b/i);
      // Windows 0, 1 and 2 were read, each after the last row of the one before.
      expect(statements.filter((sql) => /LIMIT/.test(sql) && /r\.id </.test(sql))).toHaveLength(2);
      const indexed = await search(org.users.admin.token, input);
      expect(indexed.items).toEqual(deep.items);
    } finally {
      engine.onStatement = undefined;
    }
    // A cursor carries on where its page ended, from either engine.
    const first = await search(org.users.rep1.token, {
      entityType: 'LEAD',
      pageSize: 7,
      sort: [{ field: 'lastName', direction: 'ASC' }],
    });
    const next = await search(org.users.rep1.token, {
      entityType: 'LEAD',
      pageSize: 7,
      sort: [{ field: 'lastName', direction: 'ASC' }],
      after: first.endCursor,
    });
    const second = await search(org.users.rep1.token, {
      entityType: 'LEAD',
      pageSize: 7,
      page: 2,
      sort: [{ field: 'lastName', direction: 'ASC' }],
    });
    expect(next.items).toEqual(second.items);
    const nextLive = await search(
      org.users.rep1.token,
      {
        entityType: 'LEAD',
        pageSize: 7,
        sort: [{ field: 'lastName', direction: 'ASC' }],
        after: first.endCursor,
      },
      live.url,
    );
    expect(nextLive.items).toEqual(second.items);
  });

  it('reflects writes at once: through this gateway, a second gateway process, bulk SQL, and sharing changes', async () => {
    let second: SpawnedProcess | undefined;
    try {
      second = spawnBuilt('main', testProcessEnv());
      const [, secondUrl] = await second.waitFor(/"url":"(http:\/\/[^"]+)\/graphql"/);
      const admin = org.users.admin.token;
      const input = {
        entityType: 'LEAD',
        text: 'zyxwv',
        facets: [{ field: 'status' }, { field: 'ownerId' }, { field: 'score', edges: [50] }],
      };
      // The score facet's buckets are precomputed per row: warm them, so the writes below must keep them current.
      await search(admin, { entityType: 'LEAD', facets: [{ field: 'score', edges: [50] }] });
      const before = await search(admin, input);
      expect(before.total).toBe(0);
      const again = await search(admin, input);
      expect(again.window).toBe('HIT');
      // Created through the second process: the first sees it on its very next search.
      const created = await fetch(`${secondUrl}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({
          query: `mutation { createLead(input: { firstName: "Zyxwvut", lastName: "Fresh", status: QUALIFIED, ownerId: "${org.users.rep2.id}" }) { id } }`,
        }),
      });
      const leadId = ((await created.json()) as { data: { createLead: { id: string } } }).data.createLead.id;
      const afterCreate = await search(admin, input);
      expect(afterCreate).toMatchObject({ total: 1, facetSource: 'INDEX', window: 'MISS' });
      expect(afterCreate.items.map((i) => i.id)).toEqual([leadId]);
      expect(afterCreate.facets[0]!.buckets).toEqual([
        expect.objectContaining({ key: 'QUALIFIED', count: 1 }),
      ]);
      // rep1 does not see rep2's lead; the manager does (hierarchy).
      expect((await search(org.users.rep1.token, input)).total).toBe(0);
      expect((await search(org.users.mgr.token, input)).total).toBe(1);
      // Updated here.
      expect(afterCreate.facets[2]!.buckets.map((b) => b.count)).toEqual([1, 0]);
      await gql(
        `mutation { updateLead(id: "${leadId}", input: { status: CONVERTED, score: 95 }) { id } }`,
        admin,
      );
      const afterUpdate = await search(admin, input);
      expect(afterUpdate.facets[0]!.buckets).toEqual([
        expect.objectContaining({ key: 'CONVERTED', count: 1 }),
      ]);
      expect(afterUpdate.facets[2]!.buckets.map((b) => b.count)).toEqual([0, 1]);
      // Moved to rep1 by bulk SQL, outside the gateway: the triggers' change log carries it.
      await t.app.dataSource.query('UPDATE leads SET owner_id = $1, industry = NULL WHERE id = $2', [
        org.users.rep1.id,
        leadId,
      ]);
      const rep1Sees = await search(org.users.rep1.token, input);
      expect(rep1Sees.total).toBe(1);
      expect(rep1Sees.facets[1]!.buckets).toEqual([
        expect.objectContaining({ key: org.users.rep1.id, count: 1 }),
      ]);
      // A sharing rule: rep2 (no longer the owner) sees it once a criteria rule names its industry.
      expect((await search(org.users.rep2.token, input)).total).toBe(0);
      await t.app.dataSource.query("UPDATE leads SET industry = 'RETAIL' WHERE id = $1", [leadId]);
      await gql(
        `mutation { createSharingRule(input: { objectType: LEAD, name: "retail to rep2", ruleType: CRITERIA,
            criteria: [{ field: "industry", operator: eq, value: "RETAIL" }], target: { type: USER, id: "${org.users.rep2.id}" } }) { id } }`,
        admin,
      );
      const rep2Sees = await search(org.users.rep2.token, input);
      expect(rep2Sees.total).toBe(1);
      // A manual share and its removal.
      const dealInput = {
        entityType: 'DEAL',
        filters: [{ field: 'ownerId', op: 'EQ', value: org.users.sup.id }],
      };
      const supDeal = (await search(admin, { ...dealInput, pageSize: 1 })).items[0]!.id;
      expect((await search(org.users.rep2.token, dealInput)).total).toBe(0);
      await gql(
        `mutation { shareRecord(input: { objectType: DEAL, recordId: "${supDeal}", granteeType: USER, granteeId: "${org.users.rep2.id}" }) { id } }`,
        admin,
      );
      expect((await search(org.users.rep2.token, dealInput)).items.map((i) => i.id)).toEqual([supDeal]);
      // Deleted through the second process.
      await fetch(`${secondUrl}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({ query: `mutation { deleteLead(id: "${leadId}") }` }),
      });
      const afterDelete = await search(admin, input);
      expect(afterDelete.total).toBe(0);
      expect(afterDelete.facets[0]!.buckets).toEqual([]);
      // The second process's own index followed too.
      const there = await fetch(`${secondUrl}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({ query: SEARCH, variables: { input: { entityType: 'LEAD', text: 'zyxwv' } } }),
      });
      expect(((await there.json()) as { data: { search: Result } }).data.search.total).toBe(0);
    } finally {
      second?.child.kill('SIGTERM');
      await second?.exited;
    }
  }, 90_000);

  it('never serves one view to another: users, companies', async () => {
    const input = { entityType: 'LEAD', facets: [{ field: 'status' }], pageSize: 50 };
    const rep1 = await search(org.users.rep1.token, input);
    const rep2 = await search(org.users.rep2.token, input);
    expect(rep2.window).toBe('MISS');
    expect(rep2.items).not.toEqual(rep1.items);
    const foreign = await search(other.users.admin.token, input);
    const ids = new Set(
      (
        await t.app.dataSource.query<Array<{ id: string }>>('SELECT id FROM leads WHERE company_id = $1', [
          other.companyId,
        ])
      ).map((r) => r.id),
    );
    expect(foreign.total).toBe(ids.size);
    expect(foreign.items).toHaveLength(ids.size);
    for (const item of foreign.items) expect(ids.has(item.id)).toBe(true);
    // A cursor of one company or query is refused by another.
    const cursor = (await search(org.users.admin.token, { entityType: 'LEAD', pageSize: 2 })).endCursor!;
    const refused = await t.gql(
      SEARCH,
      { input: { entityType: 'LEAD', pageSize: 2, after: cursor } },
      other.users.admin.token,
    );
    expect(refused.errors?.[0]?.extensions?.violations).toEqual([
      expect.objectContaining({ field: 'input.after' }),
    ]);
    const otherQuery = await t.gql(
      SEARCH,
      { input: { entityType: 'LEAD', pageSize: 2, text: 'ada', after: cursor } },
      org.users.admin.token,
    );
    expect(otherQuery.errors?.[0]?.extensions?.violations?.[0]?.field).toBe('input.after');
  });

  it('refuses bad input naming the field, before running anything', async () => {
    const token = org.users.admin.token;
    // The gateway's page-size limit stops this one before the resolver, naming the argument.
    const oversized = await t.gql(SEARCH, { input: { entityType: 'LEAD', pageSize: 201 } }, token);
    expect(oversized.errors?.[0]?.message).toMatch(/search\.input\.pageSize must be at most 200/);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ entityType: 'LEAD', filters: [{ field: 'nope', op: 'EQ', value: 1 }] }, 'input.filters[0].field'],
      [
        { entityType: 'LEAD', filters: [{ field: 'status', op: 'GTE', value: 'NEW' }] },
        'input.filters[0].op',
      ],
      [
        { entityType: 'LEAD', filters: [{ field: 'score', op: 'RANGE', from: 9, to: 2 }] },
        'input.filters[0].from',
      ],
      [
        { entityType: 'LEAD', filters: [{ field: 'score', op: 'EQ', value: 'high' }] },
        'input.filters[0].value',
      ],
      [{ entityType: 'LEAD', facets: [{ field: 'email' }] }, 'input.facets[0].field'],
      [{ entityType: 'LEAD', facets: [{ field: 'score', edges: [5, 1] }] }, 'input.facets[0].edges'],
      [
        { entityType: 'LEAD', facets: [{ field: 'createdAt', timeZone: 'Mars/Base' }] },
        'input.facets[0].timeZone',
      ],
      [{ entityType: 'LEAD', sort: [{ field: 'email', direction: 'ASC' }] }, 'input.sort[0].field'],
      [{ entityType: 'LEAD', page: 0 }, 'input.page'],
      [{ entityType: 'LEAD', text: 'x'.repeat(501) }, 'input.text'],
      [{ entityType: 'LEAD', after: 'bm90IGEgY3Vyc29y.forged' }, 'input.after'],
    ];
    for (const [input, field] of cases) {
      const res = await t.gql(SEARCH, { input }, token);
      expect({ input, code: res.errors?.[0]?.extensions?.code }).toEqual({ input, code: 'BAD_USER_INPUT' });
      expect({ input, fields: res.errors?.[0]?.extensions?.violations?.map((v) => v.field) }).toEqual({
        input,
        fields: [field],
      });
    }
  });

  it('rebuilds from Postgres and counts what it holds; the change log is pruned', async () => {
    const indexes = t.app.services.searchIndexes;
    const index = await indexes.rebuild(org.companyId, 'LEAD');
    const [{ n }] = await t.app.dataSource.query<[{ n: number }]>(
      'SELECT count(*)::int AS n FROM leads WHERE company_id = $1',
      [org.companyId],
    );
    expect(index.rows).toBe(n);
    expect(index.bytes()).toBeGreaterThan(n * 40);
    await t.app.dataSource.query(
      "UPDATE search_changes SET changed_at = now() - interval '2 hours' WHERE company_id = $1",
      [org.companyId],
    );
    const pruned = await t.app.services.search.pruneChanges();
    expect(pruned).toBeGreaterThan(0);
    const [{ left }] = await t.app.dataSource.query<[{ left: number }]>(
      'SELECT count(*)::int AS left FROM search_changes WHERE company_id = $1',
      [org.companyId],
    );
    expect(left).toBe(0);
    // A change the index never saw, logged and pruned before it looked: the index rebuilds rather than miss it.
    const input = { entityType: 'LEAD', text: 'prunedaway' };
    expect((await search(org.users.admin.token, input)).total).toBe(0);
    await t.app.dataSource.query(
      `INSERT INTO leads (company_id, owner_id, first_name, last_name, status) VALUES ($1, $2, 'Prunedaway', 'X', 'NEW')`,
      [org.companyId, org.users.admin.id],
    );
    await t.app.dataSource.query(
      "UPDATE search_changes SET changed_at = now() - interval '2 hours' WHERE company_id = $1",
      [org.companyId],
    );
    expect(await t.app.services.search.pruneChanges()).toBeGreaterThan(0);
    const found = await search(org.users.admin.token, input);
    expect(found.total).toBe(1);
    expect((await search(org.users.admin.token, { ...input, pageSize: 3 })).facetSource).toBe('INDEX');
  });

  it('cuts date buckets where Postgres does, across zone transitions and far-apart dates', async () => {
    const admin = other.users.admin.token;
    const db = t.app.dataSource;
    // Amman fell back from 01:00 to 00:00 (midnight twice) on 2021-10-29; Sao Paulo skipped midnight on 2018-11-04.
    const instants = [
      '2021-10-28T20:59:00Z',
      '2021-10-28T21:00:00Z',
      '2021-10-28T21:30:00Z',
      '2021-10-28T22:00:00Z',
      '2021-10-28T22:30:00Z',
      '2018-11-04T02:30:00Z',
      '2018-11-04T03:00:00Z',
      '2018-11-03T02:59:00Z',
      '0050-06-15T12:00:00Z',
    ];
    await db.query(
      `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score, created_at)
       SELECT $1, $2, 'Zone', 'Edge', 'NEW', 1, at FROM unnest($3::timestamptz[]) AS at`,
      [other.companyId, other.users.admin.id, instants],
    );
    for (const zone of ['Asia/Amman', 'America/Sao_Paulo']) {
      for (const interval of ['DAY', 'MONTH']) {
        const result = await search(admin, {
          entityType: 'LEAD',
          filters: [{ field: 'lastName', op: 'EQ', value: 'Edge' }],
          facets: [{ field: 'createdAt', interval, timeZone: zone }],
        });
        const unit = interval.toLowerCase();
        // A local midnight as an instant: the earliest instant whose local date is that day (at a repeated midnight
        // AT TIME ZONE alone gives the later one).
        const start = (local: string) =>
          `to_char((SELECT min(c) FROM (VALUES ((${local}) AT TIME ZONE $2 - interval '1 hour'), ((${local}) AT TIME ZONE $2)) v(c)
                     WHERE date_trunc('day', c AT TIME ZONE $2) = date_trunc('day', ${local})) AT TIME ZONE 'UTC',
                   'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
        const bucket = `date_trunc('${unit}', created_at AT TIME ZONE $2)`;
        const expected = await db.query<Array<{ k: string; n: number; f: string; t: string }>>(
          `SELECT to_char(${bucket}, 'YYYY-MM-DD') AS k, count(*)::int AS n,
                  ${start(bucket)} AS f, ${start(`${bucket} + interval '1 ${unit}'`)} AS t
             FROM leads WHERE company_id = $1 AND last_name = 'Edge' GROUP BY 1, 3, 4 ORDER BY 1`,
          [other.companyId, zone],
        );
        expect({ zone, interval, source: result.facetSource }).toEqual({ zone, interval, source: 'INDEX' });
        const got = result.facets[0]!.buckets.map((b) => [b.key, b.count, b.from, b.to]);
        // Year 50's bounds are written by Postgres with a 4-digit year too; compare the keys and counts there.
        expect({ zone, interval, got: got.map((b) => b.slice(0, 2)) }).toEqual({
          zone,
          interval,
          got: expected.map((e) => [e.k, e.n]),
        });
        for (const [i, e] of expected.entries())
          if (!e.k.startsWith('0050'))
            expect({ zone, bucket: got[i] }).toEqual({ zone, bucket: [e.k, e.n, e.f, e.t] });
      }
    }
  });

  it('names an account in a facet only for a caller who may read the account', async () => {
    const db = t.app.dataSource;
    const admin = other.users.admin.token;
    await gql(
      `mutation { setOrgWideDefault(objectType: DEAL, accessLevel: PUBLIC_READ) { objectType } }`,
      admin,
    );
    const [account] = await db.query<Array<{ id: string }>>(
      `INSERT INTO accounts (company_id, owner_id, name) VALUES ($1, $2, 'Secret Holdings') RETURNING id`,
      [other.companyId, other.users.admin.id],
    );
    await db.query(
      `INSERT INTO deals (company_id, owner_id, account_id, name, stage, amount) VALUES ($1, $2, $3, 'Public deal', 'PROSPECTING', 10)`,
      [other.companyId, other.users.admin.id, account!.id],
    );
    const input = { entityType: 'DEAL', facets: [{ field: 'accountId' }] };
    const asAdmin = await search(admin, input);
    expect(asAdmin.facets[0]!.buckets).toEqual([
      expect.objectContaining({ key: account!.id, label: 'Secret Holdings' }),
    ]);
    // The same deals and counts (a public default gives the rep the admin's visibility key), but not the name.
    const asRep = await search(other.users.rep1.token, input);
    expect(asRep.window).toBe('HIT');
    expect(asRep.facets[0]!.buckets).toEqual([
      expect.objectContaining({ key: account!.id, label: account!.id, count: 1 }),
    ]);
  });
});
