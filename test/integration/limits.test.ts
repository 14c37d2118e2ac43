import { createTenant, type TestTenant } from '../helpers/fixtures';
import { startTestApp, wsClient, wsExecute, type GraphQLResponse, type TestApp } from '../helpers/test-app';

/**
 * Depth counts field levels, leaves included (`{ me { id } }` is 2). The schema nests at most ~6 levels, so this
 * suite lowers the limit to 4 to exercise it.
 */
describe('operation limits over HTTP and WebSocket', () => {
  let t: TestApp;
  let a: TestTenant;

  beforeAll(async () => {
    t = await startTestApp({ GRAPHQL_MAX_DEPTH: '4' });
    a = await createTenant(t.app);
    await t.gql('{ me { id } }', {}, a.admin.token); // warm the principal cache so counts below are about execution only
  });
  afterAll(() => t.stop());

  const tooDeep = '{ deals { items { account { owner { role { name } } } } } }';
  const tooManyAliases = `{ ${Array.from({ length: 16 }, (_, i) => `m${i}: me { id }`).join(' ')} }`;
  const overBudget = `{ ${['a', 'b', 'c']
    .map((alias) => `${alias}: deals(pageSize: 200) { items { id name owner { name } account { name } } }`)
    .join(' ')} }`;
  const oversizedPage = '{ leads(pageSize: 500) { total } }';
  const oversizedPageVariable = 'query($size: Int!) { leads(pageSize: $size) { total } }';

  const cases: Array<[string, string, Record<string, unknown>, string, RegExp]> = [
    ['a too-deep query', tooDeep, {}, 'QUERY_TOO_DEEP', /depth 6 exceeds the limit of 4/],
    ['too many aliases', tooManyAliases, {}, 'TOO_MANY_ALIASES', /16 aliases; the limit is 15/],
    ['an over-budget query', overBudget, {}, 'QUERY_TOO_COMPLEX', /exceeds the budget of 5000/],
    ['an oversized page', oversizedPage, {}, 'PAGE_SIZE_TOO_LARGE', /leads\.pageSize must be at most 200/],
    [
      'an oversized page in a variable',
      oversizedPageVariable,
      { size: 1000 },
      'PAGE_SIZE_TOO_LARGE',
      /leads\.pageSize must be at most 200/,
    ],
  ];

  function expectRejected(res: GraphQLResponse, code: string, message: RegExp) {
    expect(res.data ?? null).toBeNull();
    expect(res.errors?.[0]?.extensions?.code).toBe(code);
    expect(res.errors?.[0]?.message).toMatch(message);
  }

  it.each(cases)(
    'HTTP rejects %s before execution (no SQL runs)',
    async (_label, query, variables, code, message) => {
      const before = t.app.queryLogger.statementCount;
      const res = await t.gql(query, variables, a.admin.token);
      expect(res.status).toBe(400);
      expectRejected(res, code, message);
      expect(t.app.queryLogger.statementCount).toBe(before);
    },
  );

  it.each(cases)(
    'WebSocket rejects %s before execution (no SQL runs)',
    async (_label, query, variables, code, message) => {
      const client = wsClient(t.url, `Bearer ${a.admin.token}`);
      try {
        const before = t.app.queryLogger.statementCount;
        expectRejected(await wsExecute(client, query, variables), code, message);
        expect(t.app.queryLogger.statementCount).toBe(before);
      } finally {
        await client.dispose();
      }
    },
  );

  it('accepts the same shapes inside the limits', async () => {
    const withinBudget = '{ deals(pageSize: 200) { items { id name owner { name } account { name } } } }';
    for (const query of [
      withinBudget,
      '{ deals { items { account { id } } } }',
      '{ leads(pageSize: 200) { total } }',
    ]) {
      const res = await t.gql(query, {}, a.admin.token);
      expect(res.errors).toBeUndefined();
    }
    const client = wsClient(t.url, `Bearer ${a.admin.token}`);
    try {
      expect((await wsExecute(client, withinBudget)).errors).toBeUndefined();
    } finally {
      await client.dispose();
    }
  });

  it('does not count introspection against the depth limit (Sandbox must work)', async () => {
    const res = await t.gql(
      '{ __schema { types { fields { type { ofType { ofType { ofType { name } } } } } } } }',
    );
    expect(res.errors).toBeUndefined();
  });

  it('answers an oversized body with a JSON 413, and broken JSON with a JSON 400', async () => {
    const big = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ __typename }`, variables: { pad: 'x'.repeat(1_100_000) } }),
    });
    expect(big.status).toBe(413);
    expect(await big.json()).toEqual({
      errors: [{ message: 'Request body exceeds 1mb', extensions: { code: 'PAYLOAD_TOO_LARGE' } }],
    });
    const broken = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query":',
    });
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as GraphQLResponse).errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
  });

  it('keeps CSRF prevention on: a simple GET without a preflight header is refused', async () => {
    const res = await fetch(`${t.url}/graphql?query=${encodeURIComponent('{ __typename }')}`);
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/CSRF/i);
  });
});
