import { randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { Redis } from 'ioredis';
import { startRedisCluster, type RedisCluster } from '../../bench/cluster/redis-cluster';
import { HealthJob, HealthQueue, type HealthPingResult } from '../../src/modules/health/health.processor';
import { BullMqQueueDriver } from '../../src/platform/queue/bullmq.queue';
import { closeRedis, createRedisConnection } from '../../src/platform/redis/redis.connection';
import { createTenant, type TestTenant } from '../helpers/fixtures';
import { spawnBuilt, testProcessEnv, type SpawnedProcess } from '../helpers/spawn-gateway';
import { StepServer } from '../helpers/step-server';
import { startTestApp, wsClient, type TestApp } from '../helpers/test-app';

/** Follows one subscription to its end; resolves with every payload it sent. */
function subscribeToEnd<T>(url: string, token: string, query: string, variables: object): Promise<T[]> {
  const client = wsClient(url, `Bearer ${token}`);
  const seen: T[] = [];
  return new Promise<T[]>((resolve, reject) => {
    client.subscribe(
      { query, variables: variables as Record<string, unknown> },
      {
        next: (value) =>
          value.errors ? reject(new Error(JSON.stringify(value.errors))) : seen.push(value.data as T),
        error: reject,
        complete: () => resolve(seen),
      },
    );
  }).finally(() => client.dispose());
}

async function eventually<T>(probe: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Every queue end to end on a real three-master Redis Cluster: a gateway enqueues, a real `npm run worker` process
 * (dist/) runs the job, a second gateway hears its progress through the cluster's pub/sub. The full behaviour of each
 * queue is tested on a single Redis in queue, exports, workflows and vectors tests; this is the subset that proves
 * the cluster carries it.
 */
describe('queues on a Redis Cluster (a gateway, a second gateway, a spawned worker)', () => {
  const server = new StepServer();
  let cluster: RedisCluster;
  let t: TestApp;
  let second: TestApp;
  let worker: SpawnedProcess;
  let tenant: TestTenant;

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 });
    const url = await server.start();
    const env = {
      REDIS_CLUSTER_NODES: cluster.nodes.join(','),
      WORKFLOW_HTTP_ALLOWLIST: `${url}/`,
      WORKFLOW_CPU_CONCURRENCY: '1',
      VECTOR_DIMENSION: '16',
    };
    // The spawned worker uses the default queue prefix; the gateways share it (the cluster is this file's own).
    t = await startTestApp(env, 'gateway', { queuePrefix: 'crm' });
    second = await startTestApp(env, 'gateway', { queuePrefix: 'crm' });
    worker = spawnBuilt('worker', testProcessEnv({ ...env, EXPORT_DIR: process.env.EXPORT_DIR }));
    await worker.waitFor(/worker started/);
    tenant = await createTenant(t.app);
  }, 90_000);

  afterAll(async () => {
    worker?.child.kill('SIGTERM');
    await worker?.exited;
    await Promise.all([t?.stop(), second?.stop()]);
    await server.stop();
    await cluster?.stop();
  });

  it('system: the worker process answers a job another process enqueued on the cluster', async () => {
    expect(worker.output()).toContain(`"queue":"bullmq (cluster ${cluster.nodes.join(',')})"`);
    const job = await t.app.queue.add<{ echo: string }, HealthPingResult>(
      HealthQueue.system,
      HealthJob.ping,
      {
        echo: 'over the cluster',
      },
    );
    const result = await job.finished(20_000);
    expect(result).toMatchObject({ echo: 'over the cluster', pid: worker.child.pid });
  });

  it('export: a CSV of every readable row, its progress heard on the second gateway', async () => {
    await t.app.dataSource.query(
      `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score)
       SELECT $1, CASE WHEN n % 4 = 0 THEN $3::uuid ELSE $2::uuid END, 'Bulk', 'Lead ' || n, 'NEW', n % 100
         FROM generate_series(1, 20000) AS n`,
      [tenant.companyId, tenant.rep.id, tenant.admin.id],
    );
    const started = await t.gql(
      `mutation($input: StartExportInput!) { startExport(input: $input) { id } }`,
      { input: { entityType: 'LEAD', format: 'CSV', compression: 'GZIP', fields: ['id', 'lastName'] } },
      tenant.rep.token,
    );
    expect(started.errors).toBeUndefined();
    const id = started.data!.startExport.id as string;
    const events = await subscribeToEnd<{ exportProgress: { status: string; rowsExported: number } }>(
      second.url,
      tenant.rep.token,
      'subscription($id: ID!) { exportProgress(jobId: $id) { status rowsExported } }',
      { id },
    );
    // The PRIVATE default: the rep's own three quarters, none of the admin's.
    expect(events.at(-1)!.exportProgress).toEqual({ status: 'COMPLETED', rowsExported: 15_000 });
    const response = await fetch(`${t.url}/exports/${id}/download`, {
      headers: { authorization: `Bearer ${tenant.rep.token}` },
    });
    expect(response.status).toBe(200);
    const rows = parse<{ id: string }>(gunzipSync(Buffer.from(await response.arrayBuffer())), {
      columns: true,
    });
    const expected = await t.app.dataSource.query<Array<{ id: string }>>(
      'SELECT id FROM leads WHERE company_id = $1 AND owner_id = $2',
      [tenant.companyId, tenant.rep.id],
    );
    expect(rows.map((row) => row.id).sort()).toEqual(expected.map((row) => row.id).sort());
  });

  it('workflows: a DAG over the I/O, CPU and default queues, followed on the second gateway', async () => {
    const tag = randomUUID();
    const created = await t.gql(
      'mutation ($input: CreateWorkflowInput!) { createWorkflow(input: $input) { id plan { steps { key queue } } } }',
      {
        input: {
          name: 'cluster',
          steps: [
            {
              key: 'fetch',
              name: 'Fetch',
              type: 'api',
              action: 'http.request',
              config: { method: 'POST', url: `${server.url}/slow?ms=50`, body: { tag: 'input.tag' } },
            },
            {
              key: 'shape',
              name: 'Shape',
              type: 'transform',
              action: 'transform.map',
              dependsOn: ['fetch'],
              config: { mapping: { tag: 'steps.fetch.body.echo.tag' } },
            },
            {
              key: 'finish',
              name: 'Finish',
              type: 'custom',
              action: 'transform.map',
              dependsOn: ['shape'],
              config: { mapping: { done: "steps.shape.tag & '!'" } },
            },
          ],
        },
      },
      tenant.rep.token,
    );
    expect(created.errors).toBeUndefined();
    const { id, plan } = created.data!.createWorkflow as {
      id: string;
      plan: Array<{ steps: Array<{ key: string; queue: string }> }>;
    };
    expect(plan.flatMap((level) => level.steps.map((step) => step.queue))).toEqual([
      'workflow_io',
      'workflow_cpu',
      'workflow_default',
    ]);
    const run = await t.gql(
      'mutation ($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { id } }',
      {
        id,
        input: { tag },
      },
      tenant.rep.token,
    );
    const runId = run.data!.runWorkflow.id as string;
    const seen = await subscribeToEnd<{
      workflowRunUpdated: {
        status: string;
        steps: Array<{ key: string; attempts: number; output: unknown }>;
      };
    }>(
      second.url,
      tenant.rep.token,
      'subscription ($id: ID!) { workflowRunUpdated(runId: $id) { status steps { key attempts output } } }',
      { id: runId },
    );
    const last = seen.at(-1)!.workflowRunUpdated;
    expect(last.status).toBe('COMPLETED');
    expect(last.steps.map((step) => [step.key, step.attempts])).toEqual([
      ['fetch', 1],
      ['shape', 1],
      ['finish', 1],
    ]);
    expect(last.steps.find((step) => step.key === 'finish')!.output).toEqual({ done: `${tag}!` });
    expect(server.hits.filter((hit) => (hit.body as { tag?: string })?.tag === tag)).toHaveLength(1);
  });

  it('vectors: a lead created on the gateway is embedded by the worker', async () => {
    const created = await t.gql(
      `mutation { createLead(input: { firstName: "Clustered", lastName: "Embedding" }) { id } }`,
      {},
      tenant.rep.token,
    );
    expect(created.errors).toBeUndefined();
    const docId = `lead:${created.data!.createLead.id as string}`;
    const stored = await eventually(
      () =>
        t.app.dataSource.query<Array<{ dims: number }>>(
          `SELECT cardinality(embedding) AS dims FROM vector_documents
            WHERE company_id = $1 AND doc_id = $2 AND embedding IS NOT NULL`,
          [tenant.companyId, docId],
        ),
      (rows) => rows.length === 1,
    );
    expect(stored).toEqual([{ dims: 16 }]);
  });

  it("scheduler: the worker's schedules are on the cluster, and a schedule runs there", async () => {
    const listed = await t.gql('{ scheduledJobs { name nextRunAt } }', {}, tenant.admin.token);
    expect(listed.errors).toBeUndefined();
    const jobs = listed.data!.scheduledJobs as Array<{ name: string; nextRunAt: string | null }>;
    expect(jobs.length).toBeGreaterThan(0);
    expect(jobs.every((job) => job.nextRunAt !== null)).toBe(true);

    // A short schedule of its own (own prefix), declared by two drivers as every worker process declares its own.
    const connections = [0, 1].map((i) =>
      createRedisConnection({
        clusterNodes: cluster.nodes,
        name: `test-scheduler-${i}`,
        logger: t.app.logger,
        failFast: false,
      }),
    );
    const drivers = connections.map(
      (connection) => new BullMqQueueDriver({ connection, prefix: 'tick-test', logger: t.app.logger }),
    );
    const runs: number[] = [];
    try {
      await Promise.all(
        drivers.map((driver, i) => driver.schedule('tick', { everyMs: 200 }, async () => void runs.push(i))),
      );
      await eventually(
        async () => runs.length,
        (count) => count >= 4,
      );
      const [info] = await drivers[0]!.scheduledJobs();
      expect(info).toMatchObject({ name: 'tick', pattern: 'every 200 ms', lastRunAt: expect.any(Date) });
    } finally {
      await Promise.all(drivers.map((driver) => driver.closeWorkers()));
      await Promise.all(drivers.map((driver) => driver.closeQueues()));
      await Promise.all(connections.map(closeRedis));
    }
    expect(runs.length).toBeGreaterThanOrEqual(4);
  });

  it("every queue's keys share one hash slot of their own, and the queues spread over the masters", async () => {
    const slotsByQueue = new Map<string, Set<number>>();
    const mastersByQueue = new Map<string, Set<string>>();
    for (const node of cluster.nodes) {
      const [host, port] = node.split(':');
      const redis = new Redis({ host, port: Number(port) });
      try {
        for (const key of await redis.keys('{crm*')) {
          const tag = /^\{crm:([^}]+)\}:/.exec(key)?.[1];
          // Every queue key carries its own queue's tag (`{crm:<queue>}`), none the one shared `{crm}` tag of old.
          expect({ key, tagged: tag !== undefined }).toEqual({ key, tagged: true });
          const slot = Number(await redis.call('CLUSTER', 'KEYSLOT', key));
          slotsByQueue.set(tag!, (slotsByQueue.get(tag!) ?? new Set()).add(slot));
          mastersByQueue.set(tag!, (mastersByQueue.get(tag!) ?? new Set()).add(node));
        }
      } finally {
        redis.disconnect();
      }
    }
    const queues = [...slotsByQueue.keys()].sort();
    expect(queues).toEqual(
      expect.arrayContaining([
        'export',
        'scheduler',
        'system',
        'vectors',
        'workflow_cpu',
        'workflow_default',
        'workflow_io',
      ]),
    );
    for (const queue of queues) expect([queue, slotsByQueue.get(queue)!.size]).toEqual([queue, 1]);
    for (const queue of queues) expect([queue, mastersByQueue.get(queue)!.size]).toEqual([queue, 1]);
    const masters = new Set(queues.map((queue) => [...mastersByQueue.get(queue)!][0]));
    expect(masters.size).toBeGreaterThan(1);
  });
});
