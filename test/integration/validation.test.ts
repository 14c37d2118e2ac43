import { auditCount, createTenant, insertAccount, insertLead, type TestTenant } from '../helpers/fixtures';
import { startTestApp, type TestApp } from '../helpers/test-app';

describe('mutation input validation', () => {
  let t: TestApp;
  let a: TestTenant;
  let leadId: string;
  let accountId: string;

  beforeAll(async () => {
    t = await startTestApp();
    a = await createTenant(t.app);
    leadId = await insertLead(t.app, a, a.admin.id, 'Original');
    accountId = await insertAccount(t.app, a, a.admin.id, 'Original account');
  });
  afterAll(() => t.stop());

  async function rowCounts() {
    const [row] = await t.app.dataSource.query<[Record<string, number>]>(
      `SELECT (SELECT count(*) FROM leads WHERE company_id = $1)::int AS leads,
              (SELECT count(*) FROM deals WHERE company_id = $1)::int AS deals,
              (SELECT count(*) FROM accounts WHERE company_id = $1)::int AS accounts`,
      [a.companyId],
    );
    return { ...row, audit: await auditCount(t.app, a.companyId) };
  }

  const cases: Array<[label: string, mutation: string, code: string, mentions: RegExp]> = [
    [
      'missing required field',
      'createLead(input: { lastName: "x" }) { id }',
      'GRAPHQL_VALIDATION_FAILED',
      /firstName/,
    ],
    [
      'wrong type',
      'createLead(input: { firstName: "x", lastName: "y", score: "high" }) { id }',
      'GRAPHQL_VALIDATION_FAILED',
      /score|Int/,
    ],
    [
      'unknown enum value',
      'createLead(input: { firstName: "x", lastName: "y", status: WON }) { id }',
      'GRAPHQL_VALIDATION_FAILED',
      /WON/,
    ],
    [
      'empty first name',
      'createLead(input: { firstName: "", lastName: "y" }) { id }',
      'BAD_USER_INPUT',
      /input\.firstName/,
    ],
    [
      'invalid email',
      'createLead(input: { firstName: "x", lastName: "y", email: "nope" }) { id }',
      'BAD_USER_INPUT',
      /input\.email/,
    ],
    [
      'score above 100',
      'createLead(input: { firstName: "x", lastName: "y", score: 101 }) { id }',
      'BAD_USER_INPUT',
      /input\.score.*100/,
    ],
    [
      'negative estimated value',
      'createLead(input: { firstName: "x", lastName: "y", estimatedValue: -5 }) { id }',
      'BAD_USER_INPUT',
      /input\.estimatedValue/,
    ],
    [
      'owner that is not a uuid',
      'createLead(input: { firstName: "x", lastName: "y", ownerId: "1 OR 1=1" }) { id }',
      'BAD_USER_INPUT',
      /input\.ownerId/,
    ],
    [
      'deal probability over 100',
      'createDeal(input: { name: "d", probability: 150 }) { id }',
      'BAD_USER_INPUT',
      /input\.probability/,
    ],
    [
      'deal close date not a date',
      'createDeal(input: { name: "d", closeDate: "next week" }) { id }',
      'BAD_USER_INPUT',
      /input\.closeDate.*YYYY-MM-DD/,
    ],
    [
      'deal with an unknown account',
      'createDeal(input: { name: "d", accountId: "6b1c6f8e-8e4e-4d5a-9c55-1f6f7e0f0a11" }) { id }',
      'BAD_USER_INPUT',
      /input\.accountId/,
    ],
    [
      'account country not ISO',
      'createAccount(input: { name: "n", country: "Germany" }) { id }',
      'BAD_USER_INPUT',
      /input\.country.*alpha-2/,
    ],
    [
      'account negative employees',
      'createAccount(input: { name: "n", employees: -1 }) { id }',
      'BAD_USER_INPUT',
      /input\.employees/,
    ],
  ];

  it.each(cases)(
    'create with %s is rejected, naming the field, and writes nothing',
    async (_label, mutation, code, mentions) => {
      const before = await rowCounts();
      const res = await t.gql(`mutation { ${mutation} }`, {}, a.admin.token);
      expect(res.data ?? null).toBeNull();
      expect(res.errors?.[0]?.extensions?.code).toBe(code);
      expect(res.errors?.[0]?.message).toMatch(mentions);
      expect(await rowCounts()).toEqual(before);
    },
  );

  it('lists every violated field in extensions.violations', async () => {
    const res = await t.gql(
      'mutation { createLead(input: { firstName: "", lastName: "y", email: "bad", score: -1 }) { id } }',
      {},
      a.admin.token,
    );
    const fields = res.errors?.[0]?.extensions?.violations?.map((v) => v.field).sort();
    expect(fields).toEqual(['input.email', 'input.firstName', 'input.score']);
  });

  it.each([
    [
      'null for a required column',
      'updateLead(id: $id, input: { firstName: null }) { id }',
      /input\.firstName/,
    ],
    ['score below 0', 'updateLead(id: $id, input: { score: -3 }) { id }', /input\.score/],
    [
      'owner from nowhere',
      'updateLead(id: $id, input: { ownerId: "6b1c6f8e-8e4e-4d5a-9c55-1f6f7e0f0a11" }) { id }',
      /input\.ownerId/,
    ],
  ])('update with %s is rejected and the row keeps its values', async (_label, mutation, mentions) => {
    const before = await rowCounts();
    const res = await t.gql(`mutation($id: ID!) { ${mutation} }`, { id: leadId }, a.admin.token);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.message).toMatch(mentions);
    const lead = await t.gql(
      'query($id: ID!) { lead(id: $id) { firstName lastName score owner { id } } }',
      { id: leadId },
      a.admin.token,
    );
    expect(lead.data?.lead).toEqual({
      firstName: 'Test',
      lastName: 'Original',
      score: 0,
      owner: { id: a.admin.id },
    });
    expect(await rowCounts()).toEqual(before);
  });

  it('rejects an id that is not a UUID with BAD_USER_INPUT naming `id`', async () => {
    const res = await t.gql('{ lead(id: "42; DROP TABLE leads") { id } }', {}, a.admin.token);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.message).toMatch(/^id must be a UUID/);
  });

  it('does not let inherited object properties through the sort allow-list', async () => {
    const res = await t.gql('{ leads(sortBy: "constructor") { total } }', {}, a.admin.token);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('rejects a sort field outside the allow-list, naming the allowed ones', async () => {
    const res = await t.gql('{ leads(sortBy: "owner_id; --") { total } }', {}, a.admin.token);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.message).toMatch(/sortBy must be one of createdAt, updatedAt/);
  });

  it('a valid create, update and delete each write exactly one audit row in the same transaction', async () => {
    const repAccount = await insertAccount(t.app, a, a.rep.id, 'Rep account');
    const before = await auditCount(t.app, a.companyId);
    const created = await t.gql(
      'mutation { createDeal(input: { name: "Big one", amount: 5000, probability: 40, closeDate: "2027-01-31", accountId: "' +
        repAccount +
        '" }) { id name account { id } owner { id } } }',
      {},
      a.rep.token,
    );
    expect(created.errors).toBeUndefined();
    const dealId = created.data?.createDeal.id as string;
    expect(created.data?.createDeal).toMatchObject({
      name: 'Big one',
      account: { id: repAccount },
      owner: { id: a.rep.id },
    });
    const updated = await t.gql(
      'mutation($id: ID!) { updateDeal(id: $id, input: { stage: NEGOTIATION }) { stage } }',
      { id: dealId },
      a.rep.token,
    );
    expect(updated.data?.updateDeal).toEqual({ stage: 'NEGOTIATION' });
    const deleted = await t.gql('mutation($id: ID!) { deleteDeal(id: $id) }', { id: dealId }, a.rep.token);
    expect(deleted.data?.deleteDeal).toBe(true);
    const rows = await t.app.dataSource.query<
      Array<{ action: string; actor_id: string; changes: Record<string, unknown> }>
    >(
      'SELECT action, actor_id, changes FROM audit_logs WHERE company_id = $1 AND object_id = $2 ORDER BY occurred_at',
      [a.companyId, dealId],
    );
    expect(rows.map((r) => r.action)).toEqual(['CREATE', 'UPDATE', 'DELETE']);
    expect(rows.every((r) => r.actor_id === a.rep.id)).toBe(true);
    expect(rows[1]!.changes).toEqual({ stage: { from: 'PROSPECTING', to: 'NEGOTIATION' } });
    expect(await auditCount(t.app, a.companyId)).toBe(before + 3);
  });

  it("a rep cannot attach a deal to the admin's account it cannot see", async () => {
    const res = await t.gql(
      `mutation($acc: ID!) { createDeal(input: { name: "d", accountId: $acc }) { id } }`,
      { acc: accountId },
      a.rep.token,
    );
    expect(res.errors?.[0]?.message).toBe('input.accountId must be the id of an account you can see');
  });

  it('a rep cannot update the admin-owned lead (hidden: NOT_FOUND) and no audit row is written', async () => {
    const before = await auditCount(t.app, a.companyId);
    const res = await t.gql(
      'mutation($id: ID!) { updateLead(id: $id, input: { score: 5 }) { id } }',
      { id: leadId },
      a.rep.token,
    );
    expect(res.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(await auditCount(t.app, a.companyId)).toBe(before);
  });
});
