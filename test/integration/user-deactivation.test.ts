import { createTenant, type TestTenant } from '../helpers/fixtures';
import { spawnBuilt, testProcessEnv, type SpawnedProcess } from '../helpers/spawn-gateway';
import { startTestApp, wsClient, wsExecute, type TestApp } from '../helpers/test-app';

async function me(url: string, token: string) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: '{ me { id } }' }),
  });
  const body = (await response.json()) as {
    data?: unknown;
    errors?: Array<{ extensions?: { code?: string } }>;
  };
  return { status: response.status, code: body.errors?.[0]?.extensions?.code, data: body.data };
}

describe('deactivating a user refuses their tokens at once, on every gateway', () => {
  let t: TestApp;
  let second: SpawnedProcess;
  let secondUrl: string;
  let a: TestTenant;

  beforeAll(async () => {
    t = await startTestApp();
    second = spawnBuilt('main', testProcessEnv());
    const [, url] = await second.waitFor(/"url":"(http:\/\/[^"]+)\/graphql"/);
    secondUrl = url!;
    a = await createTenant(t.app, { extraUsers: 1 });
  });
  afterAll(async () => {
    second.child.kill('SIGTERM');
    await second.exited;
    await t.stop();
  });

  it('401 on both gateways and on an open WebSocket right after the mutation; reads and writes stop', async () => {
    const user = a.others[0]!;
    // Both gateways have the user cached (the principal lives in the shared cache for 300 s).
    expect((await me(t.url, user.token)).status).toBe(200);
    expect((await me(secondUrl, user.token)).status).toBe(200);
    const socket = wsClient(secondUrl, `Bearer ${user.token}`, { keepOpen: true });
    expect((await wsExecute(socket, '{ me { id } }')).errors).toBeUndefined();

    const res = await t.gql(
      `mutation { deactivateUser(userId: "${user.id}") { id deactivatedAt } }`,
      {},
      a.admin.token,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data?.deactivateUser.deactivatedAt).toEqual(expect.any(String));

    for (const url of [t.url, secondUrl]) {
      expect(await me(url, user.token)).toEqual({ status: 401, code: 'UNAUTHENTICATED', data: undefined });
    }
    const refused = await wsExecute(socket, '{ me { id } }');
    expect(refused.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    await socket.dispose();

    const write = await t.gql(
      'mutation { createLead(input: { firstName: "a", lastName: "b" }) { id } }',
      {},
      user.token,
    );
    expect(write.status).toBe(401);
    expect((await me(t.url, a.rep.token)).status).toBe(200); // others are untouched
    const [{ count }] = await t.app.dataSource.query<[{ count: number }]>(
      "SELECT count(*)::int AS count FROM audit_logs WHERE company_id = $1 AND action = 'USER_DEACTIVATE' AND object_id = $2",
      [a.companyId, user.id],
    );
    expect(count).toBe(1);
  });

  it('only admins may deactivate, never themselves, and only users of their company', async () => {
    const other = await createTenant(t.app);
    const byRep = await t.gql(`mutation { deactivateUser(userId: "${a.admin.id}") { id } }`, {}, a.rep.token);
    expect(byRep.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const self = await t.gql(
      `mutation { deactivateUser(userId: "${a.admin.id}") { id } }`,
      {},
      a.admin.token,
    );
    expect(self.errors?.[0]?.message).toBe('userId must not be yourself (ask another admin)');
    const foreign = await t.gql(
      `mutation { deactivateUser(userId: "${other.rep.id}") { id } }`,
      {},
      a.admin.token,
    );
    expect(foreign.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await me(t.url, other.rep.token)).status).toBe(200);
  });

  it('a user deleted outside the API: their first write answers 401, and every gateway refuses them from then on', async () => {
    const gone = await createTenant(t.app);
    expect((await me(secondUrl, gone.rep.token)).status).toBe(200); // cached as a valid principal
    await t.app.dataSource.query('DELETE FROM users WHERE id = $1', [gone.rep.id]);
    const write = await t.gql(
      'mutation { createLead(input: { firstName: "a", lastName: "b" }) { id } }',
      {},
      gone.rep.token,
    );
    expect(write.status).toBe(401);
    expect(write.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    for (const url of [t.url, secondUrl]) expect((await me(url, gone.rep.token)).status).toBe(401);
    const [{ count }] = await t.app.dataSource.query<[{ count: number }]>(
      'SELECT count(*)::int AS count FROM leads WHERE company_id = $1',
      [gone.companyId],
    );
    expect(count).toBe(0);
  });
});
