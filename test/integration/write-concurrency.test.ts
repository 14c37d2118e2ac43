import { createTenant, insertAccount, insertDeal, type TestTenant } from '../helpers/fixtures';
import { startTestApp, type TestApp } from '../helpers/test-app';

const POOL_SIZE = 3;

/**
 * A write transaction holds a pool connection. If it then reached for a second one (computing visibility through the
 * pool on a cold cache), concurrent writes would starve the pool and time out. Four times the pool size, cold.
 */
describe('concurrent writes on a cold cache with a small pool', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ DATABASE_POOL_SIZE: String(POOL_SIZE) });
  });
  afterAll(() => t.stop());

  it(`${4 * POOL_SIZE} concurrent createDeal (with an account), updateDeal and shareRecord calls all succeed`, async () => {
    const tenants: TestTenant[] = [];
    for (let i = 0; i < 4; i++) tenants.push(await createTenant(t.app));
    const accounts = await Promise.all(tenants.map((a) => insertAccount(t.app, a, a.rep.id)));
    const deals = await Promise.all(tenants.map((a, i) => insertDeal(t.app, a, a.rep.id, accounts[i]!)));

    // Every tenant is new to the cache: each first write compiles visibility from Postgres.
    const calls = Array.from({ length: 4 * POOL_SIZE }, (_, i) => {
      const a = tenants[i % tenants.length]!;
      const index = i % tenants.length;
      switch (Math.floor(i / tenants.length)) {
        case 0:
          return t.gql(
            `mutation { createDeal(input: { name: "c${i}", accountId: "${accounts[index]}" }) { id } }`,
            {},
            a.rep.token,
          );
        case 1:
          return t.gql(
            `mutation { updateDeal(id: "${deals[index]}", input: { probability: ${i} }) { id } }`,
            {},
            a.rep.token,
          );
        default:
          return t.gql(
            `mutation { shareRecord(input: { objectType: DEAL, recordId: "${deals[index]}", granteeType: USER, granteeId: "${a.admin.id}" }) { id } }`,
            {},
            a.rep.token,
          );
      }
    });
    const results = await Promise.all(calls);
    expect(results.map((r) => r.errors?.[0]?.message ?? 'ok')).toEqual(results.map(() => 'ok'));
  });
});

describe('editing a deal whose account the editor cannot see', () => {
  let t: TestApp;
  let a: TestTenant;
  let hiddenAccount: string;
  let visibleAccount: string;
  let dealId: string;

  beforeAll(async () => {
    t = await startTestApp();
    a = await createTenant(t.app);
    // Accounts are PRIVATE by default: the rep sees the accounts they own, not the admin's.
    hiddenAccount = await insertAccount(t.app, a, a.admin.id, 'Admin only');
    visibleAccount = await insertAccount(t.app, a, a.rep.id, 'Rep owned');
    dealId = await insertDeal(t.app, a, a.rep.id, hiddenAccount);
  });
  afterAll(() => t.stop());

  it('is allowed when the update does not touch accountId (EDIT on the deal is what counts)', async () => {
    const res = await t.gql(
      `mutation { updateDeal(id: "${dealId}", input: { probability: 40, name: "Renamed" }) { probability name account { id } } }`,
      {},
      a.rep.token,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data?.updateDeal).toEqual({ probability: 40, name: 'Renamed', account: null });
    const [row] = await t.app.dataSource.query<[{ account_id: string }]>(
      'SELECT account_id FROM deals WHERE id = $1',
      [dealId],
    );
    expect(row.account_id).toBe(hiddenAccount);
  });

  it('accepts the unchanged hidden accountId sent back by a full form', async () => {
    const res = await t.gql(
      `mutation { updateDeal(id: "${dealId}", input: { accountId: "${hiddenAccount}", probability: 45 }) { probability } }`,
      {},
      a.rep.token,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data?.updateDeal.probability).toBe(45);
  });

  it('still refuses setting accountId to an account the editor cannot see, and accepts one they can', async () => {
    const otherHidden = await insertAccount(t.app, a, a.admin.id, 'Also admin only');
    const refused = await t.gql(
      `mutation { updateDeal(id: "${dealId}", input: { accountId: "${otherHidden}" }) { id } }`,
      {},
      a.rep.token,
    );
    expect(refused.errors?.[0]?.message).toBe('input.accountId must be the id of an account you can see');
    const moved = await t.gql(
      `mutation { updateDeal(id: "${dealId}", input: { accountId: "${visibleAccount}" }) { account { name } } }`,
      {},
      a.rep.token,
    );
    expect(moved.errors).toBeUndefined();
    expect(moved.data?.updateDeal.account).toEqual({ name: 'Rep owned' });
  });
});

/**
 * Resolves once `parties` callers reached the same step, or after `ms` (a caller blocked inside a statement never
 * arrives): the transactions below run their statements side by side, so their lock requests interleave.
 */
function lockstep(parties: number, ms = 50): (step: number) => Promise<void> {
  const waiting = new Map<number, Array<() => void>>();
  return (step) => {
    const here = waiting.get(step) ?? [];
    waiting.set(step, here);
    if (here.length + 1 === parties) {
      here.splice(0).forEach((release) => release());
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      here.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  };
}

/**
 * The search change log and the report rollups are kept by triggers on the record tables, in the writing
 * transaction. Two transactions that write DIFFERENT records of one company must not deadlock on those derived rows
 * (the version of a company's record type, a rollup group shared by records of one owner and status), whatever order
 * their statements come in. The user rows here are disjoint on purpose: two transactions updating the SAME two leads
 * in opposite orders deadlock in Postgres on the leads themselves, which is no fault of the triggers.
 */
describe('multi-statement transactions writing records of one company in opposite orders', () => {
  let t: TestApp;
  let a: TestTenant;

  beforeAll(async () => {
    t = await startTestApp();
    a = await createTenant(t.app);
  });
  afterAll(() => t.stop());

  it('never deadlock on the search versions or rollup groups, and leave search and rollups exact', async () => {
    const db = t.app.dataSource;
    const owner = a.rep.id;
    const account = await insertAccount(t.app, a, owner);
    const lead = async (status: string) =>
      (
        await db.query<Array<{ id: string }>>(
          `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score, estimated_value)
           VALUES ($1, $2, 'Order', 'Lead', $3, 10, 100) RETURNING id`,
          [a.companyId, owner, status],
        )
      )[0]!.id;
    // (owner, NEW) and (owner, QUALIFIED) are one rollup group each; both deals are in (owner, PROSPECTING).
    const [newA, qualifiedB, qualifiedC, newD] = [
      await lead('NEW'),
      await lead('QUALIFIED'),
      await lead('QUALIFIED'),
      await lead('NEW'),
    ];
    const [dealP, dealQ] = [
      await insertDeal(t.app, a, owner, account),
      await insertDeal(t.app, a, owner, account),
    ];
    const bumpLead = (id: string) => ({
      sql: 'UPDATE leads SET score = score + 1, estimated_value = estimated_value + 1 WHERE id = $1',
      params: [id],
    });
    const bumpDeal = (id: string) => ({
      sql: 'UPDATE deals SET amount = amount + 1 WHERE id = $1',
      params: [id],
    });
    const insertLeadOf = (status: string) => ({
      sql: `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score, estimated_value)
            VALUES ($1, $2, 'Order', 'Inserted', $3, 1, 1)`,
      params: [a.companyId, owner, status],
    });
    // Group NEW then QUALIFIED then the deals' group, against the deals' group then QUALIFIED then NEW.
    const first = [bumpLead(newA), bumpLead(qualifiedB), insertLeadOf('NEW'), bumpDeal(dealP)];
    const second = [bumpDeal(dealQ), bumpLead(qualifiedC), bumpLead(newD), insertLeadOf('QUALIFIED')];

    const failures: string[] = [];
    for (let round = 0; round < 20 && failures.length === 0; round++) {
      const step = lockstep(2);
      const outcomes = await Promise.allSettled(
        [first, second].map((statements) =>
          db.transaction(async (manager) => {
            for (const [i, { sql, params }] of statements.entries()) {
              await manager.query(sql, params);
              await step(i);
            }
          }),
        ),
      );
      for (const outcome of outcomes)
        if (outcome.status === 'rejected')
          failures.push(`round ${round}: ${(outcome.reason as Error).message}`);
    }
    expect(failures).toEqual([]);

    // Exact right after the commits: the rollups against the records, and search's total against the leads.
    const [rollups, records] = await Promise.all([
      db.query(
        `SELECT status, sum(record_count)::int AS n, sum(score_sum)::int AS score, max(score_max)::int AS top
           FROM report_rollup_lead_status WHERE company_id = $1 GROUP BY status ORDER BY status`,
        [a.companyId],
      ),
      db.query(
        `SELECT status, count(*)::int AS n, sum(score)::int AS score, max(score)::int AS top
           FROM leads WHERE company_id = $1 GROUP BY status ORDER BY status`,
        [a.companyId],
      ),
    ]);
    expect(rollups).toEqual(records);
    const [dealRollup] = await db.query<Array<{ amount: string }>>(
      'SELECT sum(amount_sum)::text AS amount FROM report_rollup_deal_stage WHERE company_id = $1',
      [a.companyId],
    );
    const [dealRecords] = await db.query<Array<{ amount: string }>>(
      'SELECT sum(amount)::text AS amount FROM deals WHERE company_id = $1',
      [a.companyId],
    );
    expect(dealRollup).toEqual(dealRecords);
    const searched = await t.gql<{ search: { total: number } }>(
      `{ search(input: { entityType: LEAD, pageSize: 1 }) { total } }`,
      {},
      a.admin.token,
    );
    expect(searched.errors).toBeUndefined();
    expect(searched.data?.search.total).toBe(4 + 2 * 20);
  });

  it('count only what a transaction commits: a rolled-back savepoint, a lead inserted and deleted, one updated twice', async () => {
    const db = t.app.dataSource;
    const tenant = await createTenant(t.app);
    const leadsOf = () =>
      db.query(
        `SELECT status, count(*)::int AS n, sum(score)::int AS score FROM leads WHERE company_id = $1 GROUP BY status ORDER BY status`,
        [tenant.companyId],
      );
    const rollupsOf = () =>
      db.query(
        `SELECT status, sum(record_count)::int AS n, sum(score_sum)::int AS score FROM report_rollup_lead_status
          WHERE company_id = $1 AND record_count <> 0 GROUP BY status ORDER BY status`,
        [tenant.companyId],
      );
    const insert = `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score)
                    VALUES ($1, $2, 'Tx', 'Lead', $3, $4) RETURNING id`;
    // The first write is in the savepoint rolled back: the transaction's commit-time marker goes with it, and the
    // statements after it must set it again.
    await db.transaction(async (manager) => {
      await manager.query('SAVEPOINT undone');
      await manager.query(insert, [tenant.companyId, tenant.rep.id, 'QUALIFIED', 50]);
      await manager.query('ROLLBACK TO SAVEPOINT undone');
      const [kept] = await manager.query<Array<{ id: string }>>(insert, [
        tenant.companyId,
        tenant.rep.id,
        'NEW',
        5,
      ]);
      const [gone] = await manager.query<Array<{ id: string }>>(insert, [
        tenant.companyId,
        tenant.rep.id,
        'NEW',
        7,
      ]);
      await manager.query('DELETE FROM leads WHERE id = $1', [gone!.id]);
      await manager.query(`UPDATE leads SET status = 'CONTACTED', score = 6 WHERE id = $1`, [kept!.id]);
      await manager.query(`UPDATE leads SET status = 'CONVERTED', score = 9 WHERE id = $1`, [kept!.id]);
    });
    expect(await leadsOf()).toEqual([{ status: 'CONVERTED', n: 1, score: 9 }]);
    expect(await rollupsOf()).toEqual(await leadsOf());
    const searched = await t.gql<{ search: { total: number } }>(
      `{ search(input: { entityType: LEAD, pageSize: 1 }) { total } }`,
      {},
      tenant.admin.token,
    );
    expect(searched.data?.search.total).toBe(1);
  });
});
