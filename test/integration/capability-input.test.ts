import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { createTenant, insertLead, type TestTenant } from '../helpers/fixtures';
import { startTestApp, wsClient, wsExecute, type GraphQLResponse, type TestApp } from '../helpers/test-app';

/**
 * The deepest, longest, largest and strangest values a client can send to the wave-2 capabilities (search, reports,
 * vectors, exports, workflows, audit): each gets a coded refusal (never INTERNAL_SERVER_ERROR) within a second, over
 * HTTP and over graphql-ws, and the process answers /healthz at once afterwards.
 */
interface SweepCase {
  label: string;
  query: string;
  variables?: Record<string, unknown>;
  /**
   * Time allowed for the refusal (default 1 s). Lists of 10,000 input objects get 3 s: graphql-js coerces each one,
   * ~0.3-0.5 s on an idle machine in its non-production mode (the test's), more under load; before the size checks
   * came first they took 8-14 s.
   */
  withinMs?: number;
  /** The codes a correct refusal may carry (the first error's). */
  codes: string[];
  /** What the refusal must name (in its message or a violation's field). */
  names?: string;
  /**
   * The variables as JSON text, for values JSON.stringify cannot write: nesting it overflows on (it recurses) and
   * numbers it has no notation for. Sent as is over HTTP and graphql-ws.
   */
  rawVariables?: string;
}

/** `{"a":{"a":...}}` nested `levels` deep, as JSON text. */
const nestedJson = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;

const MEGA = 'x'.repeat(900_000); // under the 1 MB body limit once wrapped in JSON
const SEARCH = 'query($input: SearchInput!) { search(input: $input) { total } }';
const REPORT = 'query($input: ReportInput!) { report(input: $input) { tookMs } }';
const SIMILAR = 'query($input: SimilarInput!) { similar(input: $input) { docId } }';
const EXPORT = 'mutation($input: StartExportInput!) { startExport(input: $input) { id } }';
const CREATE_WORKFLOW = 'mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { id } }';
const RUN_WORKFLOW = 'mutation($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { id } }';
const AUDIT = 'query($input: AuditLogInput) { auditLog(input: $input) { hasNextPage } }';
const hashStep = (key: string, dependsOn?: string[]) => ({
  key,
  name: 'step',
  type: 'hash',
  action: 'compute.hash',
  config: { of: 'input', rounds: 1 },
  ...(dependsOn ? { dependsOn } : {}),
});
const leadSearch = (extra: Record<string, unknown>) => ({ input: { entityType: 'LEAD', ...extra } });

const cases: SweepCase[] = [
  // JSON values nested past the limit: a stack overflow (500) before the walks were made flat.
  {
    label: 'a search filter value nested 5000 levels deep',
    query: SEARCH,
    rawVariables: `{"input":{"entityType":"LEAD","filters":[{"field":"status","op":"EQ","value":${nestedJson(5000)}}]}}`,
    codes: ['BAD_USER_INPUT'],
    names: 'search.input.filters[0].value',
  },
  {
    label: 'a workflow run input nested 5000 levels deep',
    query: RUN_WORKFLOW,
    rawVariables: `{"id":"${randomUUID()}","input":${nestedJson(5000)}}`,
    codes: ['BAD_USER_INPUT'],
    names: 'runWorkflow.input',
  },
  {
    label: 'a workflow run input nested 40 levels deep, written in the document',
    query: `mutation { runWorkflow(id: "${randomUUID()}", input: ${'{a:'.repeat(40)}1${'}'.repeat(40)}) { id } }`,
    codes: ['BAD_USER_INPUT'],
    names: 'runWorkflow.input',
  },
  {
    label: 'a list literal nested 2400 levels deep (deeper than the parser recurses)',
    query: `mutation { runWorkflow(id: "${randomUUID()}", input: ${'['.repeat(2400)}1${']'.repeat(2400)}) { id } }`,
    codes: ['QUERY_TOO_DEEP'],
  },
  {
    label: 'a workflow run input of 100,001 JSON values',
    query: RUN_WORKFLOW,
    variables: { id: randomUUID(), input: new Array(100_001).fill(0) },
    codes: ['BAD_USER_INPUT'],
    names: 'runWorkflow.input',
  },
  {
    label: 'a JSON number too large for a double (1e400, read as Infinity)',
    query: RUN_WORKFLOW,
    rawVariables: `{"id":"${randomUUID()}","input":{"n":1e400}}`,
    codes: ['BAD_USER_INPUT'],
    names: 'runWorkflow.input.n',
  },
  // Size limits before per-element work.
  {
    withinMs: 3000,
    label: 'createWorkflow with 10,000 steps',
    query: CREATE_WORKFLOW,
    variables: { input: { name: 'big', steps: Array.from({ length: 10_000 }, (_, i) => hashStep(`s${i}`)) } },
    codes: ['BAD_USER_INPUT'],
    names: 'input.steps',
  },
  {
    label: 'createWorkflow with a step depending on 10,000 keys',
    query: CREATE_WORKFLOW,
    variables: {
      input: {
        name: 'wide',
        steps: [
          hashStep(
            'a',
            Array.from({ length: 10_000 }, (_, i) => `k${i}`),
          ),
        ],
      },
    },
    codes: ['BAD_USER_INPUT'],
    names: 'input.steps[0].dependsOn',
  },
  {
    label: 'a 900 KB step key',
    query: CREATE_WORKFLOW,
    variables: { input: { name: 'long', steps: [hashStep(MEGA)] } },
    codes: ['BAD_USER_INPUT'],
    names: 'input.steps[0].key',
  },
  // Search.
  {
    label: 'a 900 KB search text',
    query: SEARCH,
    variables: leadSearch({ text: MEGA }),
    codes: ['BAD_USER_INPUT'],
    names: 'input.text',
  },
  {
    label: 'a search page size of 2^53',
    query: SEARCH,
    variables: leadSearch({ pageSize: 2 ** 53 }),
    codes: ['BAD_USER_INPUT', 'PAGE_SIZE_TOO_LARGE'],
    names: 'pageSize',
  },
  {
    label: 'a search page of -1',
    query: SEARCH,
    variables: leadSearch({ page: -1 }),
    codes: ['BAD_USER_INPUT'],
    names: 'input.page',
  },
  {
    label: 'a search IN filter of 100,000 values',
    query: SEARCH,
    variables: leadSearch({
      filters: [{ field: 'status', op: 'IN', values: new Array(100_000).fill('NEW') }],
    }),
    codes: ['BAD_USER_INPUT'],
    names: 'input.filters[0].values',
  },
  {
    label: 'an unknown enum value inside a JSON filter value',
    query: SEARCH,
    variables: leadSearch({ filters: [{ field: 'status', op: 'EQ', value: 'NOT_A_STATUS' }] }),
    codes: ['BAD_USER_INPUT'],
    names: 'input.filters[0].value',
  },
  {
    label: 'an object where a filter value must be a scalar',
    query: SEARCH,
    variables: leadSearch({ filters: [{ field: 'score', op: 'GTE', value: { $gt: 1 } }] }),
    codes: ['BAD_USER_INPUT'],
    names: 'input.filters[0].value',
  },
  {
    label: 'a 900 KB search cursor',
    query: SEARCH,
    variables: leadSearch({ after: MEGA }),
    codes: ['BAD_USER_INPUT'],
    names: 'input.after',
  },
  {
    label: 'a facet of a billion buckets',
    query: SEARCH,
    variables: leadSearch({ facets: [{ field: 'status', size: 1e9 }] }),
    codes: ['BAD_USER_INPUT', 'PAGE_SIZE_TOO_LARGE'],
    names: 'size',
  },
  {
    label: 'a facet with 100,000 edges',
    query: SEARCH,
    variables: leadSearch({
      facets: [{ field: 'score', edges: Array.from({ length: 100_000 }, (_, i) => i) }],
    }),
    codes: ['BAD_USER_INPUT'],
    names: 'input.facets[0].edges',
  },
  {
    label: 'a facet time zone that does not exist',
    query: SEARCH,
    variables: leadSearch({ facets: [{ field: 'createdAt', interval: 'MONTH', timeZone: 'Mars/Phobos' }] }),
    codes: ['BAD_USER_INPUT'],
    names: 'timeZone',
  },
  // Reports.
  {
    withinMs: 3000,
    label: 'a report of 10,000 aggregates',
    query: REPORT,
    variables: {
      input: {
        entityType: 'DEAL',
        aggregates: Array.from({ length: 10_000 }, (_, i) => ({ name: `c${i}`, type: 'COUNT' })),
      },
    },
    codes: ['BAD_USER_INPUT'],
    names: 'input.aggregates',
  },
  {
    label: 'a report dimension list of 1,000',
    query: REPORT,
    variables: {
      input: {
        entityType: 'DEAL',
        aggregates: [{ name: 'c', type: 'COUNT', dimensions: new Array(1000).fill('stage') }],
      },
    },
    codes: ['BAD_USER_INPUT'],
    names: 'dimensions',
  },
  {
    label: 'a report time zone that does not exist',
    query: REPORT,
    variables: { input: { entityType: 'DEAL', aggregates: [{ name: 'c', type: 'COUNT' }], timeZone: MEGA } },
    codes: ['BAD_USER_INPUT'],
    names: 'timeZone',
  },
  {
    label: 'a report date range in year 275760',
    query: REPORT,
    variables: {
      input: {
        entityType: 'DEAL',
        aggregates: [{ name: 'c', type: 'COUNT' }],
        dateRange: { field: 'createdAt', from: '+275760-09-13T00:00:00.000Z' },
      },
    },
    codes: ['BAD_USER_INPUT'],
    names: 'from',
  },
  // Vectors.
  {
    label: 'similar with k of a billion',
    query: SIMILAR,
    variables: { input: { text: 'acme', k: 1e9 } },
    codes: ['BAD_USER_INPUT'],
    names: 'input.k',
  },
  {
    label: 'similar with a 100,000-number vector',
    query: SIMILAR,
    variables: { input: { vector: new Array(100_000).fill(0.5) } },
    codes: ['BAD_USER_INPUT'],
    names: 'input.vector',
  },
  {
    label: 'similar with 900 KB of text',
    query: SIMILAR,
    variables: { input: { text: MEGA } },
    codes: ['BAD_USER_INPUT'],
    names: 'input.text',
  },
  {
    label: 'similar with a metadata filter of 100,000 values',
    query: SIMILAR,
    variables: {
      input: {
        text: 'acme',
        filters: { metadata: [{ key: 'stage', values: new Array(100_000).fill('x') }] },
      },
    },
    codes: ['BAD_USER_INPUT'],
    names: 'input.filters.metadata[0].values',
  },
  {
    withinMs: 3000,
    label: 'indexVectors with 10,000 inputs',
    query: 'mutation($inputs: [IndexVectorInput!]!) { indexVectors(inputs: $inputs) { docId } }',
    variables: { inputs: Array.from({ length: 10_000 }, (_, i) => ({ docId: `d${i}`, vector: [1] })) },
    codes: ['BAD_USER_INPUT'],
    names: 'inputs',
  },
  {
    label: 'indexVector with 900 KB metadata',
    query: 'mutation($input: IndexVectorInput!) { indexVector(input: $input) { docId } }',
    variables: { input: { docId: 'd', vector: [1], metadata: { note: MEGA } } },
    codes: ['BAD_USER_INPUT'],
    names: 'input',
  },
  // Exports.
  {
    label: 'an export of 10,000 fields',
    query: EXPORT,
    variables: { input: { entityType: 'LEAD', format: 'CSV', fields: new Array(10_000).fill('id') } },
    codes: ['BAD_USER_INPUT'],
    names: 'input.fields',
  },
  {
    label: 'an export file name that climbs out of its directory',
    query: EXPORT,
    variables: { input: { entityType: 'LEAD', format: 'CSV', fields: ['id'], fileName: '../../etc/passwd' } },
    codes: ['BAD_USER_INPUT'],
    names: 'input.fileName',
  },
  {
    label: 'an export job id that is no UUID',
    query: 'query { exportJob(id: "1; DROP TABLE export_jobs") { id } }',
    codes: ['BAD_USER_INPUT', 'NOT_FOUND'],
  },
  {
    label: 'a billion export jobs',
    query: 'query { exportJobs(first: 1000000000) { id } }',
    codes: ['BAD_USER_INPUT', 'PAGE_SIZE_TOO_LARGE'],
    names: 'first',
  },
  // Workflows.
  {
    label: 'a workflow step config nested 5000 levels deep',
    query: CREATE_WORKFLOW,
    rawVariables: `{"input":{"name":"deep","steps":[{"key":"a","name":"a","type":"hash","action":"compute.hash","config":${nestedJson(5000)}}]}}`,
    codes: ['BAD_USER_INPUT'],
    names: 'createWorkflow.input.steps[0].config',
  },
  // Audit.
  {
    label: 'an audit log page of a billion',
    query: AUDIT,
    variables: { input: { first: 1e9 } },
    codes: ['BAD_USER_INPUT', 'PAGE_SIZE_TOO_LARGE'],
    names: 'first',
  },
  {
    label: 'a 900 KB audit cursor',
    query: AUDIT,
    variables: { input: { after: MEGA } },
    codes: ['BAD_USER_INPUT'],
    names: 'input.after',
  },
  {
    label: 'an audit archive month that does not exist',
    query: 'mutation { restoreAuditArchive(month: "2026-13") { month } }',
    codes: ['BAD_USER_INPUT', 'FORBIDDEN'],
  },
];

async function withWsClient<T>(
  url: string,
  token: string,
  run: (client: ReturnType<typeof wsClient>) => Promise<T>,
): Promise<T> {
  const client = wsClient(url, `Bearer ${token}`);
  try {
    return await run(client);
  } finally {
    await client.dispose();
  }
}

/** One operation over the graphql-transport-ws protocol with its variables sent as the given JSON text. */
function rawWsExecute(
  url: string,
  authorization: string,
  query: string,
  variables: string,
): Promise<GraphQLResponse> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url.replace(/^http/, 'ws') + '/graphql', 'graphql-transport-ws');
    let result: GraphQLResponse = { status: 0 };
    const finish = (outcome: GraphQLResponse | Error) => {
      socket.close();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    socket.on('open', () =>
      socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization } })),
    );
    socket.on('message', (data) => {
      const message = JSON.parse((data as Buffer).toString()) as { type: string; payload?: any };
      if (message.type === 'connection_ack')
        socket.send(
          `{"id":"1","type":"subscribe","payload":{"query":${JSON.stringify(query)},"variables":${variables}}}`,
        );
      else if (message.type === 'next') result = message.payload as GraphQLResponse;
      else if (message.type === 'error') finish({ status: 0, errors: message.payload });
      else if (message.type === 'complete') finish(result);
    });
    socket.on('close', (code, reason) => finish(new Error(`websocket closed (${code} ${String(reason)})`)));
    socket.on('error', (error) => finish(error));
  });
}

describe('wave-2 capabilities: the strangest inputs get a coded refusal within a second', () => {
  let t: TestApp;
  let a: TestTenant;

  beforeAll(async () => {
    t = await startTestApp();
    a = await createTenant(t.app);
    await insertLead(t.app, a, a.admin.id, 'Visible');
  });
  afterAll(() => t.stop());

  function expectRefused(res: GraphQLResponse, c: SweepCase) {
    const [error] = res.errors ?? [];
    expect(error?.extensions?.code).not.toBe('INTERNAL_SERVER_ERROR');
    expect(c.codes).toContain(error?.extensions?.code);
    if (c.names) {
      const named = [error?.message ?? '', ...(error?.extensions?.violations ?? []).map((v) => v.field)];
      expect(named.join(' ')).toContain(c.names);
    }
  }

  async function healthzFast() {
    const started = performance.now();
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    expect(performance.now() - started).toBeLessThan(500);
  }

  /**
   * The answer and how long it took, the fastest of up to three tries while each is over the bound: a refusal that
   * waits on per-element work is slow every time (seconds, before the fixes); one try, or two, may meet a busy
   * machine or a major garbage collection of this test process, which by then holds every earlier suite's leftovers.
   */
  async function timed<T>(send: () => Promise<T>, withinMs: number): Promise<[T, number]> {
    let best = Infinity;
    let res!: T;
    for (let attempt = 0; attempt < 3 && best >= withinMs; attempt++) {
      const started = performance.now();
      res = await send();
      best = Math.min(best, performance.now() - started);
    }
    return [res, best];
  }

  it.each(cases.map((c) => [c.label, c] as const))('HTTP: %s', async (_label, c) => {
    const [res, ms] = await timed(async () => {
      const response = await fetch(`${t.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${a.admin.token}` },
        body: c.rawVariables
          ? `{"query":${JSON.stringify(c.query)},"variables":${c.rawVariables}}`
          : JSON.stringify({ query: c.query, variables: c.variables }),
      });
      return { ...((await response.json()) as GraphQLResponse), status: response.status };
    }, c.withinMs ?? 1000);
    expect(ms).toBeLessThan(c.withinMs ?? 1000);
    expect(res.status).not.toBe(500);
    expectRefused(res, c);
    await healthzFast();
  });

  it.each(cases.map((c) => [c.label, c] as const))('WebSocket: %s', async (_label, c) => {
    const [res, ms] = await timed(
      () =>
        c.rawVariables
          ? rawWsExecute(t.url, `Bearer ${a.admin.token}`, c.query, c.rawVariables)
          : withWsClient(t.url, a.admin.token, (client) => wsExecute(client, c.query, c.variables)),
      c.withinMs ?? 1000,
    );
    expect(ms).toBeLessThan(c.withinMs ?? 1000);
    expectRefused(res, c);
    await healthzFast();
  });

  it.each([
    ['a NUL byte in a field name', 'entityType=LEAD&fields=id%00x', 'query.fields'],
    ['a lone surrogate in the file name', 'entityType=LEAD&fields=id&fileName=%ED%A0%80', 'query.fileName'],
    ['an unknown entity type', 'entityType=SECRETS&fields=id', 'entityType'],
    ['an unknown format', 'entityType=LEAD&fields=id&format=EXE', 'format'],
    ['a limit of 10^12', 'entityType=LEAD&fields=id&limit=1000000000000', 'limit'],
    ['a limit that is no number', 'entityType=LEAD&fields=id&limit=NaN', 'limit'],
    ['filters that are no JSON', 'entityType=LEAD&fields=id&filters=%7B', 'query.filters'],
    [
      'a filter value nested 600 levels deep (what fits in a URL)',
      `entityType=LEAD&fields=id&filters=${encodeURIComponent(
        `[{"field":"status","op":"EQ","value":${nestedJson(600)}}]`,
      )}`,
      'filters',
    ],
    [
      '150 filters',
      `entityType=LEAD&fields=id&filters=${encodeURIComponent(
        JSON.stringify(new Array(150).fill({ field: 'status', op: 'EQ', value: 'NEW' })),
      )}`,
      'filters',
    ],
  ])(
    'GET /exports/stream with %s: 400 BAD_USER_INPUT naming it, within a second',
    async (_label, query, names) => {
      const [{ status, body }, ms] = await timed(async () => {
        const response = await fetch(`${t.url}/exports/stream?${query}`, {
          headers: { authorization: `Bearer ${a.admin.token}` },
        });
        return { status: response.status, body: (await response.json()) as GraphQLResponse };
      }, 1000);
      expect(ms).toBeLessThan(1000);
      expect(status).toBe(400);
      expect(body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      const named = [
        body.errors?.[0]?.message ?? '',
        ...(body.errors?.[0]?.extensions?.violations ?? []).map((v) => v.field),
      ];
      expect(named.join(' ')).toContain(names);
      await healthzFast();
    },
  );

  it.each([
    ['an id that is no UUID', 'not-a-uuid', {}, [400, 404]],
    ['an id with a NUL byte', 'a%00b', {}, [400, 404]],
    ['an unknown job', randomUUID(), {}, [404]],
    ['an unknown job with a range past any size', randomUUID(), { range: 'bytes=99999999999999-' }, [404]],
  ])('GET /exports/:id/download with %s: a coded refusal', async (_label, id, headers, statuses) => {
    const response = await fetch(`${t.url}/exports/${id}/download`, {
      headers: { authorization: `Bearer ${a.admin.token}`, ...headers },
    });
    expect(statuses).toContain(response.status);
    const body = (await response.json()) as GraphQLResponse;
    expect(body.errors?.[0]?.extensions?.code).toMatch(/^(BAD_USER_INPUT|NOT_FOUND)$/);
  });

  it.each([
    ['exportProgress', 'subscription($id: ID!) { exportProgress(jobId: $id) { id status } }'],
    ['workflowRunUpdated', 'subscription($id: ID!) { workflowRunUpdated(runId: $id) { id status } }'],
  ])(
    '%s of an id that is no UUID, unknown, or NUL-laden: a coded error, the socket stays usable',
    async (_label, query) => {
      await withWsClient(t.url, a.admin.token, async (client) => {
        for (const id of ['nope', randomUUID(), 'a\u0000b']) {
          const res = await wsExecute(client, query, { id });
          expect(res.errors?.[0]?.extensions?.code).toMatch(/^(BAD_USER_INPUT|NOT_FOUND)$/);
        }
        const me = await wsExecute(client, '{ me { id } }');
        expect(me.data?.me.id).toBe(a.admin.id);
      });
    },
  );

  it('runWorkflow takes its input written as an object literal in the document (no class to validate)', async () => {
    const created = await t.gql(
      CREATE_WORKFLOW,
      { input: { name: 'literal', steps: [hashStep('a')] } },
      a.admin.token,
    );
    expect(created.errors).toBeUndefined();
    const id = created.data!.createWorkflow.id as string;
    // A new document each time: the failure was on the first request of a document.
    const literal = `mutation($id: ID!) { runWorkflow(id: $id, input: { a: 1, nested: { list: [1, "two", null] } }) { id status } }`;
    const http = await t.gql(literal, { id }, a.admin.token);
    expect(http.errors).toBeUndefined();
    expect(http.data?.runWorkflow.status).toBe('RUNNING');
    const [row] = await t.app.dataSource.query<Array<{ input: unknown }>>(
      'SELECT input FROM workflow_runs WHERE id = $1',
      [http.data!.runWorkflow.id],
    );
    expect(row!.input).toEqual({ a: 1, nested: { list: [1, 'two', null] } });
    const client = wsClient(t.url, `Bearer ${a.admin.token}`);
    try {
      const ws = await wsExecute(client, literal.replace('a: 1', 'a: 2'), { id });
      expect(ws.errors).toBeUndefined();
      expect(ws.data?.runWorkflow.status).toBe('RUNNING');
    } finally {
      await client.dispose();
    }
  });

  it("another company's workflow, export job and run are not found, and nothing of theirs is shown", async () => {
    const b = await createTenant(t.app);
    const created = await t.gql(
      CREATE_WORKFLOW,
      { input: { name: 'theirs', steps: [hashStep('a')] } },
      b.admin.token,
    );
    const theirs = created.data!.createWorkflow.id as string;
    const run = await t.gql(RUN_WORKFLOW, { id: theirs, input: { secret: 'theirs' } }, b.admin.token);
    const theirRun = run.data!.runWorkflow.id as string;
    const job = await t.gql(
      EXPORT,
      { input: { entityType: 'LEAD', format: 'CSV', fields: ['id'], fileName: 'theirs' } },
      b.admin.token,
    );
    const theirJob = job.data!.startExport.id as string;
    for (const query of [
      `query { workflow(id: "${theirs}") { id name } }`,
      `mutation { runWorkflow(id: "${theirs}") { id } }`,
      `query { workflowRun(id: "${theirRun}") { id input } }`,
      `mutation { cancelWorkflowRun(id: "${theirRun}") { id } }`,
      `query { exportJob(id: "${theirJob}") { id fileName } }`,
      `mutation { cancelExport(id: "${theirJob}") { id } }`,
    ]) {
      const res = await t.gql(query, {}, a.admin.token);
      expect(res.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      expect(JSON.stringify(res)).not.toContain('theirs');
    }
    const download = await fetch(`${t.url}/exports/${theirJob}/download`, {
      headers: { authorization: `Bearer ${a.admin.token}` },
    });
    expect(download.status).toBe(404);
    await withWsClient(t.url, a.admin.token, async (client) => {
      for (const [query, id] of [
        ['subscription($id: ID!) { exportProgress(jobId: $id) { id fileName } }', theirJob],
        ['subscription($id: ID!) { workflowRunUpdated(runId: $id) { id input } }', theirRun],
      ] as const) {
        const res = await wsExecute(client, query, { id });
        expect(res.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
        expect(JSON.stringify(res)).not.toContain('theirs');
      }
    });
  });
});

describe('introspection is refused on every transport when it is off', () => {
  let t: TestApp;
  let a: TestTenant;

  beforeAll(async () => {
    t = await startTestApp({ GRAPHQL_INTROSPECTION: 'false' });
    a = await createTenant(t.app);
  });
  afterAll(() => t.stop());

  it.each([
    ['__schema', '{ __schema { types { name } } }'],
    ['__type', '{ __type(name: "Lead") { fields { name } } }'],
  ])('%s: refused over HTTP and graphql-ws with the same error', async (_label, query) => {
    const http = await t.gql(query, {}, a.admin.token);
    expect(http.status).toBe(400);
    expect(http.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(http.data ?? null).toBeNull();
    const client = wsClient(t.url, `Bearer ${a.admin.token}`);
    try {
      const ws = await wsExecute(client, query);
      expect(ws.data ?? null).toBeNull();
      expect(ws.errors?.map((e) => [e.message, e.extensions?.code])).toEqual(
        http.errors?.map((e) => [e.message, e.extensions?.code]),
      );
    } finally {
      await client.dispose();
    }
  });

  it('__typename still answers (it is not introspection of the schema)', async () => {
    const res = await t.gql('{ __typename }', {}, a.admin.token);
    expect(res.data).toEqual({ __typename: 'Query' });
  });
});
