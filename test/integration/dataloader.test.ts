import { Redis } from 'ioredis';
import { createTenant, insertAccount, insertDeal, type TestTenant } from '../helpers/fixtures';
import { startTestApp, type TestApp } from '../helpers/test-app';

const NESTED =
  'query($size: Int!) { deals(pageSize: $size, sortBy: "name", sortDirection: ASC) { items { id owner { id name } account { id name } } } }';

describe('nested reads: owners and accounts in the same statement, loaders elsewhere', () => {
  let t: TestApp;
  let a: TestTenant;

  beforeAll(async () => {
    t = await startTestApp();
    a = await createTenant(t.app, { extraUsers: 18 });
    const owners = [a.admin, a.rep, ...a.others];
    const accounts: string[] = [];
    for (let i = 0; i < 30; i++) accounts.push(await insertAccount(t.app, a, a.admin.id, `Account ${i}`));
    for (let i = 0; i < 100; i++) {
      await insertDeal(
        t.app,
        a,
        owners[i % owners.length]!.id,
        i % 7 === 0 ? null : accounts[i % accounts.length]!,
        `Deal ${String(i).padStart(3, '0')}`,
      );
    }
  });
  afterAll(() => t.stop());

  async function statementsFor(
    size: number,
  ): Promise<{ statements: number; items: Array<Record<string, any>> }> {
    const before = t.app.queryLogger.statementCount;
    const res = await t.gql(NESTED, { size }, a.admin.token);
    expect(res.errors).toBeUndefined();
    return { statements: t.app.queryLogger.statementCount - before, items: res.data!.deals.items };
  }

  /** A cold entity cache (not an invalidation, which would also hold write-backs off for a moment). */
  async function flushEntityCache() {
    const redis = new Redis(process.env.REDIS_URL!);
    // The namespaces of the slices that cache entities: identity (users, roles) and records (accounts).
    const keys = [
      ...(await redis.keys(`crm:identity:{${a.companyId}}:*`)),
      ...(await redis.keys(`crm:records:{${a.companyId}}:*`)),
    ];
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    t.app.services.identity['options'].users.resetLocal(); // users' in-process tier
  }

  it('100 deals with owner and account cost a constant number of SQL statements, not 1+2N', async () => {
    // Warm what every request of this caller needs anyway: their user row and compiled visibility.
    await t.gql('{ me { id } deals(pageSize: 1) { total } }', {}, a.admin.token);
    await flushEntityCache();
    const hundred = await statementsFor(100);
    expect(hundred.items).toHaveLength(100);
    // the page, owners and accounts joined (+ the caller's row, its cache just flushed); no count: not selected
    expect(hundred.statements).toBeLessThanOrEqual(2);

    await flushEntityCache();
    const ten = await statementsFor(10);
    expect(ten.items).toHaveLength(10);
    expect(hundred.statements).toBe(ten.statements);
  });

  it('counts the visible records only when total is selected (directly or through a fragment)', async () => {
    const run = async (query: string) => {
      const before = t.app.queryLogger.statementCount;
      const res = await t.gql(query, {}, a.admin.token);
      expect(res.errors).toBeUndefined();
      return { statements: t.app.queryLogger.statementCount - before, data: res.data!.deals };
    };
    await run('{ deals(pageSize: 5) { items { id } } }'); // warm the caller and their visibility
    const without = await run('{ deals(pageSize: 5) { items { id } } }');
    const direct = await run('{ deals(pageSize: 5) { items { id } total } }');
    const viaFragment = await run(
      '{ deals(pageSize: 5) { items { id } ...Counted } } fragment Counted on DealPage { total }',
    );
    expect(direct.statements).toBe(without.statements + 1);
    expect(viaFragment.statements).toBe(without.statements + 1);
    expect(direct.data.total).toBe(100);
    expect(viaFragment.data.total).toBe(100);
    expect(without.data.items).toEqual(direct.data.items);
  });

  it("reads the caller's user row once per request: authentication primes the request's loader", async () => {
    const userLookups = async () => {
      let total = 0;
      for (const name of ['crm_cache_hits_total', 'crm_cache_misses_total']) {
        const metric = await t.app.metrics.registry.getSingleMetric(name)?.get();
        for (const value of metric?.values ?? [])
          // Users live in identity's two-tier cache: every lookup is one hit or miss of its in-process tier.
          if (value.labels.cache === 'identity' && value.labels.tier === 'memory') total += value.value;
      }
      return total;
    };
    await t.gql('{ me { id } }', {}, a.rep.token);
    const before = await userLookups();
    const res = await t.gql('{ me { id name email } }', {}, a.rep.token);
    expect(res.data?.me.id).toBe(a.rep.id);
    expect((await userLookups()) - before).toBe(1); // authentication's; `me` is served from the primed loader
  });

  it('resolves owner and account correctly (results in key order)', async () => {
    const { items } = await statementsFor(100);
    const rows = await t.app.dataSource.query<
      Array<{
        id: string;
        owner_id: string;
        owner_name: string;
        account_id: string | null;
        account_name: string | null;
      }>
    >(
      `SELECT d.id, d.owner_id, u.name AS owner_name, d.account_id, ac.name AS account_name
         FROM deals d JOIN users u ON u.id = d.owner_id LEFT JOIN accounts ac ON ac.id = d.account_id
        WHERE d.company_id = $1`,
      [a.companyId],
    );
    const expected = new Map(rows.map((r) => [r.id, r]));
    for (const item of items) {
      const row = expected.get(item.id)!;
      expect(item.owner).toEqual({ id: row.owner_id, name: row.owner_name });
      expect(item.account).toEqual(row.account_id ? { id: row.account_id, name: row.account_name } : null);
    }
  });

  it('a warm request is one statement: the page, with its owners and accounts joined', async () => {
    await statementsFor(100);
    const warm = await statementsFor(100);
    expect(warm.statements).toBe(1); // no count (total is not selected), no lookups of owners or accounts
  });

  it('a single read with owner and account is one statement, with cold caches too', async () => {
    const deals = await t.app.dataSource.query<Array<{ id: string }>>(
      'SELECT id FROM deals WHERE company_id = $1 AND account_id IS NOT NULL ORDER BY id LIMIT 10',
      [a.companyId],
    );
    for (const { id } of deals) {
      await flushEntityCache();
      await t.gql('{ me { id } }', {}, a.admin.token); // the caller's row, which authentication reads anyway
      const before = t.app.queryLogger.statementCount;
      const res = await t.gql(
        'query($id: ID!) { deal(id: $id) { id name amount owner { id name email } account { id name industry } } }',
        { id },
        a.admin.token,
      );
      expect(res.errors).toBeUndefined();
      expect(t.app.queryLogger.statementCount - before).toBe(1);
      const [row] = await t.app.dataSource.query<Array<{ owner_email: string; account_name: string }>>(
        `SELECT u.email AS owner_email, ac.name AS account_name
           FROM deals d JOIN users u ON u.id = d.owner_id JOIN accounts ac ON ac.id = d.account_id WHERE d.id = $1`,
        [id],
      );
      expect(res.data!.deal.owner.email).toBe(row!.owner_email);
      expect(res.data!.deal.account.name).toBe(row!.account_name);
    }
  });

  it('a renamed account shows in the next request', async () => {
    const warm = await statementsFor(100);
    const withAccount = warm.items.find((item) => item.account)!;
    const accountId = withAccount.account.id as string;
    const renamed = await t.gql(
      'mutation($id: ID!) { updateAccount(id: $id, input: { name: "Renamed Co" }) { name } }',
      { id: accountId },
      a.admin.token,
    );
    expect(renamed.data?.updateAccount).toEqual({ name: 'Renamed Co' });
    const after = await statementsFor(100);
    const names = after.items
      .filter((item) => item.account?.id === accountId)
      .map((item) => item.account.name as string);
    expect(names.length).toBeGreaterThan(0);
    expect(new Set(names)).toEqual(new Set(['Renamed Co']));
  });

  it('never shares loaders between requests: users with different visibility in parallel get their own results', async () => {
    const repAccount = await insertAccount(t.app, a, a.rep.id, 'Rep-owned account');
    await insertDeal(t.app, a, a.rep.id, repAccount, 'Deal rep-only');
    const query = '{ me { id } deals(pageSize: 200) { total items { owner { id } account { id } } } }';
    const runs = await Promise.all(
      Array.from({ length: 10 }, (_, i) => t.gql(query, {}, i % 2 === 0 ? a.admin.token : a.rep.token)),
    );
    runs.forEach((res, i) => {
      expect(res.errors).toBeUndefined();
      const asAdmin = i % 2 === 0;
      expect(res.data!.me.id).toBe(asAdmin ? a.admin.id : a.rep.id);
      const items = res.data!.deals.items as Array<{ owner: { id: string }; account: { id: string } | null }>;
      if (asAdmin) {
        expect(res.data!.deals.total).toBe(101);
      } else {
        expect(items.every((item) => item.owner.id === a.rep.id)).toBe(true);
        expect(res.data!.deals.total).toBe(items.length);
        // The rep's deals on admin-owned accounts show account: null; the rep's own account shows.
        const accountIds = items.map((item) => item.account?.id).filter(Boolean);
        expect(accountIds).toEqual([repAccount]);
      }
    });
  });
});
