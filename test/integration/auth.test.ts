import { TokenService } from '../../src/modules/identity/token.service';
import { createTenant, type TestTenant } from '../helpers/fixtures';
import { startTestApp, wsClient, wsExecute, type TestApp } from '../helpers/test-app';

describe('authentication over HTTP and WebSocket', () => {
  let t: TestApp;
  let a: TestTenant;
  let b: TestTenant;

  beforeAll(async () => {
    t = await startTestApp();
    a = await createTenant(t.app);
    b = await createTenant(t.app);
  });
  afterAll(() => t.stop());

  it('answers `me` for a valid token with the caller, company, role and admin flag', async () => {
    const res = await t.gql('{ me { id email isAdmin role { name } company { id } } }', {}, a.admin.token);
    expect(res.errors).toBeUndefined();
    expect(res.data?.me).toEqual({
      id: a.admin.id,
      email: a.admin.email,
      isAdmin: true,
      role: { name: 'CEO' },
      company: { id: a.companyId },
    });
  });

  it('rejects a data field without a token: UNAUTHENTICATED and no data', async () => {
    const res = await t.gql('{ me { id } leads { total } }');
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(res.data).toBeNull();
  });

  it('lets anonymous callers introspect and ask for __typename outside production', async () => {
    const res = await t.gql('{ __typename __schema { queryType { name } } }');
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ __typename: 'Query', __schema: { queryType: { name: 'Query' } } });
  });

  it.each([
    [
      'an expired token',
      async () => t.app.services.tokens.mint(a.admin.id, a.companyId, -5),
      'Token has expired',
    ],
    [
      'a token signed with another secret',
      async () =>
        new TokenService({ secret: 'another-secret-0123456789abcdef0123456789' }).mint(
          a.admin.id,
          a.companyId,
        ),
      'Token is invalid',
    ],
    ['a garbage token', async () => 'not.a.jwt', 'Token is invalid'],
    [
      "a token naming another company for A's user",
      async () => t.app.services.tokens.mint(a.admin.id, b.companyId),
      'does not belong to a user of its company',
    ],
  ])('rejects %s with 401 UNAUTHENTICATED and no data', async (_label, makeToken, message) => {
    const res = await t.gql('{ me { id } }', {}, await makeToken());
    expect(res.status).toBe(401);
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(res.errors?.[0]?.message).toContain(message);
    expect(res.data ?? null).toBeNull();
  });

  it('rejects a malformed Authorization header', async () => {
    const response = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Token abc' },
      body: JSON.stringify({ query: '{ me { id } }' }),
    });
    const body = (await response.json()) as {
      errors: Array<{ message: string; extensions: { code: string } }>;
    };
    expect(response.status).toBe(401);
    expect(body.errors[0]!.extensions.code).toBe('UNAUTHENTICATED');
    expect(body.errors[0]!.message).toMatch(/Bearer/);
  });

  it('serves a WebSocket operation for a valid token', async () => {
    const client = wsClient(t.url, `Bearer ${a.rep.token}`);
    try {
      const res = await wsExecute(client, '{ me { id isAdmin } }');
      expect(res.data).toEqual({ me: { id: a.rep.id, isAdmin: false } });
    } finally {
      await client.dispose();
    }
  });

  it.each([
    ['no token', undefined],
    ['a bad token', 'Bearer not.a.jwt'],
    ['a token for another company', 'cross-company'],
  ])('refuses a WebSocket connection with %s (close 4403)', async (_label, authorization) => {
    const header =
      authorization === 'cross-company'
        ? `Bearer ${await t.app.services.tokens.mint(a.rep.id, b.companyId)}`
        : authorization;
    const client = wsClient(t.url, header);
    try {
      await expect(wsExecute(client, '{ me { id } }')).rejects.toMatchObject({ code: 4403 });
    } finally {
      await client.dispose();
    }
  });

  it('checks token expiry again for each WebSocket operation', async () => {
    const shortLived = await t.app.services.tokens.mint(a.rep.id, a.companyId, 2);
    const client = wsClient(t.url, `Bearer ${shortLived}`, { keepOpen: true });
    try {
      const first = await wsExecute(client, '{ me { id } }');
      expect(first.data).toEqual({ me: { id: a.rep.id } });
      await new Promise((resolve) => setTimeout(resolve, 2200));
      const second = await wsExecute(client, '{ me { id } }');
      expect(second.data ?? null).toBeNull();
      expect(second.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    } finally {
      await client.dispose();
    }
  });
});
