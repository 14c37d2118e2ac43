import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { auditCount, createTenant, insertAccount, insertLead, type TestTenant } from '../helpers/fixtures';
import { startTestApp, wsClient, wsExecute, type GraphQLResponse, type TestApp } from '../helpers/test-app';

interface BadInputCase {
  label: string;
  query: string;
  variables?: Record<string, unknown>;
  /** Default: the tenant admin's token. */
  token?: () => Promise<string>;
  code: string;
  /** The field the error must name (in the message or a violation). */
  field: string;
  /** HTTP status: 200 for errors raised while executing, 400 for request errors, 401 for auth. */
  status: number;
}

const NUL = 'a\u0000b';
const LONE_SURROGATE = 'x\ud800y';

/**
 * Bad input as a careless or hostile client sends it: every case is a clear client error naming the field, answered
 * fast, with nothing written and the process still answering /healthz at once. The same battery runs over HTTP and
 * over graphql-ws.
 */
describe('bad input battery over HTTP and WebSocket', () => {
  let t: TestApp;
  let a: TestTenant;
  let leadId: string;

  beforeAll(async () => {
    t = await startTestApp();
    a = await createTenant(t.app);
    leadId = await insertLead(t.app, a, a.admin.id, 'Original');
    await insertAccount(t.app, a, a.admin.id);
  });
  afterAll(() => t.stop());

  const secret = () => new TextEncoder().encode(process.env.JWT_SECRET);
  const signed = (sub: string, companyId: string) =>
    new SignJWT({ company_id: companyId })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(sub)
      .setExpirationTime('5m')
      .sign(secret());

  const cases: BadInputCase[] = [
    {
      label: 'a NUL byte in a lead name',
      query: 'mutation($name: String!) { createLead(input: { firstName: $name, lastName: "x" }) { id } }',
      variables: { name: NUL },
      code: 'BAD_USER_INPUT',
      field: 'input.firstName',
      status: 200,
    },
    {
      label: 'a NUL byte written inline in the query',
      query: 'mutation { createLead(input: { firstName: "a\\u0000", lastName: "x" }) { id } }',
      code: 'BAD_USER_INPUT',
      field: 'input.firstName',
      status: 200,
    },
    {
      label: 'a lone surrogate in a lead name',
      query: 'mutation($name: String!) { createLead(input: { firstName: "x", lastName: $name }) { id } }',
      variables: { name: LONE_SURROGATE },
      code: 'BAD_USER_INPUT',
      field: 'input.lastName',
      status: 200,
    },
    {
      label: 'a NUL byte in a group name (a plain String argument)',
      query: 'mutation($name: String!) { createGroup(name: $name) { id } }',
      variables: { name: NUL },
      code: 'BAD_USER_INPUT',
      field: 'name',
      status: 200,
    },
    {
      label: 'a NUL byte in a role name',
      query: 'mutation($name: String!) { createRole(input: { name: $name }) { id } }',
      variables: { name: NUL },
      code: 'BAD_USER_INPUT',
      field: 'input.name',
      status: 200,
    },
    {
      label: 'a NUL byte in a criteria value',
      query: `mutation($value: JSON!, $target: ID!) { createSharingRule(input: { objectType: LEAD, name: "r", ruleType: CRITERIA,
        criteria: [{ field: "companyName", operator: eq, value: $value }], target: { type: USER, id: $target } }) { id } }`,
      variables: { value: NUL },
      code: 'BAD_USER_INPUT',
      field: 'input.criteria[0].value',
      status: 200,
    },
    {
      label: 'a NUL byte in a sharing rule name',
      query: `mutation($name: String!, $target: ID!) { createSharingRule(input: { objectType: LEAD, name: $name, ruleType: CRITERIA,
        criteria: [{ field: "status", operator: eq, value: "NEW" }], target: { type: USER, id: $target } }) { id } }`,
      variables: { name: NUL },
      code: 'BAD_USER_INPUT',
      field: 'input.name',
      status: 200,
    },
    {
      label: 'an impossible close date (February 30th)',
      query: 'mutation { createDeal(input: { name: "d", closeDate: "2023-02-30" }) { id } }',
      code: 'BAD_USER_INPUT',
      field: 'input.closeDate',
      status: 200,
    },
    {
      label: 'a close date in year 0',
      query: 'mutation { createDeal(input: { name: "d", closeDate: "0000-01-01" }) { id } }',
      code: 'BAD_USER_INPUT',
      field: 'input.closeDate',
      status: 200,
    },
    {
      label: 'an amount over what numeric(14,2) holds',
      query: 'mutation { createDeal(input: { name: "d", amount: 1000000000000 }) { id } }',
      code: 'BAD_USER_INPUT',
      field: 'input.amount',
      status: 200,
    },
    {
      label: 'an estimated value over what its column holds, in an update',
      query: `mutation { updateLead(id: "LEAD", input: { estimatedValue: 1e12 }) { id } }`,
      code: 'BAD_USER_INPUT',
      field: 'input.estimatedValue',
      status: 200,
    },
    {
      label: 'unshareRecord with a grantee id that is not a UUID',
      query:
        'mutation { unshareRecord(input: { objectType: LEAD, recordId: "LEAD", granteeType: USER, granteeId: "nope" }) }',
      code: 'BAD_USER_INPUT',
      field: 'input.granteeId',
      status: 200,
    },
    {
      label: 'createRole with an empty parentId',
      query: 'mutation { createRole(input: { name: "r", parentId: "" }) { id } }',
      code: 'BAD_USER_INPUT',
      field: 'input.parentId',
      status: 200,
    },
    {
      label: 'updateRole with an empty parentId',
      query: 'mutation { updateRole(id: "ROLE", input: { name: "r", parentId: "" }) { id } }',
      code: 'BAD_USER_INPUT',
      field: 'input.parentId',
      status: 200,
    },
    {
      label: 'a validly signed token whose sub is not a UUID',
      query: '{ me { id } }',
      token: () => signed('admin', a.companyId),
      code: 'UNAUTHENTICATED',
      field: 'sub',
      status: 401,
    },
    {
      label: 'a validly signed token for a user that does not exist',
      query: 'mutation { createLead(input: { firstName: "x", lastName: "y" }) { id } }',
      token: () => signed(randomUUID(), a.companyId),
      code: 'UNAUTHENTICATED',
      field: 'user',
      status: 401,
    },
  ];

  const resolve = (query: string) =>
    query.replace('"LEAD"', `"${leadId}"`).replace('"ROLE"', `"${a.roleIds.rep}"`);
  const withTarget = (variables: Record<string, unknown> = {}) => ({ target: a.rep.id, ...variables });

  async function writes() {
    const [row] = await t.app.dataSource.query<[Record<string, number>]>(
      `SELECT (SELECT count(*) FROM leads WHERE company_id = $1)::int AS leads,
              (SELECT count(*) FROM deals WHERE company_id = $1)::int AS deals,
              (SELECT count(*) FROM roles WHERE company_id = $1)::int AS roles,
              (SELECT count(*) FROM groups WHERE company_id = $1)::int AS groups,
              (SELECT count(*) FROM sharing_rules WHERE company_id = $1)::int AS rules,
              (SELECT max(updated_at) FROM leads WHERE company_id = $1)::text AS "leadsUpdatedAt"`,
      [a.companyId],
    );
    return { ...row, audit: await auditCount(t.app, a.companyId) };
  }

  function expectNamed(res: GraphQLResponse, c: BadInputCase) {
    expect(res.data?.[Object.keys(res.data ?? {})[0] ?? ''] ?? null).toBeNull();
    const [error] = res.errors ?? [];
    expect(error?.extensions?.code).toBe(c.code);
    const named = [error?.message ?? '', ...(error?.extensions?.violations ?? []).map((v) => v.field)].join(
      ' ',
    );
    expect(named).toContain(c.field);
  }

  async function healthzFast() {
    const started = performance.now();
    const res = await fetch(`${t.url}/healthz`);
    expect(res.status).toBe(200);
    expect(performance.now() - started).toBeLessThan(500);
  }

  it.each(cases.map((c) => [c.label, c] as const))('HTTP: %s', async (_label, c) => {
    const before = await writes();
    const started = performance.now();
    const token = c.token ? await c.token() : a.admin.token;
    const res = await t.gql(resolve(c.query), withTarget(c.variables), token);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(res.status).toBe(c.status);
    expectNamed(res, c);
    expect(await writes()).toEqual(before);
    await healthzFast();
  });

  it.each(cases.filter((c) => c.code !== 'UNAUTHENTICATED').map((c) => [c.label, c] as const))(
    'WebSocket: %s',
    async (_label, c) => {
      const client = wsClient(t.url, `Bearer ${a.admin.token}`);
      try {
        const before = await writes();
        const started = performance.now();
        const res = await wsExecute(client, resolve(c.query), withTarget(c.variables));
        expect(performance.now() - started).toBeLessThan(1000);
        expectNamed(res, c);
        expect(await writes()).toEqual(before);
        await healthzFast();
      } finally {
        await client.dispose();
      }
    },
  );

  it('WebSocket: a token whose sub is not a UUID cannot open a connection', async () => {
    const client = wsClient(t.url, `Bearer ${await signed('admin', a.companyId)}`);
    await expect(wsExecute(client, '{ me { id } }')).rejects.toMatchObject({ code: 4403 });
    await client.dispose();
  });

  it('accepts the largest amount the column holds, and the last day of a leap February', async () => {
    const res = await t.gql(
      'mutation { createDeal(input: { name: "max", amount: 999999999999.99, closeDate: "2024-02-29" }) { amount closeDate } }',
      {},
      a.admin.token,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data?.createDeal).toEqual({ amount: 999999999999.99, closeDate: '2024-02-29' });
  });
});

describe('abusive documents over HTTP and WebSocket (no token needed)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.stop());

  const fanOut = (() => {
    const fragments = ['fragment F0 on User { id name }'];
    for (let i = 1; i < 30; i++) fragments.push(`fragment F${i} on User { ...F${i - 1} ...F${i - 1} }`);
    return `{ me { ...F29 } } ${fragments.join(' ')}`;
  })();
  const deepIntrospection = `{ __schema { types { fields { type { ${'ofType { '.repeat(36)}name${' }'.repeat(36)} } } } } }`;

  it.each([
    ['a 30-level fragment fan-out', fanOut, 'QUERY_TOO_COMPLEX'],
    ['a 40-level introspection query', deepIntrospection, 'QUERY_TOO_DEEP'],
    ['a document over the token limit', `{ ${'__typename '.repeat(6000)}}`, 'QUERY_TOO_LARGE'],
  ])('HTTP rejects %s in well under a second and stays responsive', async (_label, query, code) => {
    const started = performance.now();
    const res = await t.gql(query);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(res.status).toBe(400);
    expect(res.errors?.[0]?.extensions?.code).toBe(code);
    const health = performance.now();
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    expect(performance.now() - health).toBeLessThan(500);
  });

  it('WebSocket rejects the fragment fan-out the same way', async () => {
    const a = await createTenant(t.app);
    const client = wsClient(t.url, `Bearer ${a.admin.token}`);
    try {
      const started = performance.now();
      const res = await wsExecute(client, fanOut);
      expect(performance.now() - started).toBeLessThan(1000);
      expect(res.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
    } finally {
      await client.dispose();
    }
  });
});
