import { execute, parse, type GraphQLUnionType } from 'graphql';
import { compileQuery, isCompiledQuery } from 'graphql-jit';
import { ContextFactory } from '../../src/graphql/context';
import { buildGatewaySchema } from '../../src/graphql/schema';
import { MODULES } from '../../src/modules/modules';
import { createTenant, insertAccount, insertDeal, type TestTenant } from '../helpers/fixtures';
import { startTestApp, wsClient, wsExecute, type TestApp } from '../helpers/test-app';

/**
 * The fast path answers known documents without Apollo's pipeline; it must answer exactly as Apollo does. Two
 * gateways on the same database, one with the fast path and one without, get the same requests.
 */
describe('GraphQL fast path', () => {
  let fast: TestApp;
  let apollo: TestApp;
  let a: TestTenant;
  let dealId: string;

  beforeAll(async () => {
    fast = await startTestApp({ GRAPHQL_FAST_PATH: 'true', GRAPHQL_INTROSPECTION: 'false' });
    apollo = await startTestApp({ GRAPHQL_FAST_PATH: 'false', GRAPHQL_INTROSPECTION: 'false' });
    a = await createTenant(fast.app);
    const account = await insertAccount(fast.app, a, a.admin.id, 'Fast Co');
    dealId = await insertDeal(fast.app, a, a.rep.id, account, 'Fast deal');
  });
  afterAll(async () => {
    await fast.stop();
    await apollo.stop();
  });

  async function outcomes(app: TestApp) {
    const metric = await app.app.metrics.registry
      .getSingleMetric('crm_graphql_fast_path_requests_total')
      ?.get();
    const count = (outcome: string) =>
      metric?.values.find((value) => value.labels.outcome === outcome)?.value ?? 0;
    return { answered: count('answered'), apollo: count('apollo') };
  }

  async function post(app: TestApp, body: string, headers: Record<string, string> = {}) {
    const response = await fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    return {
      status: response.status,
      contentType: response.headers.get('content-type'),
      retryAfter: response.headers.get('retry-after'),
      requestId: response.headers.get('x-request-id'),
      body: await response.text(),
    };
  }

  const auth = (token: string) => ({ authorization: `Bearer ${token}` });
  const gql = (query: string, variables?: Record<string, unknown>, operationName?: string) =>
    JSON.stringify({ query, variables, operationName });

  const cases: Array<[string, () => [string, Record<string, string>], 'answered' | 'apollo']> = [
    ['a query', () => [gql('{ me { id email } }'), auth(a.rep.token)], 'answered'],
    [
      'a query with variables, fragments and an operation name',
      () => [
        gql(
          'query One($id: ID!) { deal(id: $id) { ...D } } query Two { me { id } } fragment D on Deal { id name owner { name } account { name } }',
          { id: dealId },
          'One',
        ),
        auth(a.rep.token),
      ],
      'answered',
    ],
    [
      'a hidden account is null for the caller',
      () => [gql('{ deals(pageSize: 5) { items { name account { name } } } }'), auth(a.rep.token)],
      'answered',
    ],
    [
      'a union (search items), compiled by graphql-jit',
      () => [
        gql(
          '{ search(input: { entityType: DEAL }) { items { __typename ... on Deal { name owner { name } } } } }',
        ),
        auth(a.rep.token),
      ],
      'answered',
    ],
    [
      'a resolver error (partial data, its code)',
      () => [gql('{ me { id } deal(id: "not-a-uuid") { id } }'), auth(a.rep.token)],
      'answered',
    ],
    ['anonymous (401, nothing ran): Apollo answers', () => [gql('{ me { id } }'), {}], 'apollo'],
    [
      'a client that takes only HTML',
      () => [gql('{ me { id } }'), { ...auth(a.rep.token), accept: 'text/html' }],
      'apollo',
    ],
    [
      'a client that takes JSON among others',
      () => [gql('{ me { id } }'), { ...auth(a.rep.token), accept: 'text/html, application/json;q=0.9' }],
      'answered',
    ],
    [
      'a body with a byte order mark',
      () => ['\uFEFF' + gql('{ me { name } }'), auth(a.rep.token)],
      'answered',
    ],
    ['a bad token', () => [gql('{ me { id } }'), auth('not.a.jwt')], 'apollo'],
    [
      'variables that do not coerce',
      () => [gql('query($id: ID!) { deal(id: $id) { id } }', { id: { no: 1 } }), auth(a.rep.token)],
      'apollo',
    ],
    [
      'a page over the limit',
      () => [gql('{ deals(pageSize: 100000) { items { id } } }'), auth(a.rep.token)],
      'apollo',
    ],
    ['a validation error', () => [gql('{ me { nope } }'), auth(a.rep.token)], 'apollo'],
    [
      'introspection while it is off',
      () => [gql('{ __schema { types { name } } }'), auth(a.rep.token)],
      'apollo',
    ],
    ['a body that is not JSON', () => ['{"query": ', auth(a.rep.token)], 'apollo'],
    ['a JSON body that is no object', () => ['"{ me { id } }"', auth(a.rep.token)], 'apollo'],
    ['a batch', () => [`[${gql('{ me { id } }')}]`, auth(a.rep.token)], 'apollo'],
    [
      'an unknown operation name',
      () => [gql('query A { me { id } }', undefined, 'B'), auth(a.rep.token)],
      'apollo',
    ],
  ];

  it.each(cases)('%s: the same status, headers and body on both paths', async (_name, request, expected) => {
    const [body, headers] = request();
    // Twice: the first request of a document parses and validates it (graphql-js executes it); the second finds it
    // known (graphql-jit executes it).
    for (let round = 0; round < 2; round++) {
      const before = await outcomes(fast);
      const onFast = await post(fast, body, { ...headers, 'x-request-id': 'same-id' });
      const after = await outcomes(fast);
      const onApollo = await post(apollo, body, { ...headers, 'x-request-id': 'same-id' });
      expect(onFast).toEqual(onApollo);
      expect(after[expected] - before[expected]).toBe(1);
    }
  });

  it('graphql-jit compiles a document with a union (a synchronous resolveType) and answers as graphql-js', async () => {
    const { services, logger } = fast.app;
    const schema = await buildGatewaySchema(MODULES.flatMap((module) => module.resolvers?.(services) ?? []));
    const contexts = new ContextFactory({
      identity: services.identity,
      modules: MODULES,
      services,
      logger,
      maxBatchSize: 100,
    });
    const principal = await contexts.authenticate(`Bearer ${a.admin.token}`);
    // What the fast path checks before compiling: no union of the schema keeps type-graphql's async resolveType.
    for (const name of ['SearchItem', 'CrmRecord'])
      expect((schema.getType(name) as GraphQLUnionType).resolveType?.constructor.name).toBe('Function');
    for (const entityType of ['DEAL', 'ACCOUNT']) {
      const document = parse(
        `{ search(input: { entityType: ${entityType} }) { total items { __typename ... on Deal { id name owner { name } } ... on Account { id name } } } }`,
      );
      const compiled = compileQuery(schema, document);
      expect(isCompiledQuery(compiled)).toBe(true);
      if (!isCompiledQuery(compiled)) return;
      const onJit = await compiled.query(undefined, contexts.create(principal), {});
      const onGraphqlJs = await execute({ schema, document, contextValue: contexts.create(principal) });
      expect(onJit.errors).toBeUndefined();
      expect(JSON.parse(JSON.stringify(onJit))).toEqual(JSON.parse(JSON.stringify(onGraphqlJs)));
      const { items } = (onJit.data as { search: { items: Array<{ __typename: string; name: string }> } })
        .search;
      expect(items).toContainEqual(
        expect.objectContaining(
          entityType === 'DEAL'
            ? { __typename: 'Deal', name: 'Fast deal' }
            : { __typename: 'Account', name: 'Fast Co' },
        ),
      );
    }
  });

  it("checks the page size and complexity limits against each request's variables, once a document is known", async () => {
    const query = 'query($n: Int!) { deals(pageSize: $n) { items { id } } }';
    const small = await post(fast, gql(query, { n: 5 }), auth(a.rep.token));
    expect(small.status).toBe(200);
    for (const app of [fast, apollo]) {
      const large = JSON.parse((await post(app, gql(query, { n: 100000 }), auth(a.rep.token))).body) as {
        errors: Array<{ extensions: { code: string } }>;
      };
      expect(large.errors[0]!.extensions.code).toBe('PAGE_SIZE_TOO_LARGE');
    }
  });

  it('a mutation on the fast path writes once and answers like Apollo', async () => {
    const mutation = gql(
      'mutation($n: String!) { createLead(input: { firstName: $n, lastName: "F" }) { firstName } }',
      {
        n: 'Fasty',
      },
    );
    const before = await outcomes(fast);
    const onFast = await post(fast, mutation, auth(a.rep.token));
    const onApollo = await post(apollo, mutation, auth(a.rep.token));
    expect((await outcomes(fast)).answered - before.answered).toBe(1);
    expect(onFast.body).toBe(onApollo.body);
    expect(JSON.parse(onFast.body)).toEqual({ data: { createLead: { firstName: 'Fasty' } } });
    const [counted] = await fast.app.dataSource.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM leads WHERE company_id = $1 AND first_name = 'Fasty'`,
      [a.companyId],
    );
    expect(counted!.n).toBe(2);
  });

  it('with introspection off, the fast path, Apollo and graphql-ws refuse it in the same words (one rule set)', async () => {
    const refusals: unknown[] = [];
    for (const query of ['{ __schema { __typename } }', '{ __type(name: "Deal") { name } }']) {
      for (const app of [fast, apollo]) {
        const response = await post(app, gql(query), auth(a.rep.token));
        expect(response.status).toBe(400);
        refusals.push((JSON.parse(response.body) as { errors: unknown[] }).errors);
        const client = wsClient(app.url, `Bearer ${a.rep.token}`);
        try {
          refusals.push((await wsExecute(client, query)).errors);
        } finally {
          await client.dispose();
        }
      }
    }
    expect(refusals).toHaveLength(8);
    for (const [i, errors] of refusals.entries())
      expect(errors).toEqual([
        expect.objectContaining({
          message: expect.stringMatching(
            i < 4
              ? /GraphQL introspection has been disabled, but the requested query contained the field "__schema"/
              : /GraphQL introspection has been disabled, but the requested query contained the field "__type"/,
          ),
          extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
        }),
      ]);
    // Each transport said the same thing, to the character.
    expect(new Set(refusals.slice(0, 4).map((e) => JSON.stringify(e))).size).toBe(1);
  });

  it('records the operation and the request in the same metrics as the Apollo path', async () => {
    const operations = async () =>
      (await fast.app.metrics.registry.getSingleMetric('crm_graphql_operations_total')?.get())?.values.find(
        (value) => value.labels.operation_name === 'FastNamed',
      )?.value ?? 0;
    const before = await operations();
    const response = await post(fast, gql('query FastNamed { me { id } }'), auth(a.rep.token));
    expect(response.status).toBe(200);
    expect(response.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await operations()) - before).toBe(1);
  });
});
