import type { QueryRunner } from 'typeorm';
import { createTenant, insertLead, type TestTenant } from '../helpers/fixtures';
import { startTestApp, type TestApp } from '../helpers/test-app';

const SEARCH = `query ($input: SearchInput!) { search(input: $input) {
  total facetSource window items { ... on Lead { id } } facets { buckets { key count } } } }`;

interface Answer {
  total: number;
  facetSource: 'INDEX' | 'LIVE';
  window: 'HIT' | 'MISS';
  ids: string[];
  statuses: Record<string, number>;
}

/**
 * The search versions are striped over slots that concurrent writers take at commit, and readers key cached answers
 * and index catch-ups by the vector of slot versions. If that vector did not name exactly the changes a snapshot
 * sees, one of these answers would differ from the records in Postgres: commits land out of the order their
 * transactions began and took their slots, an index catches up between each, and a transaction that took its slot
 * early (its commit-time step run early) commits after later ones.
 */
describe('search versions striped over slots: the index equals SQL after every commit', () => {
  let t: TestApp;
  let a: TestTenant;
  const leads: string[] = [];
  const open: QueryRunner[] = [];

  beforeAll(async () => {
    t = await startTestApp();
    a = await createTenant(t.app);
    // The transactions held open own their leads apart (admin), so they hold no report rollup group the others need.
    for (let i = 0; i < 12; i++)
      leads.push(await insertLead(t.app, a, i === 0 || i === 2 ? a.admin.id : a.rep.id, `Slot ${i}`));
  });
  afterAll(async () => {
    for (const runner of open) await runner.release().catch(() => undefined);
    await t.stop();
  });

  async function search(): Promise<Answer> {
    const res = await t.gql<{ search: any }>(
      SEARCH,
      { input: { entityType: 'LEAD', pageSize: 100, facets: [{ field: 'status' }] } },
      a.admin.token,
    );
    expect(res.errors).toBeUndefined();
    const found = res.data!.search;
    return {
      total: found.total,
      facetSource: found.facetSource,
      window: found.window,
      ids: (found.items as Array<{ id: string }>).map((item) => item.id).sort(),
      statuses: Object.fromEntries(
        (found.facets[0].buckets as Array<{ key: string; count: number }>).map((b) => [b.key, b.count]),
      ),
    };
  }

  /** What Postgres holds now, committed. */
  async function truth(): Promise<Omit<Answer, 'facetSource' | 'window'>> {
    const rows = await t.app.dataSource.query<Array<{ id: string; status: string }>>(
      'SELECT id, status FROM leads WHERE company_id = $1',
      [a.companyId],
    );
    const statuses: Record<string, number> = {};
    for (const row of rows) statuses[row.status] = (statuses[row.status] ?? 0) + 1;
    return { total: rows.length, ids: rows.map((row) => row.id).sort(), statuses };
  }

  /** The index (caught up) answers what Postgres holds, and the answer cached under its version does too. */
  async function expectExact(): Promise<void> {
    const expected = await truth();
    const first = await search();
    expect(first).toEqual({ ...expected, facetSource: 'INDEX', window: first.window });
    const again = await search();
    expect(again).toEqual({ ...expected, facetSource: 'INDEX', window: 'HIT' });
  }

  async function begin(): Promise<QueryRunner> {
    const runner = t.app.dataSource.createQueryRunner();
    open.push(runner);
    await runner.connect();
    await runner.startTransaction();
    return runner;
  }

  const update = (id: string, status: string) =>
    t.gql(`mutation { updateLead(id: "${id}", input: { status: ${status} }) { id } }`, {}, a.admin.token);

  async function slots(): Promise<number> {
    const [row] = await t.app.dataSource.query<[{ n: number }]>(
      "SELECT count(*)::int AS n FROM search_versions WHERE company_id = $1 AND record_type = 'LEAD'",
      [a.companyId],
    );
    return row.n;
  }

  it('through out-of-order commits, a slot taken early and committed late, and a long transaction', async () => {
    // The index is built and answering.
    for (let i = 0; i < 100 && (await search()).facetSource !== 'INDEX'; i++)
      await new Promise((resolve) => setTimeout(resolve, 100));
    await expectExact();

    // Early: its commit-time step runs now (constraints made immediate), so it holds a version slot, bumped, while
    // it stays open: the commits below take other slots, and it commits after them.
    const early = await begin();
    await early.query("UPDATE leads SET status = 'CONVERTED' WHERE id = $1", [leads[0]]);
    await early.query('SET CONSTRAINTS ALL IMMEDIATE');
    // Long: writes first, takes its slot only when it commits, last.
    const long = await begin();
    await long.query(
      `INSERT INTO leads (id, company_id, owner_id, first_name, last_name, status)
       VALUES (gen_random_uuid(), $1, $2, 'Long', 'Transaction', 'UNQUALIFIED')`,
      [a.companyId, a.admin.id],
    );

    // Commits while both are open, one at a time and then side by side, each followed by a catch-up.
    for (const i of [1, 3, 5]) {
      expect((await update(leads[i]!, 'CONTACTED')).errors).toBeUndefined();
      await expectExact();
    }
    const together = await Promise.all(
      [leads[4]!, ...leads.slice(6, 12)].map((id) => update(id, 'QUALIFIED')),
    );
    expect(together.map((res) => res.errors)).toEqual(together.map(() => undefined));
    await expectExact();
    expect(await slots()).toBeGreaterThanOrEqual(2);
    expect((await search()).statuses.CONVERTED).toBeUndefined();

    // The early slot's transaction commits after the later ones: its change reaches the index.
    await early.commitTransaction();
    await expectExact();
    expect((await search()).statuses.CONVERTED).toBe(1);

    // More commits between, then the long transaction commits last.
    expect((await update(leads[1]!, 'NEW')).errors).toBeUndefined();
    await expectExact();
    await long.commitTransaction();
    await expectExact();
    expect((await search()).statuses.UNQUALIFIED).toBe(1);

    // A transaction that rolls back after taking a slot leaves nothing behind.
    const undone = await begin();
    await undone.query("UPDATE leads SET status = 'CONVERTED' WHERE id = $1", [leads[2]]);
    await undone.query('SET CONSTRAINTS ALL IMMEDIATE');
    expect((await update(leads[3]!, 'NEW')).errors).toBeUndefined();
    await expectExact();
    await undone.rollbackTransaction();
    await expectExact();
    expect((await update(leads[2]!, 'UNQUALIFIED')).errors).toBeUndefined();
    await expectExact();
    expect((await search()).statuses.UNQUALIFIED).toBe(2);
  });
});
