import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config';
import { createTenant, type TestTenant } from '../helpers/fixtures';
import { OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver';
import { spawnBuilt, testProcessEnv, type SpawnedProcess } from '../helpers/spawn-gateway';
import { StepServer } from '../helpers/step-server';
import { startTestApp, wsClient, wsExecute, type TestApp } from '../helpers/test-app';

/*
 * A real OTLP/HTTP receiver on loopback, and a built gateway and worker spawned as OS processes with the OTEL_*
 * variables set (the SDK starts before anything instrumented loads, as in production). The gateway exports in
 * protobuf, the worker in JSON: both encodings arrive. Runs in both jest projects: the spawned gateway takes the
 * project's GraphQL path (fast path, or Apollo's pipeline).
 */

const START = `mutation TracedExport($input: StartExportInput!) { startExport(input: $input) { id status } }`;
const EXPORT_JOB = `query TracedExportJob($id: ID!) { exportJob(id: $id) { id status } }`;
const CREATE = `mutation TracedCreate($input: CreateWorkflowInput!) { createWorkflow(input: $input) { id } }`;
const RUN = `mutation TracedRun($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { id status } }`;

const SQL_TEXT = ['db.query.text', 'db.statement'];
const sqlText = (span: ReceivedSpan): string | undefined =>
  SQL_TEXT.map((key) => span.attributes[key]).find((value): value is string => typeof value === 'string');
/** Which database a client span talks to (`db.system`, or `db.system.name` in the stable conventions). */
const dbSystem = (span: ReceivedSpan) => span.attributes['db.system'] ?? span.attributes['db.system.name'];
const isSql = (span: ReceivedSpan) => dbSystem(span) === 'postgresql';

async function gql(
  url: string,
  token: string,
  query: string,
  variables: Record<string, unknown>,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: Record<string, any>; errors?: unknown[] };
}

/** The JSON log lines of a process's output. */
function logLines(process: SpawnedProcess): Array<Record<string, unknown>> {
  return process
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}

/** Every span but the root has its parent in the trace; returns the chain of names from `span` up to the root. */
function ancestry(trace: ReceivedSpan[], span: ReceivedSpan): ReceivedSpan[] {
  const byId = new Map(trace.map((s) => [s.spanId, s]));
  const chain = [span];
  let current = span;
  while (current.parentSpanId) {
    const parent = byId.get(current.parentSpanId);
    if (!parent)
      throw new Error(`span ${current.name} has a parent ${current.parentSpanId} missing from the trace`);
    chain.push(parent);
    current = parent;
  }
  return chain;
}

describe('OpenTelemetry traces: gateway request -> SQL -> worker job, exported over OTLP/HTTP', () => {
  const receiver = new OtlpReceiver();
  const steps = new StepServer();
  let app: TestApp;
  let tenant: TestTenant;
  let gateway: SpawnedProcess;
  let worker: SpawnedProcess;
  let url: string;

  beforeAll(async () => {
    const [otlp, stepUrl] = await Promise.all([receiver.start(), steps.start()]);
    const exportDir = mkdtempSync(join(tmpdir(), 'crm-tracing-exports-'));
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp,
      // Export soon after a span ends (the batch processor's default waits 5 s).
      OTEL_BSP_SCHEDULE_DELAY: '100',
      WORKFLOW_HTTP_ALLOWLIST: `${stepUrl}/`,
      EXPORT_DIR: exportDir,
      STORAGE_DIR: process.env.STORAGE_DIR,
      LOG_LEVEL: 'debug',
    };
    // Fixtures through the services, with tracing off in this process.
    app = await startTestApp({}, 'cli');
    tenant = await createTenant(app.app);
    await app.app.dataSource.query(
      `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score)
       SELECT $1, $2, 'Traced', 'Lead ' || n, 'NEW', n FROM generate_series(1, 50) AS n`,
      [tenant.companyId, tenant.rep.id],
    );
    gateway = spawnBuilt('main', testProcessEnv({ ...env, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }));
    worker = spawnBuilt('worker', testProcessEnv({ ...env, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }));
    [, url] = (await gateway.waitFor(/"url":"(http:\/\/[^"]+)\/graphql"/)) as unknown as [string, string];
    await worker.waitFor(/worker started/);
  }, 120_000);

  afterAll(async () => {
    gateway?.child.kill('SIGTERM');
    worker?.child.kill('SIGTERM');
    await Promise.all([gateway?.exited, worker?.exited]);
    await app?.stop();
    await Promise.all([receiver.stop(), steps.stop()]);
  });

  it('one startExport request is one trace: HTTP request, GraphQL operation, SQL without values, the worker job', async () => {
    const started = await gql(url, tenant.rep.token, START, {
      input: { entityType: 'LEAD', format: 'CSV', fields: ['id', 'lastName'] },
    });
    expect(started.errors).toBeUndefined();
    const exportId = started.data!.startExport.id as string;

    const operation = await receiver.waitFor((spans) =>
      spans.find((span) => span.name === 'mutation TracedExport'),
    );
    const jobSpan = await receiver.waitFor((spans) =>
      spans.find(
        (span) => span.name === 'export process' && span.attributes['messaging.message.id'] === exportId,
      ),
    );
    // The job's own SQL has arrived once the job span has (children end first).
    const trace = receiver.trace(operation.traceId);

    // One trace: the worker's job continues the request's.
    expect(jobSpan.traceId).toBe(operation.traceId);
    expect(jobSpan.service).toBe('crm-worker');
    expect(jobSpan.kind).toBe(5); // CONSUMER
    expect(jobSpan.encoding).toBe('json');

    // The root is the gateway's HTTP server span; the operation is under it, the job under the operation.
    const [root, ...more] = trace.filter((span) => !span.parentSpanId);
    expect(more).toEqual([]);
    expect(root).toMatchObject({ kind: 2, service: 'crm-gateway', encoding: 'protobuf' });
    expect(String(root!.attributes['http.request.method'] ?? root!.attributes['http.method'])).toBe('POST');
    expect(operation.attributes).toMatchObject({
      'graphql.operation.type': 'mutation',
      'graphql.operation.name': 'TracedExport',
      'crm.graphql.transport': process.env.GRAPHQL_FAST_PATH === 'false' ? 'apollo' : 'fast-path',
    });
    expect(operation.attributes['graphql.operation.complexity']).toEqual(expect.any(Number));
    const jobChain = ancestry(trace, jobSpan).map((span) => span.spanId);
    expect(jobChain).toContain(operation.spanId);
    expect(jobChain[jobChain.length - 1]).toBe(root!.spanId);
    expect(ancestry(trace, operation).at(-1)).toBe(root);
    // The root resolver that queued the job has its own span, between the operation and the job.
    const resolver = trace.find((span) => span.name === 'resolve Mutation.startExport');
    expect(resolver).toBeDefined();
    expect(jobChain).toContain(resolver!.spanId);

    // SQL from both processes, with statement text and never a bound value.
    const sql = trace.filter(isSql);
    const gatewaySql = sql.filter((span) => span.service === 'crm-gateway');
    const workerSql = sql.filter((span) => span.service === 'crm-worker');
    expect(gatewaySql.length).toBeGreaterThan(0);
    expect(workerSql.length).toBeGreaterThan(0);
    expect(gatewaySql.some((span) => /INSERT INTO "?export_jobs/i.test(sqlText(span) ?? ''))).toBe(true);
    for (const span of sql) {
      expect(sqlText(span)).toMatch(/\S/);
      expect(span.attributes).not.toHaveProperty('db.postgresql.values');
      // Company, user and export ids are bound parameters: never in a span.
      const recorded = JSON.stringify(span.attributes);
      for (const value of [tenant.companyId, tenant.rep.id, exportId]) expect(recorded).not.toContain(value);
    }
    expect(gatewaySql.some((span) => /\$1/.test(sqlText(span) ?? ''))).toBe(true);
    // Redis commands by name only.
    const redis = trace.filter((span) => dbSystem(span) === 'redis');
    expect(redis.length).toBeGreaterThan(0);
    for (const span of redis) {
      expect(sqlText(span)).toMatch(/^[a-z]+$/i);
    }

    // The log line of the traced request carries its trace and span ids.
    const logged = logLines(gateway).find(
      (line) => line.msg === 'graphql operation' && line.operationName === 'TracedExport',
    );
    expect(logged).toMatchObject({
      trace_id: operation.traceId,
      span_id: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    expect(trace.map((span) => span.spanId)).toContain(logged!.span_id);
  });

  it("honours a caller's unsampled traceparent: no span for the request, its SQL or the job it queues", async () => {
    const traceId = 'aa'.repeat(16);
    const started = await gql(
      url,
      tenant.rep.token,
      START,
      { input: { entityType: 'LEAD', format: 'CSV', fields: ['id'] } },
      { traceparent: `00-${traceId}-${'bb'.repeat(8)}-00` },
    );
    expect(started.errors).toBeUndefined();
    const exportId = started.data!.startExport.id as string;
    // The job has run (its status is final) and a traced request after it has been exported, so anything the
    // unsampled request or its job made would have arrived before the traced one's spans.
    for (let i = 0; i < 100; i++) {
      const job = await gql(url, tenant.rep.token, EXPORT_JOB, { id: exportId });
      if (job.data?.exportJob?.status === 'COMPLETED') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const markerTrace = 'cc'.repeat(16);
    const marker = await gql(
      url,
      tenant.rep.token,
      EXPORT_JOB,
      { id: exportId },
      {
        traceparent: `00-${markerTrace}-${'dd'.repeat(8)}-01`,
      },
    );
    expect(marker.data?.exportJob?.status).toBe('COMPLETED');
    await receiver.waitFor((spans) => spans.find((span) => span.traceId === markerTrace && isSql(span)));
    // The worker exports on its own schedule (every 100 ms here): give a job span it might have made time to come.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(receiver.trace(traceId)).toEqual([]);
    const jobSpans = receiver.spans.filter(
      (span) => span.name === 'export process' && span.attributes['messaging.message.id'] === exportId,
    );
    expect(jobSpans).toEqual([]);
  });

  it("a workflow's http.request step sends the run's traceparent to the service it calls", async () => {
    const created = await gql(url, tenant.admin.token, CREATE, {
      input: {
        name: 'traced',
        steps: [
          {
            key: 'call',
            name: 'Call',
            type: 'http',
            action: 'http.request',
            config: { url: `${steps.url}/hook` },
          },
        ],
      },
    });
    expect(created.errors).toBeUndefined();
    const run = await gql(url, tenant.admin.token, RUN, { id: created.data!.createWorkflow.id, input: {} });
    expect(run.errors).toBeUndefined();

    const operation = await receiver.waitFor((spans) =>
      spans.find((span) => span.name === 'mutation TracedRun'),
    );
    const hit = await receiver.waitFor(() => steps.hitsOf('/hook')[0]);
    const traceparent = String(hit.headers.traceparent ?? '');
    const [, traceId, parentId] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(traceparent) ?? [];
    expect(traceId).toBe(operation.traceId);
    // Its parent is the worker's step job span, itself in the run's trace.
    const parent = await receiver.waitFor((spans) => spans.find((span) => span.spanId === parentId));
    expect(parent).toMatchObject({ traceId: operation.traceId, service: 'crm-worker', kind: 5 });
    expect(ancestry(receiver.trace(operation.traceId), parent).map((span) => span.spanId)).toContain(
      operation.spanId,
    );
  });

  it('a GraphQL operation over graphql-ws is a trace of its own, with its SQL', async () => {
    const client = wsClient(url, `Bearer ${tenant.rep.token}`);
    const started = await gql(url, tenant.rep.token, START, {
      input: { entityType: 'LEAD', format: 'JSON', fields: ['id'] },
    });
    const result = await wsExecute(client, EXPORT_JOB, { id: started.data!.startExport.id });
    await client.dispose();
    expect(result.errors).toBeUndefined();
    const operation = await receiver.waitFor((spans) =>
      spans.find(
        (span) =>
          span.name === 'query TracedExportJob' && span.attributes['crm.graphql.transport'] === 'graphql-ws',
      ),
    );
    expect(operation).toMatchObject({ parentSpanId: '', kind: 2, service: 'crm-gateway' });
    expect(operation.attributes['crm.graphql.transport']).toBe('graphql-ws');
    const sql = await receiver.waitFor((spans) =>
      spans.filter((span) => span.traceId === operation.traceId && isSql(span)),
    );
    expect(sql.length).toBeGreaterThan(0);
    for (const span of sql) expect(ancestry(receiver.trace(operation.traceId), span)).toContain(operation);
  });
});

describe('OpenTelemetry sampling: parentbased_traceidratio 0.5 (the gateway decides a root before any span)', () => {
  const receiver = new OtlpReceiver();
  let app: TestApp;
  let gateway: SpawnedProcess;
  let url: string;

  beforeAll(async () => {
    const otlp = await receiver.start();
    app = await startTestApp({}, 'cli');
    gateway = spawnBuilt(
      'main',
      testProcessEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp,
        OTEL_BSP_SCHEDULE_DELAY: '100',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.5',
        OTEL_SERVICE_NAME: 'sampled-half',
      }),
    );
    [, url] = (await gateway.waitFor(/"url":"(http:\/\/[^"]+)\/graphql"/)) as unknown as [string, string];
  }, 120_000);

  afterAll(async () => {
    gateway?.child.kill('SIGTERM');
    await gateway?.exited;
    await app?.stop();
    await receiver.stop();
  });

  it('keeps about half of the new traces, whole; follows a caller that sampled; makes nothing for one that did not', async () => {
    const tenant = await createTenant(app.app);
    const REQUESTS = 60;
    for (let i = 0; i < REQUESTS; i++) await gql(url, tenant.rep.token, EXPORT_JOB, { id: tenant.rep.id });
    const sampledParents = Array.from({ length: 10 }, (_, i) => (i + 1).toString(16).padStart(32, 'e'));
    for (const traceId of sampledParents)
      await gql(
        url,
        tenant.rep.token,
        EXPORT_JOB,
        { id: tenant.rep.id },
        { traceparent: `00-${traceId}-${'ab'.repeat(8)}-01` },
      );
    const unsampled = Array.from({ length: 10 }, (_, i) => (i + 1).toString(16).padStart(32, 'f'));
    for (const traceId of unsampled)
      await gql(
        url,
        tenant.rep.token,
        EXPORT_JOB,
        { id: tenant.rep.id },
        { traceparent: `00-${traceId}-${'ab'.repeat(8)}-00` },
      );
    // Every caller-sampled trace arrives; by then the earlier requests' spans have been exported too.
    await receiver.waitFor((spans) =>
      sampledParents.every((traceId) => spans.some((span) => span.traceId === traceId && span.kind === 2)),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    const ours = receiver.spans.filter((span) => span.service === 'sampled-half');
    const roots = ours.filter((span) => span.kind === 2 && span.parentSpanId === '');
    // Binomial(60, 0.5): 30 +- 3.9; outside 12..48 once in about 200,000 runs. Neither none nor all.
    expect(roots.length).toBeGreaterThanOrEqual(12);
    expect(roots.length).toBeLessThanOrEqual(48);
    for (const root of roots) {
      // A kept trace is whole: the operation under the request, and the request's SQL under the operation.
      const trace = receiver.trace(root.traceId);
      expect(trace.map((span) => span.name)).toContain('query TracedExportJob');
      expect(trace.some(isSql)).toBe(true);
    }
    // A caller's sampled parent is followed whatever the ratio; its unsampled one makes no span at all.
    for (const traceId of sampledParents) expect(receiver.trace(traceId).length).toBeGreaterThan(1);
    for (const traceId of unsampled) expect(receiver.trace(traceId)).toEqual([]);
    // Unsampled requests leave no stray spans: every span belongs to a kept or caller-sampled trace.
    const kept = new Set([...roots.map((root) => root.traceId), ...sampledParents]);
    expect(ours.filter((span) => !kept.has(span.traceId))).toEqual([]);
  });
});

describe('OpenTelemetry off: OTEL_EXPORTER_OTLP_ENDPOINT unset', () => {
  const receiver = new OtlpReceiver();
  let app: TestApp;
  let gateway: SpawnedProcess;

  beforeAll(async () => {
    await receiver.start();
    app = await startTestApp({}, 'cli');
    // Every other tracing variable set, pointing at the receiver only through the (unset) endpoint.
    gateway = spawnBuilt(
      'main',
      testProcessEnv({ OTEL_TRACES_SAMPLER: 'always_on', OTEL_SERVICE_NAME: 'untraced', LOG_LEVEL: 'debug' }),
    );
    await gateway.waitFor(/gateway started/);
  }, 120_000);

  afterAll(async () => {
    gateway?.child.kill('SIGTERM');
    await gateway?.exited;
    await app?.stop();
    await receiver.stop();
  });

  it('starts no SDK and exports nothing, even for a request that arrives with a sampled traceparent', async () => {
    const tenant = await createTenant(app.app);
    const [, url] = gateway.output().match(/"url":"(http:\/\/[^"]+)\/graphql"/)!;
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const answer = await gql(
      url!,
      tenant.rep.token,
      EXPORT_JOB,
      { id: '00000000-0000-4000-8000-000000000000' },
      {
        traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
      },
    );
    expect(answer.errors ?? answer.data).toBeDefined();
    const started = logLines(gateway).find((line) => line.msg === 'gateway started');
    expect(started?.drivers).toMatchObject({ tracing: 'off' });
    const logged = logLines(gateway).find(
      (line) => line.msg === 'graphql operation' && line.operationName === 'TracedExportJob',
    );
    // The operation was logged, without trace ids: no SDK took up the incoming trace context.
    expect(logged).toBeDefined();
    expect(logged).not.toHaveProperty('trace_id');
    expect(gateway.output()).not.toContain(traceId);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.requests).toBe(0);
  });

  it('refuses a bad sampler ratio at boot, naming the variable', () => {
    expect(() => loadConfig({ OTEL_TRACES_SAMPLER_ARG: '1.5' })).toThrow(
      /OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1/,
    );
    expect(() => loadConfig({ OTEL_TRACES_SAMPLER: 'sometimes' })).toThrow(
      /OTEL_TRACES_SAMPLER: must be one of/,
    );
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(
      /OTEL_EXPORTER_OTLP_PROTOCOL: /,
    );
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT: must be a URL/,
    );
    expect(loadConfig({}).tracing.enabled).toBe(false);
    expect(
      loadConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.1',
      }).tracing,
    ).toMatchObject({
      enabled: true,
      tracesUrl: 'http://collector:4318/v1/traces',
      protocol: 'http/protobuf',
      sampler: 'parentbased_traceidratio',
      ratio: 0.1,
    });
  });
});
