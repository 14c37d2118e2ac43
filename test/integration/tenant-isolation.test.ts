import { createTenant, insertAccount, insertDeal, insertLead, type TestTenant } from '../helpers/fixtures';
import { startTestApp, type TestApp } from '../helpers/test-app';

describe('tenant isolation and owner/admin visibility', () => {
  let t: TestApp;
  let a: TestTenant;
  let b: TestTenant;
  let bLead: string;
  let bAccount: string;
  let bDeal: string;

  beforeAll(async () => {
    t = await startTestApp();
    a = await createTenant(t.app);
    b = await createTenant(t.app);
    await insertLead(t.app, a, a.admin.id, 'A-admin-lead');
    await insertLead(t.app, a, a.rep.id, 'A-rep-lead');
    bLead = await insertLead(t.app, b, b.admin.id, 'B-lead');
    bAccount = await insertAccount(t.app, b, b.admin.id, 'B-account');
    bDeal = await insertDeal(t.app, b, b.admin.id, bAccount, 'B-deal');
  });
  afterAll(() => t.stop());

  const kinds = [
    {
      type: 'lead',
      list: 'leads',
      id: () => bLead,
      update: 'updateLead',
      input: '{ lastName: "hijacked" }',
      del: 'deleteLead',
    },
    {
      type: 'deal',
      list: 'deals',
      id: () => bDeal,
      update: 'updateDeal',
      input: '{ name: "hijacked" }',
      del: 'deleteDeal',
    },
    {
      type: 'account',
      list: 'accounts',
      id: () => bAccount,
      update: 'updateAccount',
      input: '{ name: "hijacked" }',
      del: 'deleteAccount',
    },
  ];

  it.each(kinds)("A's admin cannot read B's $type by id", async (kind) => {
    const res = await t.gql(
      `query($id: ID!) { ${kind.type}(id: $id) { id } }`,
      { id: kind.id() },
      a.admin.token,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data?.[kind.type]).toBeNull();
  });

  it.each(kinds)("A's admin never sees B's $type in lists", async (kind) => {
    const res = await t.gql(`{ ${kind.list}(pageSize: 200) { total items { id } } }`, {}, a.admin.token);
    expect(res.errors).toBeUndefined();
    const ids = (res.data?.[kind.list].items as Array<{ id: string }>).map((item) => item.id);
    expect(ids).not.toContain(kind.id());
    // B's admin does see it: the row exists, the filter is what hides it.
    const own = await t.gql(`{ ${kind.list}(pageSize: 200) { items { id } } }`, {}, b.admin.token);
    expect((own.data?.[kind.list].items as Array<{ id: string }>).map((item) => item.id)).toContain(
      kind.id(),
    );
  });

  it.each(kinds)(
    "A's admin cannot update or delete B's $type: NOT_FOUND and the row is unchanged",
    async (kind) => {
      const update = await t.gql(
        `mutation($id: ID!) { ${kind.update}(id: $id, input: ${kind.input}) { id } }`,
        { id: kind.id() },
        a.admin.token,
      );
      expect(update.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      const del = await t.gql(
        `mutation($id: ID!) { ${kind.del}(id: $id) }`,
        { id: kind.id() },
        a.admin.token,
      );
      expect(del.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      const still = await t.gql(
        `query($id: ID!) { ${kind.type}(id: $id) { id } }`,
        { id: kind.id() },
        b.admin.token,
      );
      expect(still.data?.[kind.type]).toEqual({ id: kind.id() });
    },
  );

  it("rejects pointing a deal at another company's account or owner", async () => {
    const deal = await t.gql(
      `mutation($acc: ID!) { createDeal(input: { name: "x", accountId: $acc }) { id } }`,
      { acc: bAccount },
      a.admin.token,
    );
    expect(deal.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(deal.errors?.[0]?.message).toContain('input.accountId');
    const lead = await t.gql(
      `mutation($owner: ID!) { createLead(input: { firstName: "x", lastName: "y", ownerId: $owner }) { id } }`,
      { owner: b.admin.id },
      a.admin.token,
    );
    expect(lead.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(lead.errors?.[0]?.message).toContain('input.ownerId');
  });

  it("hides B's account behind a deal of A even when ids are guessed", async () => {
    // A row of A cannot reference B's account at all: the composite foreign key forbids it.
    await expect(insertDeal(t.app, a, a.admin.id, bAccount)).rejects.toThrow(/foreign key/);
  });

  it('a rep sees only own records; the admin sees every record of the company', async () => {
    const rep = await t.gql('{ leads { items { lastName owner { id } } } }', {}, a.rep.token);
    expect(rep.data?.leads.items).toEqual([{ lastName: 'A-rep-lead', owner: { id: a.rep.id } }]);
    const admin = await t.gql(
      '{ leads(sortBy: "lastName", sortDirection: ASC) { total items { lastName } } }',
      {},
      a.admin.token,
    );
    expect(admin.data?.leads).toEqual({
      total: 2,
      items: [{ lastName: 'A-admin-lead' }, { lastName: 'A-rep-lead' }],
    });
  });
});
