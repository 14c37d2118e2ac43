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
