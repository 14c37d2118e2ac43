import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client as WsClient, SubscribePayload } from 'graphql-ws';
import Redis from 'ioredis';
import type { App } from '../../src/app';
import { createTenant, insertLead, type TestTenant } from '../helpers/fixtures';
import { spawnBuilt, testProcessEnv } from '../helpers/spawn-gateway';
import { startTestApp, wsClient, type GraphQLResponse, type TestApp } from '../helpers/test-app';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
/** A document no earlier run registered (Redis DBs outlive a run): a comment makes its text, and hash, unique. */
const unique = (document: string) => `# ${randomUUID()}\n${document}`;
const persisted = (hash: string) => ({ persistedQuery: { version: 1, sha256Hash: hash } });
const fastPathOn = process.env.GRAPHQL_FAST_PATH !== 'false';

interface HttpAnswer extends GraphQLResponse {
  headers: Headers;
}

async function post(url: string, body: Record<string, unknown>, token?: string): Promise<HttpAnswer> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return {
    ...((await response.json()) as GraphQLResponse),
    status: response.status,
    headers: response.headers,
  };
}

/** GET /graphql as Apollo Client sends it for CDN caching (`apollo-require-preflight` passes CSRF prevention). */
async function get(url: string, fields: Record<string, unknown>, token?: string): Promise<HttpAnswer> {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(fields))
    params.set(name, typeof value === 'string' ? value : JSON.stringify(value));
  const response = await fetch(`${url}/graphql?${params.toString()}`, {
    headers: { 'apollo-require-preflight': 'true', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });
  return {
    ...((await response.json()) as GraphQLResponse),
    status: response.status,
    headers: response.headers,
  };
}

/** One operation over graphql-ws with the payload as given (an empty `query` names the document by hash). */
function ws(client: WsClient, payload: SubscribePayload): Promise<GraphQLResponse> {
  return new Promise((resolve, reject) => {
    let result: GraphQLResponse = { status: 0 };
    client.subscribe(payload, {
      next: (value) => {
        result = value as GraphQLResponse;
      },
      error: (error: unknown) =>
        Array.isArray(error)
          ? resolve({ status: 0, errors: error as GraphQLResponse['errors'] })
          : reject(error instanceof Error ? error : new Error(`websocket closed (${JSON.stringify(error)})`)),
      complete: () => resolve(result),
    });
  });
}

const codeOf = (answer: GraphQLResponse) => answer.errors?.[0]?.extensions?.code;

async function counter(app: App, name: string, labels: Record<string, string>): Promise<number> {
  const metric = app.metrics.registry.getSingleMetric(name);
  const { values } = await metric!.get();
  return values
    .filter((value) => Object.entries(labels).every(([key, wanted]) => value.labels[key] === wanted))
    .reduce((sum, value) => sum + value.value, 0);
}

function writeManifest(operations: Array<{ name: string; type: string; body: string; id?: string }>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'crm-manifest-')), 'persisted-query-manifest.json');
  writeFileSync(
    file,
    JSON.stringify({
      format: 'apollo-persisted-query-manifest',
      version: 1,
      operations: operations.map((operation) => ({ id: sha256(operation.body), ...operation })),
    }),
  );
  return file;
}

describe('automatic persisted queries (GRAPHQL_OPERATIONS=any, Redis store)', () => {
  let t: TestApp;
  let second: TestApp;
  let a: TestTenant;
  let client: WsClient;
  let redis: Redis;

  beforeAll(async () => {
    t = await startTestApp();
    second = await startTestApp();
    a = await createTenant(t.app);
    client = wsClient(t.url, `Bearer ${a.admin.token}`, { keepOpen: true });
    redis = new Redis(process.env.REDIS_URL!);
  });
  afterAll(async () => {
    await client.dispose();
    redis.disconnect();
    await second.stop();
    await t.stop();
  });

  it('answers an unknown hash with PERSISTED_QUERY_NOT_FOUND on POST, GET and WebSocket, never cached', async () => {
    const hash = sha256(unique('{ me { id } }'));
    const misses = await counter(t.app, 'crm_persisted_queries_total', { outcome: 'not_found' });
    const byPost = await post(t.url, { extensions: persisted(hash) }, a.admin.token);
    expect(byPost.status).toBe(200);
    expect(byPost.errors).toEqual([
      { message: 'PersistedQueryNotFound', extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } },
    ]);
    expect(byPost.headers.get('cache-control')).toBe('private, no-cache, must-revalidate');
    const byGet = await get(t.url, { extensions: persisted(hash) }, a.admin.token);
    expect(byGet.status).toBe(200);
    expect(codeOf(byGet)).toBe('PERSISTED_QUERY_NOT_FOUND');
    expect(byGet.headers.get('cache-control')).toBe('private, no-cache, must-revalidate');
    const bySocket = await ws(client, { query: '', extensions: persisted(hash) });
    expect(bySocket.errors?.map((error) => error.extensions?.code)).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
    expect(await counter(t.app, 'crm_persisted_queries_total', { outcome: 'not_found' })).toBe(misses + 3);
  });

  it('registers a document sent with its hash, then runs it by hash alone on every transport', async () => {
    const query = unique('query Me { me { id } }');
    const hash = sha256(query);
    const registered = await post(t.url, { query, extensions: persisted(hash) }, a.admin.token);
    expect(registered.data).toEqual({ me: { id: a.admin.id } });
    // In Redis under one key per hash (one slot in a cluster), for the documented TTL (a day by default).
    expect(await redis.get(`crm:apq:${hash}`)).toBe(query);
    expect(await redis.ttl(`crm:apq:${hash}`)).toBeGreaterThan(86_300);

    const fastPathAnswers = await counter(t.app, 'crm_graphql_fast_path_requests_total', {
      outcome: 'answered',
    });
    const hits = await counter(t.app, 'crm_persisted_queries_total', { outcome: 'hit' });
    const byPost = await post(t.url, { extensions: persisted(hash) }, a.admin.token);
    expect(byPost).toMatchObject({ status: 200, data: { me: { id: a.admin.id } } });
    expect(byPost.errors).toBeUndefined();
    // The fast path answers a hash hit itself (its document cache is by text: no parse) unless it is off.
    expect(await counter(t.app, 'crm_graphql_fast_path_requests_total', { outcome: 'answered' })).toBe(
      fastPathAnswers + (fastPathOn ? 1 : 0),
    );
    const byGet = await get(t.url, { extensions: persisted(hash), operationName: 'Me' }, a.admin.token);
    expect(byGet).toMatchObject({ status: 200, data: { me: { id: a.admin.id } } });
    // One user's view: a browser may keep it, a shared cache may not.
    expect(byGet.headers.get('cache-control')).toBe('private, no-cache');
    expect(byGet.headers.get('vary')).toMatch(/authorization/i);
    const bySocket = await ws(client, { query: '', extensions: persisted(hash) });
    expect(bySocket).toEqual({ data: { me: { id: a.admin.id } } });
    expect(await counter(t.app, 'crm_persisted_queries_total', { outcome: 'hit' })).toBe(hits + 3);
  });

  it('registers over WebSocket too (Apollo Client sends the document with its hash there)', async () => {
    const query = unique('{ me { email } }');
    const hash = sha256(query);
    expect(await ws(client, { query, extensions: persisted(hash) })).toEqual({
      data: { me: { email: a.admin.email } },
    });
    expect(await post(t.url, { extensions: persisted(hash) }, a.admin.token)).toMatchObject({
      data: { me: { email: a.admin.email } },
    });
  });

  it('shares registrations between gateways through Redis: registered on one, a hit on the other', async () => {
    const query = unique('{ me { id email } }');
    const hash = sha256(query);
    expect(codeOf(await post(second.url, { extensions: persisted(hash) }, a.admin.token))).toBe(
      'PERSISTED_QUERY_NOT_FOUND',
    );
    await post(t.url, { query, extensions: persisted(hash) }, a.admin.token);
    const onSecond = await post(second.url, { extensions: persisted(hash) }, a.admin.token);
    expect(onSecond.data).toEqual({ me: { id: a.admin.id, email: a.admin.email } });
  });

  it('refuses a document that does not match its hash on every transport, and registers nothing', async () => {
    const query = unique('{ me { id } }');
    const wrong = sha256(unique('{ me { id } }'));
    for (const answer of [
      await post(t.url, { query, extensions: persisted(wrong) }, a.admin.token),
      await get(t.url, { query, extensions: persisted(wrong) }, a.admin.token),
    ]) {
      expect(answer.status).toBe(400);
      expect(answer.errors).toEqual([
        {
          message: 'extensions.persistedQuery.sha256Hash is not the SHA-256 of query',
          extensions: { code: 'PERSISTED_QUERY_HASH_MISMATCH' },
        },
      ]);
      expect(answer.data).toBeUndefined();
    }
    expect(codeOf(await ws(client, { query, extensions: persisted(wrong) }))).toBe(
      'PERSISTED_QUERY_HASH_MISMATCH',
    );
    expect(await redis.exists(`crm:apq:${wrong}`)).toBe(0);
    expect(codeOf(await post(t.url, { extensions: persisted(wrong) }, a.admin.token))).toBe(
      'PERSISTED_QUERY_NOT_FOUND',
    );
  });

  it('refuses a malformed persistedQuery extension naming the field', async () => {
    const query = unique('{ me { id } }');
    const badVersion = await post(
      t.url,
      { query, extensions: { persistedQuery: { version: 2, sha256Hash: sha256(query) } } },
      a.admin.token,
    );
    expect(badVersion.status).toBe(400);
    expect(codeOf(badVersion)).toBe('PERSISTED_QUERY_INVALID');
    expect(badVersion.errors?.[0]?.message).toMatch(/extensions\.persistedQuery\.version must be 1/);
    const badHash = await post(t.url, { extensions: persisted('not-a-hash') }, a.admin.token);
    expect(codeOf(badHash)).toBe('PERSISTED_QUERY_INVALID');
    expect(badHash.errors?.[0]?.message).toMatch(/sha256Hash/);
  });

  it('refuses a mutation over GET, by hash or registering, and runs nothing', async () => {
    const lastName = `Apq${randomUUID().slice(0, 8)}`;
    const mutation = unique(
      `mutation { createLead(input: { firstName: "G", lastName: "${lastName}" }) { id } }`,
    );
    const hash = sha256(mutation);
    const leads = async () =>
      Number(
        (await t.app.dataSource.query('SELECT count(*) AS n FROM leads WHERE last_name = $1', [lastName]))[0]
          .n,
      );
    const registering = await get(t.url, { query: mutation, extensions: persisted(hash) }, a.admin.token);
    expect(registering.status).toBe(405);
    expect(codeOf(registering)).toBe('MUTATION_OVER_GET');
    expect(await redis.exists(`crm:apq:${hash}`)).toBe(0);
    expect(await leads()).toBe(0);
    // Registered over POST (where it runs once), a GET by its hash is still refused.
    expect(
      (await post(t.url, { query: mutation, extensions: persisted(hash) }, a.admin.token)).errors,
    ).toBeUndefined();
    expect(await leads()).toBe(1);
    const byHash = await get(t.url, { extensions: persisted(hash) }, a.admin.token);
    expect(byHash.status).toBe(405);
    expect(byHash.data).toBeUndefined();
    expect(await leads()).toBe(1);
  });

  it('runs an operation by hash with the caller’s own sharing: a user sees only what they may see', async () => {
    const other = await createTenant(t.app);
    const adminLead = await insertLead(t.app, a, a.admin.id, 'AdminOwned');
    const repLead = await insertLead(t.app, a, a.rep.id, 'RepOwned');
    const query = unique('query Lead($id: ID!) { lead(id: $id) { id lastName } }');
    const hash = sha256(query);
    // The admin registers it, with a lead only the admin may see.
    const first = await post(
      t.url,
      { query, variables: { id: adminLead }, extensions: persisted(hash) },
      a.admin.token,
    );
    expect(first.data).toEqual({ lead: { id: adminLead, lastName: 'AdminOwned' } });
    const byHash = (id: string, token: string) =>
      post(t.url, { variables: { id }, extensions: persisted(hash) }, token);
    expect((await byHash(repLead, a.rep.token)).data).toEqual({
      lead: { id: repLead, lastName: 'RepOwned' },
    });
    const hidden = await byHash(adminLead, a.rep.token);
    expect(hidden.data?.lead ?? null).toBeNull();
    expect((await byHash(repLead, a.admin.token)).data).toEqual({
      lead: { id: repLead, lastName: 'RepOwned' },
    });
    const otherTenant = await byHash(repLead, other.admin.token);
    expect(otherTenant.data?.lead ?? null).toBeNull();
    const overSocket = wsClient(t.url, `Bearer ${a.rep.token}`);
    try {
      const socketHidden = await ws(overSocket, {
        query: '',
        variables: { id: adminLead },
        extensions: persisted(hash),
      });
      expect(socketHidden.data?.lead ?? null).toBeNull();
    } finally {
      await overSocket.dispose();
    }
  });

  it('does not register for an anonymous caller (the document still answers as before)', async () => {
    const query = unique('{ __typename }');
    const hash = sha256(query);
    const anonymous = await post(t.url, { query, extensions: persisted(hash) });
    expect(anonymous.data).toEqual({ __typename: 'Query' });
    expect(await redis.exists(`crm:apq:${hash}`)).toBe(0);
  });
});

describe('the embedded store (no REDIS_URL): an LRU in the process', () => {
  it('registers and hits in-process, and another process does not share it', async () => {
    const first = await startTestApp({ REDIS_URL: '' });
    const other = await startTestApp({ REDIS_URL: '' });
    try {
      const a = await createTenant(first.app);
      const query = unique('{ me { id } }');
      const hash = sha256(query);
      expect(codeOf(await post(first.url, { extensions: persisted(hash) }, a.admin.token))).toBe(
        'PERSISTED_QUERY_NOT_FOUND',
      );
      await post(first.url, { query, extensions: persisted(hash) }, a.admin.token);
      expect((await post(first.url, { extensions: persisted(hash) }, a.admin.token)).data).toEqual({
        me: { id: a.admin.id },
      });
      const client = wsClient(first.url, `Bearer ${a.admin.token}`);
      try {
        expect(await ws(client, { query: '', extensions: persisted(hash) })).toEqual({
          data: { me: { id: a.admin.id } },
        });
      } finally {
        await client.dispose();
      }
      expect(codeOf(await post(other.url, { extensions: persisted(hash) }, a.admin.token))).toBe(
        'PERSISTED_QUERY_NOT_FOUND',
      );
    } finally {
      await other.stop();
      await first.stop();
    }
  });
});

describe('the operation safelist (GRAPHQL_OPERATION_MANIFEST, safelist by default)', () => {
  const me = 'query Me {\n  me {\n    id\n  }\n}';
  const lead = 'query Lead($id: ID!) {\n  lead(id: $id) {\n    id\n  }\n}';
  let t: TestApp;
  let a: TestTenant;
  let client: WsClient;
  let redis: Redis;

  beforeAll(async () => {
    const file = writeManifest([
      { name: 'Me', type: 'query', body: me },
      { name: 'Lead', type: 'query', body: lead },
    ]);
    t = await startTestApp({ GRAPHQL_OPERATION_MANIFEST: file });
    a = await createTenant(t.app);
    client = wsClient(t.url, `Bearer ${a.admin.token}`, { keepOpen: true });
    redis = new Redis(process.env.REDIS_URL!);
  });
  afterAll(async () => {
    await client.dispose();
    redis.disconnect();
    await t.stop();
  });

  it('runs a listed operation by id (no registration needed) and by its full body, on every transport', async () => {
    const expected = { me: { id: a.admin.id } };
    expect((await post(t.url, { extensions: persisted(sha256(me)) }, a.admin.token)).data).toEqual(expected);
    expect((await post(t.url, { query: me }, a.admin.token)).data).toEqual(expected);
    expect((await get(t.url, { extensions: persisted(sha256(me)) }, a.admin.token)).data).toEqual(expected);
    expect((await get(t.url, { query: me }, a.admin.token)).data).toEqual(expected);
    expect(await ws(client, { query: '', extensions: persisted(sha256(me)) })).toEqual({ data: expected });
    expect(await ws(client, { query: me })).toEqual({ data: expected });
  });

  it('refuses an unlisted document with OPERATION_NOT_IN_SAFELIST on every transport, and registers nothing', async () => {
    const unlisted = unique('{ me { id email } }');
    const refusals = [
      await post(t.url, { query: unlisted }, a.admin.token),
      await post(t.url, { query: unlisted, extensions: persisted(sha256(unlisted)) }, a.admin.token),
      await post(t.url, { extensions: persisted(sha256(unlisted)) }, a.admin.token),
      await get(t.url, { query: unlisted }, a.admin.token),
      await get(t.url, { extensions: persisted(sha256(unlisted)) }, a.admin.token),
    ];
    for (const answer of refusals) {
      expect(answer.status).toBe(400);
      expect(answer.errors?.map((error) => error.extensions?.code)).toEqual(['OPERATION_NOT_IN_SAFELIST']);
      expect(answer.data).toBeUndefined();
    }
    // A listed body with one character changed is another document.
    expect(codeOf(await post(t.url, { query: `${me} ` }, a.admin.token))).toBe('OPERATION_NOT_IN_SAFELIST');
    expect(codeOf(await ws(client, { query: unlisted }))).toBe('OPERATION_NOT_IN_SAFELIST');
    expect(codeOf(await ws(client, { query: '', extensions: persisted(sha256(unlisted)) }))).toBe(
      'OPERATION_NOT_IN_SAFELIST',
    );
    expect(await redis.exists(`crm:apq:${sha256(unlisted)}`)).toBe(0);
    expect(
      await counter(t.app, 'crm_persisted_queries_total', { outcome: 'refused' }),
    ).toBeGreaterThanOrEqual(8);
  });

  it('keeps sharing on a listed operation: another user of the company does not see the admin’s lead', async () => {
    const adminLead = await insertLead(t.app, a, a.admin.id, 'Listed');
    const run = (token: string) =>
      post(t.url, { variables: { id: adminLead }, extensions: persisted(sha256(lead)) }, token);
    expect((await run(a.admin.token)).data).toEqual({ lead: { id: adminLead } });
    expect((await run(a.rep.token)).data?.lead ?? null).toBeNull();
  });

  it('leaves introspection to GRAPHQL_INTROSPECTION (on here: Sandbox and codegen work)', async () => {
    const introspection = unique('query Types { __schema { queryType { name } } }');
    expect((await post(t.url, { query: introspection }, a.admin.token)).data).toEqual({
      __schema: { queryType: { name: 'Query' } },
    });
    expect(await ws(client, { query: introspection })).toEqual({
      data: { __schema: { queryType: { name: 'Query' } } },
    });
  });
});

describe('the safelist with introspection off', () => {
  it('refuses introspection as before (the validation rule), not as unlisted', async () => {
    const file = writeManifest([{ name: 'Me', type: 'query', body: 'query Me { me { id } }' }]);
    const t = await startTestApp({ GRAPHQL_OPERATION_MANIFEST: file, GRAPHQL_INTROSPECTION: 'false' });
    try {
      const a = await createTenant(t.app);
      const answer = await post(t.url, { query: '{ __schema { queryType { name } } }' }, a.admin.token);
      expect(codeOf(answer)).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(answer.errors?.[0]?.message).toMatch(/introspection/i);
    } finally {
      await t.stop();
    }
  });
});

describe('GRAPHQL_OPERATIONS=persisted', () => {
  let t: TestApp;
  let a: TestTenant;

  beforeAll(async () => {
    const file = writeManifest([{ name: 'Me', type: 'query', body: 'query Me { me { id } }' }]);
    t = await startTestApp({ GRAPHQL_OPERATIONS: 'persisted', GRAPHQL_OPERATION_MANIFEST: file });
    a = await createTenant(t.app);
  });
  afterAll(() => t.stop());

  it('runs a full document only once it is registered (or listed)', async () => {
    const query = unique('{ me { email } }');
    const before = await post(t.url, { query }, a.admin.token);
    expect(before.status).toBe(400);
    expect(codeOf(before)).toBe('PERSISTED_QUERY_REQUIRED');
    const client = wsClient(t.url, `Bearer ${a.admin.token}`);
    try {
      expect(codeOf(await ws(client, { query }))).toBe('PERSISTED_QUERY_REQUIRED');
    } finally {
      await client.dispose();
    }
    expect((await post(t.url, { query, extensions: persisted(sha256(query)) }, a.admin.token)).data).toEqual({
      me: { email: a.admin.email },
    });
    expect((await post(t.url, { query }, a.admin.token)).data).toEqual({ me: { email: a.admin.email } });
    expect((await post(t.url, { query: 'query Me { me { id } }' }, a.admin.token)).data).toEqual({
      me: { id: a.admin.id },
    });
  });
});

describe('a manifest that cannot be used fails the boot, naming the file and the entry', () => {
  async function bootFailure(file: string): Promise<{ code: number | null; output: string }> {
    const gateway = spawnBuilt('main', testProcessEnv({ GRAPHQL_OPERATION_MANIFEST: file }));
    const code = await gateway.exited;
    return { code, output: gateway.output() };
  }

  it('refuses JSON that does not parse', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'crm-manifest-')), 'broken.json');
    writeFileSync(file, '{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [');
    const { code, output } = await bootFailure(file);
    expect(code).toBe(78);
    expect(output).toContain(`GRAPHQL_OPERATION_MANIFEST ${file}: is not valid JSON`);
  });

  it('refuses an entry whose id is not the SHA-256 of its body', async () => {
    const file = writeManifest([
      { name: 'Me', type: 'query', body: 'query Me { me { id } }' },
      { name: 'Forged', type: 'query', body: 'query Forged { me { email } }', id: sha256('something else') },
    ]);
    const { code, output } = await bootFailure(file);
    expect(code).toBe(78);
    expect(output).toContain(
      `GRAPHQL_OPERATION_MANIFEST ${file}: operations[1] (id ${sha256('something else')}, name "Forged"): id is not the SHA-256 of body`,
    );
  });
});
