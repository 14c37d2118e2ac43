import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { spawnBuilt, type SpawnedProcess } from '../helpers/spawn-gateway';

interface Answer {
  data?: Record<string, any>;
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
}

/**
 * Every capability the README's quick start offers, on the embedded database (PGlite: one backend for every
 * connection) as a new user meets it: a code path that holds a transaction and waits on a second connection hangs
 * here, where a real Postgres would answer.
 */
describe('embedded mode: every capability of the quick start on PGlite', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'crm-embedded-capabilities-'));
  const exportDir = mkdtempSync(join(tmpdir(), 'crm-embedded-exports-'));
  let gateway: SpawnedProcess;
  let url: string;
  let token: string;

  const call = async (query: string, variables?: Record<string, unknown>): Promise<Answer> => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(20_000),
    });
    return (await response.json()) as Answer;
  };

  /** Every event of a subscription until it completes (or fails the test after `timeoutMs`). */
  const follow = (query: string, variables: Record<string, unknown>, timeoutMs = 30_000) => {
    const client = createClient({
      url: url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
    });
    const events: Array<Record<string, any>> = [];
    const done = new Promise<Array<Record<string, any>>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`subscription never completed: ${JSON.stringify(events)}`)),
        timeoutMs,
      );
      client.subscribe(
        { query, variables },
        {
          next: (value) => {
            if (value.errors) reject(new Error(JSON.stringify(value.errors)));
            else events.push(value.data as Record<string, any>);
          },
          error: (error) => {
            clearTimeout(timer);
            reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
          },
          complete: () => {
            clearTimeout(timer);
            resolve(events);
          },
        },
      );
    }).finally(() => client.dispose());
    return done;
  };

  beforeAll(async () => {
    gateway = spawnBuilt('main', {
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      METRICS_PORT: '0',
      PORT: '0',
      HOST: '127.0.0.1',
      EMBEDDED_DATA_DIR: dataDir,
      EXPORT_DIR: exportDir,
    });
    [, url] = (await gateway.waitFor(/running with embedded defaults at (\S+)/, 120_000)) as [string, string];
    [, token] = (await gateway.waitFor(/Authorization: Bearer (\S+)/)) as [string, string];
    await gateway.waitFor(/gateway started/);
  }, 150_000);

  afterAll(async () => {
    gateway.child.kill('SIGTERM');
    await Promise.race([gateway.exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    gateway.child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(exportDir, { recursive: true, force: true });
  });

  afterEach(async () => {
    // Whatever a test did, the gateway still answers and its database is ready.
    const ready = await fetch(url.replace('/graphql', '/readyz'), { signal: AbortSignal.timeout(10_000) });
    expect(ready.status).toBe(200);
  });

  it.each([
    ['CSV', 'NONE', (body: Buffer) => body.toString('utf8').split('\n')[0]],
    ['JSON', 'NONE', (body: Buffer) => Object.keys((JSON.parse(body.toString('utf8')) as object[])[0]!)],
    ['XLSX', 'GZIP', (body: Buffer) => gunzipSync(body).subarray(0, 2).toString('latin1')],
  ] as const)(
    'an export in %s (%s) reports progress over the subscription and downloads',
    async (format, compression, firstPart) => {
      const total = (await call('{ deals(pageSize: 1) { total } }')).data!.deals.total as number;
      expect(total).toBeGreaterThan(0);
      const started = await call(
        'mutation($input: StartExportInput!) { startExport(input: $input) { id status } }',
        { input: { entityType: 'DEAL', format, compression, fields: ['id', 'name', 'amount'] } },
      );
      expect(started.errors).toBeUndefined();
      const id = started.data!.startExport.id as string;
      const events = await follow(
        'subscription($id: ID!) { exportProgress(jobId: $id) { status progress rowsExported totalRows downloadUrl } }',
        { id },
      );
      const last = events.at(-1)!.exportProgress as Record<string, any>;
      expect(last).toMatchObject({ status: 'COMPLETED', progress: 1, rowsExported: total, totalRows: total });
      const response = await fetch(new URL(last.downloadUrl as string, url), {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(response.status).toBe(200);
      const body = Buffer.from(await response.arrayBuffer());
      if (format === 'CSV') expect(firstPart(body)).toBe('id,name,amount');
      if (format === 'JSON') expect(firstPart(body)).toEqual(['id', 'name', 'amount']);
      if (format === 'XLSX') expect(firstPart(body)).toBe('PK'); // a zip, as every xlsx is
    },
    60_000,
  );

  it('a workflow runs to the end and its subscription hears every change', async () => {
    const created = await call(
      'mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { id } }',
      {
        input: {
          name: 'embedded',
          steps: [
            {
              key: 'find',
              name: 'Find',
              type: 'db',
              action: 'crm.query',
              config: { entity: 'LEAD', sort: [{ field: 'lastName', direction: 'ASC' }] },
            },
            {
              key: 'hash',
              name: 'Hash',
              type: 'hash',
              action: 'compute.hash',
              config: { of: 'input.x', rounds: 100 },
            },
            {
              key: 'count',
              name: 'Count',
              type: 'map',
              action: 'transform.map',
              dependsOn: ['find', 'hash'],
              config: { mapping: { leads: 'steps.find.count' } },
            },
          ],
        },
      },
    );
    expect(created.errors).toBeUndefined();
    const run = await call(
      'mutation($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { id } }',
      {
        id: created.data!.createWorkflow.id,
        input: { x: 'abc' },
      },
    );
    expect(run.errors).toBeUndefined();
    const runId = run.data!.runWorkflow.id as string;
    const events = await follow(
      'subscription($id: ID!) { workflowRunUpdated(runId: $id) { status steps { key status output } } }',
      { id: runId },
    );
    const last = events.at(-1)!.workflowRunUpdated as {
      status: string;
      steps: Array<{ key: string; status: string; output: any }>;
    };
    expect(last.status).toBe('COMPLETED');
    expect(last.steps.map((step) => step.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED']);
    const leads = (await call('{ leads(pageSize: 1) { total } }')).data!.leads.total as number;
    expect(last.steps.find((step) => step.key === 'count')!.output).toEqual({ leads: Math.min(leads, 20) }); // crm.query reads 20 by default
  }, 60_000);

  it('similar(text:) finds the seeded demo records on the first start (the seed embeds them)', async () => {
    const { items } = (await call('{ deals(pageSize: 50) { items { id name stage } } }')).data!.deals as {
      items: Array<{ id: string; name: string; stage: string }>;
    };
    const deal = items.find((item) => items.filter((other) => other.name === item.name).length === 1)!;
    const found = await call(
      `query($input: SimilarInput!) { similar(input: $input) { docId score record { ... on Deal { id } } } }`,
      { input: { text: `${deal.name} ${deal.stage}`, k: 3, filters: { entityTypes: ['DEAL'] } } },
    );
    expect(found.errors).toBeUndefined();
    const hits = found.data!.similar as Array<{ docId: string; score: number; record: { id: string } }>;
    expect(hits[0]).toMatchObject({ docId: `deal:${deal.id}`, record: { id: deal.id } });
    expect(hits[0]!.score).toBeGreaterThan(0.99);
  }, 60_000);

  it('a report rebuild and a faceted search answer as the live query does', async () => {
    const rebuilt = await call('mutation { precomputeCommonReports { name rollupRows } }');
    expect(rebuilt.errors).toBeUndefined();
    expect((rebuilt.data!.precomputeCommonReports as unknown[]).length).toBeGreaterThan(0);

    const search = `query($input: SearchInput!) { search(input: $input) {
      total facetSource facets { field buckets { key count } } } }`;
    const input = { entityType: 'LEAD', facets: [{ field: 'status' }] };
    // The first search builds the company's index; a search during or after the build answers the same.
    const [first, second] = await Promise.all([call(search, { input }), call(search, { input })]);
    expect(first.errors).toBeUndefined();
    expect(second.data).toEqual(first.data);
    const leads = (await call('{ leads(pageSize: 1) { total } }')).data!.leads.total as number;
    expect(first.data!.search.total).toBe(leads);
    const buckets = first.data!.search.facets[0].buckets as Array<{ count: number }>;
    expect(buckets.reduce((sum, bucket) => sum + bucket.count, 0)).toBe(leads);
  }, 60_000);
});
