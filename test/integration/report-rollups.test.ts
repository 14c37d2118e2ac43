import { buildSharingOrg, type SharingOrg } from '../helpers/sharing-org';
import { spawnBuilt, testProcessEnv, type SpawnedProcess } from '../helpers/spawn-gateway';
import type { QueryRunner } from 'typeorm';
import { startTestApp, type TestApp } from '../helpers/test-app';
import { ReportRollups1765100000000 } from '../../migrations/1765100000000-report-rollups';
import { CommitTimeDerivedWrites1765300000000 } from '../../migrations/1765300000000-commit-time-derived-writes';
import { RollupGroupRepair1765400000000 } from '../../migrations/1765400000000-rollup-group-repair';
import { RollupExtremeHolders1765600000000 } from '../../migrations/1765600000000-rollup-extreme-holders';
import { RollupRepairFromIndexes1765600000001 } from '../../migrations/1765600000001-rollup-repair-from-indexes';
import { rollupSchemaSql } from '../../src/modules/reports/report.rollup-schema';

const REPORT = `query ($input: ReportInput!) { report(input: $input) {
  source aggregates { name source rollup rows { dimensions value } } } }`;

type Entity = 'LEAD' | 'DEAL' | 'ACCOUNT';
type UserName = 'admin' | 'vp' | 'mgr' | 'rep1' | 'rep2' | 'sup' | 'outsider';

interface Row {
  dimensions: Record<string, unknown>;
  value: number | null;
}

/** What the test knows of each preset, written out here rather than read from the code under test. */
const PRESETS: Record<
  Entity,
  { table: string; rollups: Array<{ fields: string[]; date?: string }>; measures: string[] }
> = {
  LEAD: {
    table: 'leads',
    rollups: [{ fields: ['status'] }, { fields: ['source'] }, { fields: ['status'], date: 'createdAt' }],
    measures: ['score', 'estimatedValue'],
  },
  DEAL: {
    table: 'deals',
    rollups: [{ fields: ['stage'] }, { fields: ['stage'], date: 'closeDate' }],
    measures: ['amount', 'probability'],
  },
  ACCOUNT: {
    table: 'accounts',
    rollups: [{ fields: ['industry'] }, { fields: ['country'] }],
    measures: ['annualRevenue', 'employees'],
  },
};

const COLUMN: Record<string, string> = {
  ownerId: 'owner_id',
  status: 'status',
  source: 'source',
  stage: 'stage',
  industry: 'industry',
  country: 'country',
  createdAt: 'created_at',
  closeDate: 'close_date',
  score: 'score',
  estimatedValue: 'estimated_value',
  amount: 'amount',
  probability: 'probability',
  annualRevenue: 'annual_revenue',
  employees: 'employees',
};

const VALUES: Record<string, string[]> = {
  status: ['NEW', 'CONTACTED', 'QUALIFIED', 'UNQUALIFIED', 'CONVERTED'],
  source: ['WEB', 'REFERRAL', 'EVENT'],
  stage: ['PROSPECTING', 'QUALIFICATION', 'PROPOSAL', 'NEGOTIATION', 'CLOSED_WON', 'CLOSED_LOST'],
  industry: ['TECHNOLOGY', 'FINANCE', 'RETAIL', 'HEALTHCARE'],
  country: ['US', 'DE', 'FR', 'JP'],
};

/** mulberry32: the same random reports on every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface RandomReport {
  input: Record<string, any>;
  /** The reference query for each aggregate, given the visible ids as $2. */
  reference: string[];
  params: unknown[];
}

function randomReport(random: () => number, entity: Entity, owners: string[]): RandomReport {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const preset = PRESETS[entity];
  const rollup = pick(preset.rollups);
  const params: unknown[] = [];
  const bind = (value: unknown) => `$${params.push(value) + 2}`;
  // Filters on the rollup's fields or the owner; the reference spells each out.
  const filters: Array<Record<string, unknown>> = [];
  const where: string[] = [];
  for (const field of [...rollup.fields, 'ownerId']) {
    if (random() < 0.6) continue;
    const pool = field === 'ownerId' ? owners : VALUES[field]!;
    const op = pick(['EQ', 'NE', 'IN'] as const);
    const column = COLUMN[field]!;
    if (op === 'IN') {
      const values = [pick(pool), pick(pool)];
      filters.push({ field, op, values });
      where.push(`${column}::text = ANY(${bind(values)}::text[])`);
    } else {
      const value = pick(pool);
      filters.push({ field, op, value });
      where.push(
        op === 'EQ' ? `${column}::text = ${bind(value)}` : `${column}::text IS DISTINCT FROM ${bind(value)}`,
      );
    }
  }
  let dateRange: Record<string, string> | undefined;
  if (rollup.date && random() < 0.5) {
    const from = `2026-0${1 + Math.floor(random() * 4)}-01`;
    const to = `2026-${String(5 + Math.floor(random() * 6)).padStart(2, '0')}-01`;
    dateRange = { field: rollup.date, from: `${from}T00:00:00.000Z`, to: `${to}T00:00:00.000Z` };
    const column = COLUMN[rollup.date]!;
    const cast = rollup.date === 'closeDate' ? 'date' : 'timestamptz';
    where.push(
      `${column} >= ${bind(`${from}T00:00:00Z`)}::${cast}`,
      `${column} < ${bind(`${to}T00:00:00Z`)}::${cast}`,
    );
  }
  const dimensionPool = [
    ...rollup.fields,
    'ownerId',
    ...(rollup.date ? ['month', 'quarter', 'year'].map((b) => `${rollup.date}:${b}`) : []),
  ];
  const aggregates: Array<Record<string, unknown>> = [];
  const reference: string[] = [];
  const count = 1 + Math.floor(random() * 3);
  for (let i = 0; i < count; i++) {
    const type = pick(['COUNT', 'SUM', 'AVG', 'MIN', 'MAX'] as const);
    const field = type === 'COUNT' ? undefined : pick(preset.measures);
    // Half of the later aggregates group like the one before: those read the same rollup rows in one statement.
    const previous = aggregates[i - 1]?.dimensions as string[] | undefined;
    const dimensions =
      previous && random() < 0.5 ? [...previous] : dimensionPool.filter(() => random() < 0.35).slice(0, 3);
    aggregates.push({ name: `a${i}`, type, field, dimensions });
    const expressions = dimensions.map((key) => {
      const [name, bucket] = key.split(':');
      const column = COLUMN[name!]!;
      if (!bucket) return column;
      const local = name === 'createdAt' ? `(${column} AT TIME ZONE 'UTC')` : `${column}::timestamp`;
      return `to_char(date_trunc('${bucket}', ${local}), 'YYYY-MM-DD')`;
    });
    const key = dimensions.length
      ? `json_build_object(${dimensions.map((d, j) => `'${d}', ${expressions[j]}`).join(', ')})`
      : `'{}'::json`;
    const value = type === 'COUNT' ? 'count(*)' : `${type.toLowerCase()}(${COLUMN[field!]})`;
    reference.push(
      `SELECT ${key} AS k, ${value} AS v FROM ${preset.table} WHERE company_id = $1 AND id = ANY($2::uuid[])` +
        `${where.map((w) => ` AND ${w}`).join('')}` +
        (dimensions.length
          ? ` GROUP BY ${expressions.join(', ')} ORDER BY ${expressions.map((e) => `${e} NULLS LAST`).join(', ')}`
          : ''),
    );
  }
  return { input: { entityType: entity, aggregates, filters, dateRange }, reference, params };
}

/**
 * The rollups' objects in one schema as the catalog holds them: each table with its columns, constraints and indexes,
 * the trigger functions with their source, and the triggers on the record tables (names of the schema left out).
 */
async function rollupSchema(runner: QueryRunner, schema: string) {
  const unqualified = (text: string) => text.split(`${schema}.`).join('');
  const rows = async <T>(sql: string): Promise<T[]> => (await runner.query(sql, [schema])) as T[];
  const tables = await rows<{ name: string; columns: string[]; constraints: string[] }>(
    `SELECT c.relname AS name,
            ARRAY(SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
                         || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
                    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns,
            ARRAY(SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = c.oid ORDER BY conname)
              || ARRAY(SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = c.oid ORDER BY indexrelid::regclass::text)
              AS constraints
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind = 'r'
        AND (c.relname = 'report_criteria_rules' OR c.relname LIKE 'report\\_rollup\\_%') AND c.relname <> 'report_rollup_state'
      ORDER BY c.relname`,
  );
  const functions = await rows<{ name: string; returns: string; language: string; source: string }>(
    `SELECT p.proname AS name, pg_get_function_result(p.oid) AS returns, l.lanname AS language, p.prosrc AS source
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
      WHERE n.nspname = $1 AND p.proname LIKE 'report\\_rollups\\_%' ORDER BY p.proname`,
  );
  const triggers = await rows<{ definition: string }>(
    `SELECT pg_get_triggerdef(g.oid) AS definition
       FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND NOT g.tgisinternal AND g.tgname LIKE 'report\\_rollups\\_%' ORDER BY g.tgname`,
  );
  return {
    tables: tables.map((table) => ({ ...table, constraints: table.constraints.map(unqualified) })),
    functions,
    triggers: triggers.map((trigger) => unqualified(trigger.definition)),
  };
}

describe('report rollups: exact under visibility, after writes, through a second gateway', () => {
  let t: TestApp;
  let org: SharingOrg;
  let other: SharingOrg;
  let owners: string[];
  const random = prng(20261129);

  async function gql(query: string, variables: Record<string, unknown>, token: string) {
    const res = await t.gql(query, variables, token);
    expect(res.errors).toBeUndefined();
    return res.data!;
  }

  async function report(token: string, input: Record<string, unknown>, url = t.url) {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: REPORT, variables: { input } }),
    });
    const body = (await response.json()) as { data?: any; errors?: unknown };
    expect(body.errors).toBeUndefined();
    return body.data.report as {
      source: string;
      aggregates: Array<{ name: string; source: string; rollup: string | null; rows: Row[] }>;
    };
  }

  /** The ids a user may read, from the record list API (sharing's own path, tested on its own). */
  async function visibleIds(user: UserName, entity: Entity): Promise<string[]> {
    const plural = { LEAD: 'leads', DEAL: 'deals', ACCOUNT: 'accounts' }[entity];
    const ids: string[] = [];
    for (let page = 1; ; page++) {
      const data = await gql(
        `{ ${plural}(page: ${page}, pageSize: 200) { items { id } } }`,
        {},
        org.users[user].token,
      );
      const items = (data[plural] as { items: Array<{ id: string }> }).items;
      ids.push(...items.map((item) => item.id));
      if (items.length < 200) return ids;
    }
  }

  async function referenceRows(sql: string, ids: string[], params: unknown[]): Promise<Row[]> {
    const rows = await t.app.dataSource.query<Array<{ k: Record<string, unknown>; v: string | null }>>(sql, [
      org.companyId,
      ids,
      ...params,
    ]);
    return rows.map((row) => ({ dimensions: row.k, value: row.v === null ? null : Number(row.v) }));
  }

  function expectSameRows(actual: Row[], expected: Row[], label: string) {
    expect({ label, dimensions: actual.map((r) => r.dimensions) }).toEqual({
      label,
      dimensions: expected.map((r) => r.dimensions),
    });
    actual.forEach((row, i) => {
      const want = expected[i]!.value;
      if (want === null) expect({ label, value: row.value }).toEqual({ label, value: null });
      else expect(row.value).toBeCloseTo(want, 6);
    });
  }

  /** Random reports for every user: MATERIALIZED = LIVE = the reference, and by default from the rollups. */
  async function checkRandomReports(rounds: number) {
    for (let round = 0; round < rounds; round++) {
      for (const entity of ['LEAD', 'DEAL', 'ACCOUNT'] as const) {
        const spec = randomReport(random, entity, owners);
        for (const user of ['admin', 'mgr', 'rep1', 'rep2', 'sup'] as const) {
          const ids = await visibleIds(user, entity);
          const token = org.users[user].token;
          const materialized = await report(token, { ...spec.input, source: 'MATERIALIZED' });
          const live = await report(token, { ...spec.input, source: 'LIVE' });
          expect(materialized.source).toBe('MATERIALIZED');
          expect(live.source).toBe('LIVE');
          for (const [i, sql] of spec.reference.entries()) {
            const expected = await referenceRows(sql, ids, spec.params);
            const label = `${user} ${JSON.stringify(spec.input)} a${i}`;
            expectSameRows(materialized.aggregates[i]!.rows, expected, `${label} MATERIALIZED`);
            expectSameRows(live.aggregates[i]!.rows, expected, `${label} LIVE`);
          }
        }
      }
    }
  }

  /** Every rollup row equals its group recomputed from the records (no drift, no empty or stale groups left). */
  async function expectRollupsExact() {
    const db = t.app.dataSource;
    const checks: Array<[rollup: string, table: string, keys: string[]]> = [
      ['report_rollup_deal_stage', 'deals', ['stage']],
      ['report_rollup_lead_status', 'leads', ['status']],
      [
        'report_rollup_deal_close_month',
        'deals',
        ["date_trunc('month', close_date)::date AS close_date_month", 'stage'],
      ],
      ['report_rollup_lead_source', 'leads', ['source']],
      [
        'report_rollup_lead_created_month',
        'leads',
        ["date_trunc('month', created_at AT TIME ZONE 'UTC')::date AS created_at_month", 'status'],
      ],
      ['report_rollup_account_country', 'accounts', ['country']],
    ];
    for (const [rollup, table, keys] of checks) {
      const measures =
        table === 'deals'
          ? ['amount', 'probability']
          : table === 'leads'
            ? ['score', 'estimated_value']
            : ['employees'];
      const aggregates = measures
        .map(
          (m) =>
            `count(${m})::bigint AS ${m}_count, sum(${m})::numeric AS ${m}_sum, min(${m})::numeric AS ${m}_min, max(${m})::numeric AS ${m}_max`,
        )
        .join(', ');
      const names = keys.map((k) => k.split(' AS ').pop()!);
      const columns = [
        'owner_id',
        ...names,
        'record_count',
        ...measures.flatMap((m) => [`${m}_count`, `${m}_sum`, `${m}_min`, `${m}_max`]),
      ];
      const expected = `SELECT owner_id, ${keys.join(', ')}, count(*)::bigint AS record_count, ${aggregates} FROM ${table} WHERE company_id = $1 GROUP BY owner_id, ${names.map((_, i) => i + 2).join(', ')}`;
      // Summed over rule masks: a group of records is split by the criteria rules they meet.
      const summed = columns.map((c) =>
        c === 'owner_id' || names.includes(c)
          ? c
          : c.endsWith('_min')
            ? `min(${c})::numeric AS ${c}`
            : c.endsWith('_max')
              ? `max(${c})::numeric AS ${c}`
              : c.endsWith('_sum')
                ? `sum(${c})::numeric AS ${c}`
                : `sum(${c})::bigint AS ${c}`,
      );
      const actual = `SELECT ${summed.join(', ')} FROM ${rollup} WHERE company_id = $1 GROUP BY owner_id, ${names.join(', ')}`;
      const [{ differ }] = (await db.query<Array<{ differ: string }>>(
        `SELECT count(*) AS differ FROM ((${expected} EXCEPT ${actual}) UNION ALL (${actual} EXCEPT ${expected})) x`,
        [org.companyId],
      )) as [{ differ: string }];
      expect({ rollup, differ: Number(differ) }).toEqual({ rollup, differ: 0 });
      const [{ stale }] = (await db.query<Array<{ stale: string }>>(
        `SELECT count(*) AS stale FROM ${rollup} WHERE stale OR record_count = 0`,
      )) as [{ stale: string }];
      expect({ rollup, stale: Number(stale) }).toEqual({ rollup, stale: 0 });
      // How many records hold each extreme, which decides when a group is repaired: summed over the rule masks, the
      // rows whose extreme is the group's hold exactly the records at that value, and none is kept in a transient.
      const partition = `PARTITION BY owner_id, ${keys.map((k) => k.split(' AS ')[0]).join(', ')}`;
      const expectedHeld = `SELECT owner_id, ${names.join(', ')}, ${measures
        .flatMap((m) => [
          `count(*) FILTER (WHERE ${m} = lo_${m})::bigint AS ${m}_min_n`,
          `count(*) FILTER (WHERE ${m} = hi_${m})::bigint AS ${m}_max_n`,
        ])
        .join(', ')} FROM (SELECT owner_id, ${keys.join(', ')}, ${measures
        .flatMap((m) => [
          m,
          `min(${m}) OVER (${partition}) AS lo_${m}`,
          `max(${m}) OVER (${partition}) AS hi_${m}`,
        ])
        .join(', ')} FROM ${table} WHERE company_id = $1) t GROUP BY owner_id, ${names.join(', ')}`;
      const actualHeld = `SELECT owner_id, ${names.join(', ')}, ${measures
        .flatMap((m) => [
          `coalesce(sum(${m}_min_n) FILTER (WHERE ${m}_min = group_${m}_min), 0)::bigint AS ${m}_min_n`,
          `coalesce(sum(${m}_max_n) FILTER (WHERE ${m}_max = group_${m}_max), 0)::bigint AS ${m}_max_n`,
        ])
        .join(', ')} FROM (SELECT *, ${measures
        .flatMap((m) => [
          `min(${m}_min) OVER (PARTITION BY owner_id, ${names.join(', ')}) AS group_${m}_min`,
          `max(${m}_max) OVER (PARTITION BY owner_id, ${names.join(', ')}) AS group_${m}_max`,
        ])
        .join(', ')} FROM ${rollup} WHERE company_id = $1) r GROUP BY owner_id, ${names.join(', ')}`;
      const [{ wrong }] = (await db.query<Array<{ wrong: string }>>(
        `SELECT count(*) AS wrong FROM ((${expectedHeld} EXCEPT ${actualHeld}) UNION ALL (${actualHeld} EXCEPT ${expectedHeld})) x`,
        [org.companyId],
      )) as [{ wrong: string }];
      expect({ rollup, wrongHolders: Number(wrong) }).toEqual({ rollup, wrongHolders: 0 });
      const [{ kept }] = (await db.query<Array<{ kept: string }>>(
        `SELECT count(*) AS kept FROM ${rollup} WHERE ${measures
          .flatMap((m) => [`${m}_gone_min`, `${m}_gone_max`, `${m}_gone_min_n`, `${m}_gone_max_n`])
          .map((c) => `${c} IS NOT NULL`)
          .join(' OR ')}`,
      )) as [{ kept: string }];
      expect({ rollup, kept: Number(kept) }).toEqual({ rollup, kept: 0 });
    }
  }

  beforeAll(async () => {
    t = await startTestApp({ REPORT_ROLLUP_MAX_RATIO: '1' });
    org = await buildSharingOrg(t.app);
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
    // Many rows in one statement each: the statement triggers group them.
    await db.query(
      `INSERT INTO deals (company_id, owner_id, name, stage, amount, probability, close_date, created_at)
       SELECT $1, ($2::uuid[])[1 + n % 7], 'Deal ' || n,
              (ARRAY['PROSPECTING','QUALIFICATION','PROPOSAL','NEGOTIATION','CLOSED_WON','CLOSED_LOST'])[1 + (n * 7) % 6],
              (n * 137 % 10000) + 0.25, n % 101,
              CASE WHEN n % 9 = 0 THEN NULL ELSE date '2025-11-15' + (n * 5 % 400) END,
              timestamptz '2025-12-31 23:00:00+00' + make_interval(hours => n * 31)
         FROM generate_series(1, 260) AS n`,
      [org.companyId, owners],
    );
    await db.query(
      `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, source, score, estimated_value, created_at)
       SELECT $1, ($2::uuid[])[1 + (n * 3) % 7], 'L', 'Lead ' || n,
              (ARRAY['NEW','CONTACTED','QUALIFIED','UNQUALIFIED','CONVERTED'])[1 + n % 5],
              CASE WHEN n % 8 = 0 THEN NULL ELSE (ARRAY['WEB','REFERRAL','EVENT'])[1 + n % 3] END,
              n % 100, CASE WHEN n % 6 = 0 THEN NULL ELSE n * 10.5 END,
              timestamptz '2025-12-31 22:30:00+00' + make_interval(hours => n * 29)
         FROM generate_series(1, 280) AS n`,
      [org.companyId, owners],
    );
    await db.query(
      `INSERT INTO accounts (company_id, owner_id, name, industry, country, annual_revenue, employees)
       SELECT $1, ($2::uuid[])[1 + (n * 5) % 7], 'Account ' || n,
              CASE WHEN n % 10 = 0 THEN NULL ELSE (ARRAY['TECHNOLOGY','FINANCE','RETAIL','HEALTHCARE'])[1 + n % 4] END,
              (ARRAY['US','DE','FR','JP'])[1 + n % 4], n * 1000.5, CASE WHEN n % 7 = 0 THEN NULL ELSE n * 3 END
         FROM generate_series(1, 120) AS n`,
      [org.companyId, owners],
    );
    await db.query(`UPDATE org_wide_defaults SET access_level = 'PRIVATE' WHERE company_id = $1`, [
      org.companyId,
    ]);
    await db.query(
      `INSERT INTO org_wide_defaults (company_id, object_type, access_level)
       SELECT $1, t, 'PRIVATE' FROM unnest(ARRAY['LEAD','DEAL','ACCOUNT']) t ON CONFLICT DO NOTHING`,
      [org.companyId],
    );
    const admin = org.users.admin.token;
    // rep1: a criteria rule on a rollup dimension (read from the rollup) and manual shares (corrected live).
    // rep2: a criteria rule on a measure (corrected live). sup: an owner rule (summed from the rollup).
    for (const mutation of [
      `mutation { createSharingRule(input: { objectType: DEAL, name: "proposals", ruleType: CRITERIA, criteria: [{ field: "stage", operator: eq, value: "PROPOSAL" }], target: { type: USER, id: "${users.rep1.id}" } }) { id } }`,
      `mutation { createSharingRule(input: { objectType: LEAD, name: "web", ruleType: CRITERIA, criteria: [{ field: "source", operator: eq, value: "WEB" }], target: { type: USER, id: "${users.rep1.id}" } }) { id } }`,
      `mutation { createSharingRule(input: { objectType: DEAL, name: "big", ruleType: CRITERIA, criteria: [{ field: "amount", operator: gte, value: 7000 }], target: { type: USER, id: "${users.rep2.id}" } }) { id } }`,
      `mutation { createSharingRule(input: { objectType: ACCOUNT, name: "tech", ruleType: CRITERIA, criteria: [{ field: "industry", operator: in, value: ["TECHNOLOGY"] }, { field: "employees", operator: gt, value: 100 }], target: { type: USER, id: "${users.rep2.id}" } }) { id } }`,
      `mutation { createSharingRule(input: { objectType: DEAL, name: "vp to sup", ruleType: OWNER, source: { type: ROLE, id: "${org.roles.vp}" }, target: { type: USER, id: "${users.sup.id}" } }) { id } }`,
    ])
      await gql(mutation, {}, admin);
    const shared = await db.query<Array<{ id: string; type: string }>>(
      `(SELECT id, 'DEAL' AS type FROM deals WHERE company_id = $1 AND owner_id = $2 ORDER BY id LIMIT 6)
       UNION ALL (SELECT id, 'LEAD' FROM leads WHERE company_id = $1 AND owner_id = $2 ORDER BY id LIMIT 4)
       UNION ALL (SELECT id, 'ACCOUNT' FROM accounts WHERE company_id = $1 AND owner_id = $2 ORDER BY id LIMIT 3)`,
      [org.companyId, users.vp.id],
    );
    for (const { id, type } of shared)
      await gql(
        `mutation { shareRecord(input: { objectType: ${type}, recordId: "${id}", granteeType: USER, granteeId: "${users.rep1.id}" }) { id } }`,
        {},
        admin,
      );
    // Another company with the same data shape: none of it may reach this one's figures.
    other = await buildSharingOrg(t.app);
    await db.query(
      `INSERT INTO deals (company_id, owner_id, name, stage, amount, probability, close_date)
       SELECT $1, $2, 'Other ' || n, 'PROPOSAL', 9999, 50, date '2026-02-01' FROM generate_series(1, 50) n`,
      [other.companyId, other.users.rep1.id],
    );
  });

  afterAll(() => t?.stop());

  it('random reports for admin, manager, reps and support: MATERIALIZED = LIVE = reference SQL', async () => {
    await checkRandomReports(3);
    await expectRollupsExact();
  });

  it('stays exact after single and bulk updates and deletes that move sums, minimums and maximums', async () => {
    const db = t.app.dataSource;
    const admin = org.users.admin.token;
    // Through the API: the largest deal loses its amount, one deal changes stage and owner, one is deleted.
    const [largest] = await db.query<Array<{ id: string }>>(
      'SELECT id FROM deals WHERE company_id = $1 ORDER BY amount DESC LIMIT 1',
      [org.companyId],
    );
    await gql(`mutation { updateDeal(id: "${largest!.id}", input: { amount: 1 }) { id } }`, {}, admin);
    const [moved, removed] = await db.query<Array<{ id: string }>>(
      'SELECT id FROM deals WHERE company_id = $1 ORDER BY id LIMIT 2',
      [org.companyId],
    );
    await gql(
      `mutation { updateDeal(id: "${moved!.id}", input: { stage: CLOSED_WON, ownerId: "${org.users.rep2.id}" }) { id } }`,
      {},
      admin,
    );
    await gql(`mutation { deleteDeal(id: "${removed!.id}") }`, {}, admin);
    // Bulk, in single statements: many groups lose their extremes at once; a group is emptied.
    await db.query(
      `UPDATE deals SET amount = amount * 2, probability = 100 - probability WHERE company_id = $1 AND stage = 'NEGOTIATION'`,
      [org.companyId],
    );
    await db.query(`DELETE FROM deals WHERE company_id = $1 AND stage = 'CLOSED_LOST' AND owner_id = $2`, [
      org.companyId,
      org.users.sup.id,
    ]);
    await db.query(`DELETE FROM leads WHERE company_id = $1 AND score > 90`, [org.companyId]);
    await db.query(
      `UPDATE leads SET source = NULL, score = score + 1 WHERE company_id = $1 AND status = 'NEW'`,
      [org.companyId],
    );
    // A statement that changes the primary key too (rows are matched on what the rollups read, not on id).
    await db.query(
      `UPDATE leads SET id = gen_random_uuid(), status = 'CONTACTED' WHERE company_id = $1 AND score BETWEEN 10 AND 14`,
      [org.companyId],
    );
    await db.query(`UPDATE accounts SET employees = NULL WHERE company_id = $1 AND country = 'US'`, [
      org.companyId,
    ]);
    await expectRollupsExact();
    await checkRandomReports(2);
  });

  it('a group that loses an extreme is recomputed from its own records: a UTC month to its edges, the missing-value group, a day month', async () => {
    const db = t.app.dataSource;
    const rep1 = org.users.rep1.id;
    // One owner and status, no source: March (UTC) holds its first and last instants and a middle record with the
    // largest score; the instants just outside March score higher still, so a month read too wide would show them.
    const leads = await db.query<Array<{ id: string; at: string }>>(
      `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, source, score, estimated_value, created_at)
       SELECT $1, $2, 'Edge', at, 'QUALIFIED', NULL, score, score * 2, at::timestamptz
         FROM (VALUES ('2026-02-28T23:59:59.999Z', 998), ('2026-03-01T00:00:00Z', 400), ('2026-03-15T12:00:00Z', 900),
                      ('2026-03-31T23:59:59.999Z', 450), ('2026-04-01T00:00:00Z', 999)) AS v(at, score)
       RETURNING id, last_name AS at`,
      [org.companyId, rep1],
    );
    const lead = (at: string) => leads.find((row) => row.at === at)!.id;
    const marchMax = async () => {
      const [row] = await db.query<Array<{ max: string }>>(
        `SELECT max(score_max) AS max FROM report_rollup_lead_created_month
          WHERE company_id = $1 AND owner_id = $2 AND status = 'QUALIFIED' AND created_at_month = '2026-03-01'`,
        [org.companyId, rep1],
      );
      return Number(row!.max);
    };
    expect(await marchMax()).toBe(900);
    await db.query('DELETE FROM leads WHERE id = $1', [lead('2026-03-15T12:00:00Z')]);
    expect(await marchMax()).toBe(450);
    await db.query('UPDATE leads SET score = 0 WHERE id = $1', [lead('2026-03-31T23:59:59.999Z')]);
    expect(await marchMax()).toBe(400);
    // The missing-source group of rep1 loses its maximum (999): the next is found among records without a source.
    await db.query('DELETE FROM leads WHERE id = $1', [lead('2026-04-01T00:00:00Z')]);
    const [{ max }] = (await db.query<Array<{ max: string }>>(
      `SELECT max(score_max) AS max FROM report_rollup_lead_source WHERE company_id = $1 AND owner_id = $2 AND source IS NULL`,
      [org.companyId, rep1],
    )) as [{ max: string }];
    const [{ expected }] = (await db.query<Array<{ expected: string }>>(
      'SELECT max(score) AS expected FROM leads WHERE company_id = $1 AND owner_id = $2 AND source IS NULL',
      [org.companyId, rep1],
    )) as [{ expected: string }];
    expect(Number(max)).toBe(Number(expected));
    // A day field's month: May holds its last day; 1 June, outside it, has a larger amount. Deals without a close day
    // form a group of their own, which loses its largest amount too.
    const deals = await db.query<Array<{ id: string }>>(
      `INSERT INTO deals (company_id, owner_id, name, stage, amount, probability, close_date)
       SELECT $1, $2, 'Edge ' || n, 'PROPOSAL', amount, 50, day::date
         FROM (VALUES (1, 70000, '2026-05-01'), (2, 90000, '2026-05-31'), (3, 95000, '2026-06-01'), (4, 99000, NULL))
              AS v(n, amount, day)
       ORDER BY n RETURNING id`,
      [org.companyId, rep1],
    );
    await db.query('UPDATE deals SET amount = 1 WHERE id = ANY($1::uuid[])', [[deals[1]!.id, deals[3]!.id]]);
    const [{ may }] = (await db.query<Array<{ may: string }>>(
      `SELECT max(amount_max) AS may FROM report_rollup_deal_close_month
        WHERE company_id = $1 AND owner_id = $2 AND stage = 'PROPOSAL' AND close_date_month = '2026-05-01'`,
      [org.companyId, rep1],
    )) as [{ may: string }];
    expect(Number(may)).toBe(70000);
    await expectRollupsExact();
  });

  it('materializes criteria rules at a rebuild, stays exact through writes, and corrects live for a rule changed since', async () => {
    const db = t.app.dataSource;
    const admin = org.users.admin.token;
    await gql('mutation { precomputeCommonReports { name } }', {}, admin);
    // rep2's rule on deal amounts and on account employees now live in the rule masks of the rollups.
    const [{ masked }] = (await db.query<Array<{ masked: string }>>(
      `SELECT count(*) AS masked FROM report_rollup_deal_stage WHERE company_id = $1 AND rule_mask <> 0`,
      [org.companyId],
    )) as [{ masked: string }];
    expect(Number(masked)).toBeGreaterThan(0);
    await checkRandomReports(1);
    // The triggers compute the same masks as the rebuild: every deal and account deleted and inserted again (one
    // statement each) gives back exactly the rollup rows the rebuild wrote.
    const snapshot = async () =>
      db.query<Array<{ r: string; row: unknown }>>(
        `SELECT r, row FROM (SELECT 'stage' AS r, to_jsonb(x) - 'stale' AS row FROM report_rollup_deal_stage x WHERE company_id = $1
          UNION ALL SELECT 'month', to_jsonb(x) - 'stale' FROM report_rollup_deal_close_month x WHERE company_id = $1
          UNION ALL SELECT 'country', to_jsonb(x) - 'stale' FROM report_rollup_account_country x WHERE company_id = $1) u
         ORDER BY r, row::text`,
        [org.companyId],
      );
    const rebuilt = await snapshot();
    for (const table of ['deals', 'accounts'])
      await db.transaction(async (manager) => {
        await manager.query(
          `CREATE TEMP TABLE again ON COMMIT DROP AS SELECT * FROM ${table} WHERE company_id = $1`,
          [org.companyId],
        );
        await manager.query(`DELETE FROM ${table} WHERE company_id = $1`, [org.companyId]);
        await manager.query(`INSERT INTO ${table} SELECT * FROM again`);
      });
    expect(await snapshot()).toEqual(rebuilt);
    // Writes after the rebuild compute their records' masks in the trigger.
    await db.query(
      `UPDATE deals SET amount = amount + 3500 WHERE company_id = $1 AND amount BETWEEN 4000 AND 6000`,
      [org.companyId],
    );
    await db.query(
      `INSERT INTO deals (company_id, owner_id, name, stage, amount, probability) VALUES ($1, $2, 'Late big one', 'PROPOSAL', 123456, 40)`,
      [org.companyId, org.users.vp.id],
    );
    await expectRollupsExact();
    await checkRandomReports(1);
    // The rule changes: its bit no longer describes it, so its records are counted live until the next rebuild.
    const [{ id }] = (await db.query<Array<{ id: string }>>(
      `SELECT id FROM sharing_rules WHERE company_id = $1 AND name = 'big'`,
      [org.companyId],
    )) as [{ id: string }];
    await gql(
      `mutation { updateSharingRule(id: "${id}", input: { objectType: DEAL, name: "big", ruleType: CRITERIA, criteria: [{ field: "amount", operator: gte, value: 3000 }], target: { type: USER, id: "${org.users.rep2.id}" } }) { id } }`,
      {},
      admin,
    );
    await checkRandomReports(1);
  });

  it('more criteria rules than a mask holds: the rest are corrected live, and the answer stays exact', async () => {
    const admin = org.users.admin.token;
    // 70 rules for rep1: the first 63 (on large amounts) get bits; the last 7 (low probabilities, other deals) are
    // corrected live. All meet in one report.
    for (let i = 0; i < 70; i++) {
      const [field, operator, value] =
        i < 63 ? ['amount', 'gte', 9000 + 10 * i] : ['probability', 'lte', i - 63];
      await gql(
        `mutation { createSharingRule(input: { objectType: DEAL, name: "many ${i}", ruleType: CRITERIA, criteria: [{ field: "${field}", operator: ${operator}, value: ${value} }, { field: "stage", operator: ne, value: "CLOSED_LOST" }], target: { type: USER, id: "${org.users.rep1.id}" } }) { id } }`,
        {},
        admin,
      );
    }
    await gql('mutation { precomputeCommonReports(entityType: DEAL) { name } }', {}, admin);
    const [{ bits }] = (await t.app.dataSource.query<Array<{ bits: string }>>(
      `SELECT count(*) AS bits FROM report_criteria_rules WHERE company_id = $1 AND object_type = 'DEAL'`,
      [org.companyId],
    )) as [{ bits: string }];
    expect(Number(bits)).toBe(63);
    // The live part matters: some deals rep1 reads only through the rules without a bit.
    const [{ only }] = (await t.app.dataSource.query<Array<{ only: string }>>(
      `SELECT count(*) AS only FROM deals WHERE company_id = $1 AND probability <= 6 AND stage <> 'CLOSED_LOST'
          AND amount < 9000 AND owner_id <> $2`,
      [org.companyId, org.users.rep1.id],
    )) as [{ only: string }];
    expect(Number(only)).toBeGreaterThan(0);
    const ids = await visibleIds('rep1', 'DEAL');
    const input = {
      entityType: 'DEAL',
      aggregates: [
        { name: 'n', type: 'COUNT', dimensions: ['stage'] },
        { name: 'top', type: 'MAX', field: 'probability', dimensions: ['closeDate:quarter'] },
      ],
    };
    const materialized = await report(org.users.rep1.token, { ...input, source: 'MATERIALIZED' });
    expectSameRows(
      materialized.aggregates[0]!.rows,
      await referenceRows(
        `SELECT json_build_object('stage', stage) AS k, count(*) AS v FROM deals WHERE company_id = $1 AND id = ANY($2::uuid[]) GROUP BY stage ORDER BY stage`,
        ids,
        [],
      ),
      'count by stage',
    );
    expectSameRows(
      materialized.aggregates[1]!.rows,
      await referenceRows(
        `SELECT json_build_object('closeDate:quarter', to_char(date_trunc('quarter', close_date::timestamp), 'YYYY-MM-DD')) AS k, max(probability) AS v
           FROM deals WHERE company_id = $1 AND id = ANY($2::uuid[])
          GROUP BY date_trunc('quarter', close_date::timestamp) ORDER BY date_trunc('quarter', close_date::timestamp) NULLS LAST`,
        ids,
        [],
      ),
      'max by quarter',
    );
    // Gone again (through the API, which invalidates cached visibility), and the rollups rebuilt without them.
    const many = await t.app.dataSource.query<Array<{ id: string }>>(
      `SELECT id FROM sharing_rules WHERE company_id = $1 AND name LIKE 'many %'`,
      [org.companyId],
    );
    for (const { id } of many) await gql(`mutation { deleteSharingRule(id: "${id}") }`, {}, admin);
    await gql('mutation { precomputeCommonReports(entityType: DEAL) { name } }', {}, admin);
  });

  it('the installed rollup schema is the one this code generates, the migration takes it all out again, and writes under an older snapshot are refused', async () => {
    const runner = t.app.dataSource.createQueryRunner();
    await runner.startTransaction();
    try {
      // The code's schema built beside the installed one, over empty copies of the record tables; then both compared
      // object by object. A change to the presets, the criteria comparisons or the triggers needs a migration.
      await runner.query('CREATE SCHEMA rollup_expected');
      await runner.query('SET LOCAL search_path = rollup_expected, public');
      for (const table of ['leads', 'deals', 'accounts'])
        await runner.query(`CREATE TABLE rollup_expected.${table} (LIKE public.${table} INCLUDING ALL)`);
      for (const statement of rollupSchemaSql()) await runner.query(statement);
      const expected = await rollupSchema(runner, 'rollup_expected');
      // The rules, seven rollups, and a pending table per record type; a statement and a truncate function per
      // record type, and the commit-time apply.
      expect(expected.tables.length).toBe(11);
      expect(expected.functions.length).toBe(7);
      expect(expected.triggers.length).toBe(12);
      expect(await rollupSchema(runner, 'public')).toEqual(expected);
      await runner.query('DROP SCHEMA rollup_expected CASCADE');
      // The migrations' downs, newest first, remove every object of them.
      await new RollupRepairFromIndexes1765600000001().down(runner);
      await new RollupExtremeHolders1765600000000().down(runner);
      await new RollupGroupRepair1765400000000().down(runner);
      await new CommitTimeDerivedWrites1765300000000().down(runner);
      await new ReportRollups1765100000000().down(runner);
      expect(await rollupSchema(runner, 'public')).toEqual({ tables: [], functions: [], triggers: [] });
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
    }
    await expect(
      t.app.dataSource.transaction('REPEATABLE READ', (manager) =>
        manager.query(`UPDATE deals SET amount = amount WHERE company_id = $1`, [org.companyId]),
      ),
    ).rejects.toThrow(/under READ COMMITTED/);
  });

  it('concurrent writers moving records between the same groups in opposite directions neither deadlock nor drift', async () => {
    const db = t.app.dataSource;
    const owner = org.users.vp.id;
    const ids = await db.query<Array<{ id: string }>>(
      `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score, estimated_value)
       SELECT $1, $2, 'C', 'Churn ' || n, CASE WHEN n % 2 = 0 THEN 'NEW' ELSE 'QUALIFIED' END, n, n * 3
         FROM generate_series(1, 8) n RETURNING id`,
      [org.companyId, owner],
    );
    // Each writer flips its own two leads (NEW <-> QUALIFIED, one each way) in one transaction, many times over.
    const writer = async (mine: string[]) => {
      for (let i = 0; i < 25; i++)
        await db.transaction(async (manager) => {
          for (const id of mine)
            await manager.query(
              `UPDATE leads SET status = CASE status WHEN 'NEW' THEN 'QUALIFIED' ELSE 'NEW' END, score = score + 1 WHERE id = $1`,
              [id],
            );
        });
    };
    const pairs = [0, 1, 2, 3].map((w) => [ids[2 * w]!.id, ids[2 * w + 1]!.id]);
    const outcomes = await Promise.allSettled(pairs.map((pair, w) => writer(w % 2 ? pair.reverse() : pair)));
    expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
    await expectRollupsExact();
  });

  it('a group loses an extreme only with the last record holding it, and counts its holders through every write', async () => {
    const db = t.app.dataSource;
    const owner = org.users.vp.id;
    // The owner's leads of a source of their own: one group of lead_source (split by rule masks at most).
    const group = async () => {
      const [row] = await db.query<
        Array<{
          min: number;
          min_n: string;
          max: number;
          max_n: string;
          value_max: string;
          value_max_n: string;
        }>
      >(
        `SELECT min, min_n, max, max_n, value_max, value_max_n FROM (
           SELECT min(score_min) AS min, sum(score_min_n) FILTER (WHERE score_min = g_min) AS min_n,
                  max(score_max) AS max, sum(score_max_n) FILTER (WHERE score_max = g_max) AS max_n,
                  max(estimated_value_max) AS value_max,
                  sum(estimated_value_max_n) FILTER (WHERE estimated_value_max = g_value_max) AS value_max_n
             FROM (SELECT *, min(score_min) OVER () AS g_min, max(score_max) OVER () AS g_max,
                          max(estimated_value_max) OVER () AS g_value_max
                     FROM report_rollup_lead_source WHERE company_id = $1 AND owner_id = $2 AND source = 'Holders') r) x`,
        [org.companyId, owner],
      );
      return {
        min: Number(row!.min),
        minHolders: Number(row!.min_n),
        max: Number(row!.max),
        maxHolders: Number(row!.max_n),
        valueMax: Number(row!.value_max),
        valueMaxHolders: Number(row!.value_max_n),
      };
    };
    const ids = (
      await db.query<Array<{ id: string }>>(
        `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, source, score, estimated_value)
         SELECT $1, $2, 'H', 'Holder ' || n, 'NEW', 'Holders', s, v
           FROM (VALUES (1, 5, 10), (2, 5, 20), (3, 9, 20), (4, 9, 15)) AS x(n, s, v) ORDER BY n RETURNING id`,
        [org.companyId, owner],
      )
    ).map((row) => row.id);
    expect(await group()).toEqual({
      min: 5,
      minHolders: 2,
      max: 9,
      maxHolders: 2,
      valueMax: 20,
      valueMaxHolders: 2,
    });
    // One of two holders leaves each extreme: they stay, held by one record each.
    await db.query(`DELETE FROM leads WHERE id = $1`, [ids[0]]);
    await db.query(`UPDATE leads SET score = 7, estimated_value = 12 WHERE id = $1`, [ids[3]]);
    expect(await group()).toEqual({
      min: 5,
      minHolders: 1,
      max: 9,
      maxHolders: 1,
      valueMax: 20,
      valueMaxHolders: 2,
    });
    await expectRollupsExact();
    // A record comes to the minimum's value as its last holder leaves it, in one transaction: still held.
    await db.transaction(async (manager) => {
      await manager.query(`UPDATE leads SET score = 5 WHERE id = $1`, [ids[3]]);
      await manager.query(`UPDATE leads SET score = 8, estimated_value = 30 WHERE id = $1`, [ids[1]]);
    });
    expect(await group()).toEqual({
      min: 5,
      minHolders: 1,
      max: 9,
      maxHolders: 1,
      valueMax: 30,
      valueMaxHolders: 1,
    });
    // The last holders leave: the group is repaired from its records.
    await db.query(`UPDATE leads SET score = 6, estimated_value = 1 WHERE id = ANY($1::uuid[])`, [
      [ids[1], ids[3]],
    ]);
    expect(await group()).toEqual({
      min: 6,
      minHolders: 2,
      max: 9,
      maxHolders: 1,
      valueMax: 20,
      valueMaxHolders: 1,
    });
    await expectRollupsExact();
    await db.query(`DELETE FROM leads WHERE id = ANY($1::uuid[])`, [ids]);
    expect(
      await db.query(`SELECT 1 FROM report_rollup_lead_source WHERE company_id = $1 AND source = 'Holders'`, [
        org.companyId,
      ]),
    ).toEqual([]);
  });

  it('a write through a second gateway and a sharing change show in the next report', async () => {
    let second: SpawnedProcess | undefined;
    try {
      second = spawnBuilt('main', testProcessEnv({ REPORT_ROLLUP_MAX_RATIO: '1' }));
      const [, url] = await second.waitFor(/"url":"(http:\/\/[^"]+)\/graphql"/);
      const input = {
        entityType: 'DEAL',
        aggregates: [
          { name: 'count', type: 'COUNT', dimensions: ['stage'] },
          { name: 'top', type: 'MAX', field: 'amount' },
        ],
        filters: [{ field: 'stage', op: 'EQ', value: 'NEGOTIATION' }],
        source: 'MATERIALIZED',
      };
      const rep2 = org.users.rep2.token;
      const before = await report(rep2, input);
      expect(before.source).toBe('MATERIALIZED');
      const count = (r: typeof before) => r.aggregates[0]!.rows[0]?.value ?? 0;
      const created = await fetch(`${url!}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${rep2}` },
        body: JSON.stringify({
          query: `mutation { createDeal(input: { name: "Huge", stage: NEGOTIATION, amount: 99999999 }) { id } }`,
        }),
      });
      expect(((await created.json()) as { errors?: unknown }).errors).toBeUndefined();
      const after = await report(rep2, input);
      expect(after.source).toBe('MATERIALIZED');
      expect(count(after)).toBe(count(before) + 1);
      expect(after.aggregates[1]!.rows[0]!.value).toBe(99999999);
      // Read from the second gateway too.
      expect((await report(rep2, input, url)).aggregates).toEqual(after.aggregates);

      // A new owner rule gives rep2 the manager's deals: the next report counts them.
      const managerDeals = await t.app.dataSource.query<Array<{ n: string }>>(
        `SELECT count(*) AS n FROM deals WHERE company_id = $1 AND owner_id = $2 AND stage = 'NEGOTIATION' AND amount < 7000`,
        [org.companyId, org.users.mgr.id],
      );
      expect(Number(managerDeals[0]!.n)).toBeGreaterThan(0);
      await gql(
        `mutation { createSharingRule(input: { objectType: DEAL, name: "mgr to rep2", ruleType: OWNER, source: { type: ROLE, id: "${org.roles.manager}" }, target: { type: USER, id: "${org.users.rep2.id}" } }) { id } }`,
        {},
        org.users.admin.token,
      );
      const shared = await report(rep2, input);
      expect(shared.source).toBe('MATERIALIZED');
      expect(count(shared)).toBe(count(after) + Number(managerDeals[0]!.n));
    } finally {
      second?.child.kill('SIGTERM');
      await second?.exited;
    }
  });

  it('keeps an answer per visibility key and data version: reused until a write or a share, never across users or companies', async () => {
    const db = t.app.dataSource;
    const input = {
      entityType: 'DEAL',
      aggregates: [
        { name: 'deals', type: 'COUNT', dimensions: ['stage'] },
        { name: 'amount', type: 'SUM', field: 'amount', dimensions: ['ownerId'] },
      ],
    };
    const cache = () => t.app.services.reports.resultCache;
    const fresh = async (user: UserName, who = org) => {
      const token = who.users[user].token;
      const live = await report(token, { ...input, source: 'LIVE' });
      return { answer: await report(token, input), live };
    };
    const expectLive = (got: { answer: { aggregates: any[] }; live: { aggregates: any[] } }) =>
      got.answer.aggregates.forEach((aggregate, i) =>
        expectSameRows(aggregate.rows, got.live.aggregates[i]!.rows, aggregate.name),
      );

    // The first answer is computed and kept; the same question again is answered from it.
    let before = cache();
    const admin = await fresh('admin');
    expectLive(admin);
    expect(cache().misses).toBe(before.misses + 1);
    before = cache();
    expect(await report(org.users.admin.token, input)).toEqual(admin.answer);
    expect(cache().hits).toBe(before.hits + 1);

    // Another user sees other records: their own answer, computed, not the admin's.
    before = cache();
    const rep = await fresh('rep1');
    expectLive(rep);
    expect(rep.answer).not.toEqual(admin.answer);
    expect(cache().misses).toBe(before.misses + 1);
    // Another company's admin: its own records only, whatever this company's answer held.
    before = cache();
    const otherAdmin = await fresh('admin', other);
    expectLive(otherAdmin);
    expect(otherAdmin.answer.aggregates[0]!.rows).toEqual([{ dimensions: { stage: 'PROPOSAL' }, value: 50 }]);
    expect(cache().misses).toBe(before.misses + 1);

    // A write to the company's deals (even one that changes no figure of the report) moves the data version.
    const [moved] = await db.query<Array<{ id: string }>>(
      `SELECT id FROM deals WHERE company_id = $1 AND owner_id = $2 AND stage <> 'CLOSED_WON' ORDER BY id LIMIT 1`,
      [org.companyId, org.users.rep1.id],
    );
    await db.query(`UPDATE deals SET stage = 'CLOSED_WON' WHERE id = $1`, [moved!.id]);
    before = cache();
    const afterWrite = await fresh('rep1');
    expectLive(afterWrite);
    expect(afterWrite.answer).not.toEqual(rep.answer);
    expect(cache().misses).toBe(before.misses + 1);
    // The other company's answer is still held: its data did not move.
    before = cache();
    expect(await report(other.users.admin.token, input)).toEqual(otherAdmin.answer);
    expect(cache().hits).toBe(before.hits + 1);

    // A manual share changes what rep1 may read (the same data version): a new visibility key, a new answer.
    const [unseen] = await db.query<Array<{ id: string }>>(
      `SELECT d.id FROM deals d WHERE d.company_id = $1 AND d.owner_id = $2 AND d.stage <> 'PROPOSAL'
          AND NOT EXISTS (SELECT 1 FROM record_shares s WHERE s.record_id = d.id) ORDER BY d.id LIMIT 1`,
      [org.companyId, org.users.vp.id],
    );
    const shareInput = `{ objectType: DEAL, recordId: "${unseen!.id}", granteeType: USER, granteeId: "${org.users.rep1.id}" }`;
    await gql(`mutation { shareRecord(input: ${shareInput}) { id } }`, {}, org.users.admin.token);
    const shared = await fresh('rep1');
    expectLive(shared);
    expect(shared.answer).not.toEqual(afterWrite.answer);
    await gql(`mutation { unshareRecord(input: ${shareInput}) }`, {}, org.users.admin.token);
    const unshared = await fresh('rep1');
    expectLive(unshared);
    expect(unshared.answer).toEqual(afterWrite.answer);
  });

  it('picks the rollup by default, says why not otherwise, and refuses MATERIALIZED it cannot keep', async () => {
    const admin = org.users.admin.token;
    // With statistics, the planner prices a few dozen rollup rows below the company's deals.
    await t.app.dataSource.query('ANALYZE deals, report_rollup_deal_stage');
    const byStage = await report(admin, {
      entityType: 'DEAL',
      aggregates: [{ name: 'pipeline', type: 'SUM', field: 'amount', dimensions: ['stage'] }],
    });
    expect(byStage.aggregates[0]).toMatchObject({ source: 'MATERIALIZED', rollup: 'deal_stage' });
    // A week is finer than a month; a filter on a measure and a mid-month range are not in any rollup.
    for (const input of [
      { aggregates: [{ name: 'a', type: 'COUNT', dimensions: ['closeDate:week'] }] },
      { aggregates: [{ name: 'a', type: 'COUNT' }], filters: [{ field: 'amount', op: 'GTE', value: 10 }] },
      {
        aggregates: [{ name: 'a', type: 'COUNT' }],
        dateRange: { field: 'closeDate', from: '2026-01-15T00:00:00Z' },
      },
      // Timestamps are cut into months in UTC: another zone's months are not the rollup's.
      {
        aggregates: [{ name: 'a', type: 'COUNT', dimensions: ['createdAt:month'] }],
        entityType: 'LEAD',
        timeZone: 'Asia/Tokyo',
      },
    ]) {
      const full = { entityType: 'DEAL', ...input };
      const auto = await report(admin, full);
      expect(auto.source).toBe('LIVE');
      const forced = await t.gql(REPORT, { input: { ...full, source: 'MATERIALIZED' } }, admin);
      expect(forced.errors?.[0]?.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        violations: [
          { field: 'input.source', rule: expect.stringMatching(/no usable rollup holds aggregates\[0\]/) },
        ],
      });
    }
  });

  it('precomputeCommonReports: admins only; rebuilds exactly while writes go on; a rollup too large is not read', async () => {
    const rep = await t.gql('mutation { precomputeCommonReports { name } }', {}, org.users.rep1.token);
    expect(rep.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    const db = t.app.dataSource;
    const writes = (async () => {
      for (let i = 0; i < 20; i++)
        await db.query(
          `INSERT INTO deals (company_id, owner_id, name, stage, amount, probability, close_date)
           VALUES ($1, $2, 'During rebuild', 'PROSPECTING', $3, 10, date '2026-03-03')`,
          [org.companyId, org.users.vp.id, 100 + i],
        );
    })();
    const query = `mutation ($e: ObjectType) { precomputeCommonReports(entityType: $e) {
      name entityType dimensions rollupRows recordRows buildMs usable } }`;
    const [rebuilt] = await Promise.all([gql(query, { e: 'DEAL' }, org.users.admin.token), writes]);
    const states = rebuilt.precomputeCommonReports as Array<Record<string, unknown>>;
    expect(states.map((s) => s.name)).toEqual(['deal_stage', 'deal_close_month']);
    const [{ n }] = (await db.query<Array<{ n: string }>>(
      'SELECT count(*) AS n FROM deals WHERE company_id = $1',
      [org.companyId],
    )) as [{ n: string }];
    // The rebuild saw some or all of the concurrent writes; the triggers added the rest.
    expect(states[0]!.recordRows).toBeLessThanOrEqual(Number(n));
    expect(states[1]).toMatchObject({ dimensions: ['ownerId', 'closeDate:month', 'stage'], usable: true });
    // Admins read the same state without rebuilding; others may not.
    const listed = await gql(
      '{ reportRollups { name rollupRows recordRows usable } }',
      {},
      org.users.admin.token,
    );
    expect(
      (listed.reportRollups as Array<Record<string, unknown>>).filter((r) =>
        String(r.name).startsWith('deal_'),
      ),
    ).toEqual(
      states.map(({ name, rollupRows, recordRows, usable }) => ({ name, rollupRows, recordRows, usable })),
    );
    const hidden = await t.gql('{ reportRollups { name } }', {}, org.users.rep1.token);
    expect(hidden.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    await expectRollupsExact();

    // The same rollups judged against a 1% budget: both are larger than 1% of the deals, so reports run live.
    const settings = t.app.services.reports.settings;
    settings.rollupMaxRatio = 0.01;
    try {
      const judged = (await gql(query, { e: 'DEAL' }, org.users.admin.token))
        .precomputeCommonReports as Array<Record<string, unknown>>;
      expect(judged.map((s) => s.usable)).toEqual([false, false]);
      const input = { entityType: 'DEAL', aggregates: [{ name: 'n', type: 'COUNT', dimensions: ['stage'] }] };
      expect((await report(org.users.admin.token, input)).source).toBe('LIVE');
      const forced = await t.gql(
        REPORT,
        { input: { ...input, source: 'MATERIALIZED' } },
        org.users.admin.token,
      );
      expect(forced.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    } finally {
      settings.rollupMaxRatio = 1;
      await gql(query, { e: 'DEAL' }, org.users.admin.token);
    }
    const metrics = await t.app.metrics.registry.getSingleMetricAsString('crm_report_rollup_total');
    expect(metrics).toMatch(/crm_report_rollup_total\{result="hit",process="gateway"\} [1-9]/);
    expect(metrics).toMatch(/crm_report_rollup_total\{result="too_large",process="gateway"\} [1-9]/);
  });
});
