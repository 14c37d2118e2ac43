import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Job, Queue } from 'bullmq';
import ExcelJS from 'exceljs';
import { startRedisCluster, type RedisCluster } from '../../bench/cluster/redis-cluster';
import { BullMqQueueDriver } from '../../src/platform/queue/bullmq.queue';
import {
  closeRedis,
  createRedisConnection,
  type RedisClient,
} from '../../src/platform/redis/redis.connection';
import { createTenant, type TestTenant } from '../helpers/fixtures';
import { spawnBuilt, testProcessEnv, type SpawnedProcess } from '../helpers/spawn-gateway';
import { StepServer } from '../helpers/step-server';
import { startTestApp, type TestApp } from '../helpers/test-app';

const EXPORT_LOCK_MS = 1000;
const WORKFLOW_LOCK_MS = 1500;

async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Two real `npm run worker` processes (dist/) on a three-master Redis Cluster; the one holding a job is SIGKILLed and
 * the other finishes it once the dead one's claim lapses (BullMQ's stalled-job check, every lock period).
 */
describe('a worker killed mid-job on a Redis Cluster: the other worker completes it', () => {
  const server = new StepServer();
  let cluster: RedisCluster;
  let env: Record<string, string>;
  let t: TestApp;
  let tenant: TestTenant;
  let connection: RedisClient;
  const workers: SpawnedProcess[] = [];

  async function startWorker(): Promise<SpawnedProcess> {
    const worker = spawnBuilt('worker', testProcessEnv(env));
    workers.push(worker);
    await worker.waitFor(/worker started/);
    return worker;
  }

  /** The live worker process BullMQ says holds a job (`processedBy` is `<host>:<pid>`). */
  async function holderOf(queueName: string, jobId: string): Promise<SpawnedProcess> {
    const prefix = (t.app.queue as BullMqQueueDriver).keyPrefix(queueName);
    const queue = new Queue(queueName, { connection, prefix });
    try {
      const job = await Job.fromId(queue, jobId);
      const pid = Number(job?.processedBy?.split(':').at(-1));
      const holder = workers.find((worker) => worker.child.pid === pid && alive(worker));
      if (!holder)
        throw new Error(`job ${jobId} of ${queueName} is held by ${job?.processedBy}, not a live worker`);
      return holder;
    } finally {
      await queue.close();
    }
  }

  const alive = (worker: SpawnedProcess) =>
    worker.child.exitCode === null && worker.child.signalCode === null;

  async function kill(worker: SpawnedProcess): Promise<number> {
    worker.child.kill('SIGKILL');
    await worker.exited;
    return Date.now();
  }

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 });
    const url = await server.start();
    env = {
      REDIS_CLUSTER_NODES: cluster.nodes.join(','),
      EXPORT_LOCK_MS: String(EXPORT_LOCK_MS),
      WORKFLOW_LOCK_MS: String(WORKFLOW_LOCK_MS),
      WORKFLOW_HTTP_ALLOWLIST: `${url}/`,
      EXPORT_DIR: process.env.EXPORT_DIR!,
    };
    // The spawned workers use the default queue prefix; so does this gateway (the cluster is this file's own).
    t = await startTestApp(env, 'gateway', { queuePrefix: 'crm' });
    connection = createRedisConnection({
      clusterNodes: cluster.nodes,
      name: 'test-inspect',
      logger: t.app.logger,
      failFast: false,
    });
    tenant = await createTenant(t.app);
    await Promise.all([startWorker(), startWorker()]);
  }, 90_000);

  afterAll(async () => {
    workers.forEach((worker) => worker.child.kill('SIGKILL'));
    await Promise.all(workers.map((worker) => worker.exited));
    await closeRedis(connection);
    await t?.stop();
    await server.stop();
    await cluster?.stop();
  });

  it('export: retried by the other worker within seconds, one complete file with every row', async () => {
    await t.app.dataSource.query(
      `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score, description)
       SELECT $1, $2, 'Bulk', 'Lead ' || n, 'NEW', n % 100, repeat('y', 100) FROM generate_series(1, 40000) AS n`,
      [tenant.companyId, tenant.rep.id],
    );
    const started = await t.gql(
      `mutation($input: StartExportInput!) { startExport(input: $input) { id } }`,
      { input: { entityType: 'LEAD', format: 'XLSX', fields: ['id', 'lastName', 'description'] } },
      tenant.rep.token,
    );
    expect(started.errors).toBeUndefined();
    const id = started.data!.startExport.id as string;
    const progress = async () =>
      (
        await t.app.dataSource.query<[{ status: string; rows_exported: string; attempts: number }]>(
          'SELECT status, rows_exported, attempts FROM export_jobs WHERE id = $1',
          [id],
        )
      )[0];
    await waitFor(
      async () => (Number((await progress()).rows_exported) > 0 ? true : undefined),
      'export rows',
    );
    const holder = await holderOf('export', id);
    const killedAt = await kill(holder);

    const retried = await waitFor(
      async () => ((await progress()).attempts === 2 ? Date.now() : undefined),
      'retry',
    );
    // The claim lapses after EXPORT_LOCK_MS and the other worker's stalled check (every EXPORT_LOCK_MS) moves the job
    // back: a few claim periods, where BullMQ's 30 s defaults would take half a minute or more.
    expect(retried - killedAt).toBeLessThan(10 * EXPORT_LOCK_MS);
    const done = await waitFor(async () => {
      const row = await progress();
      return ['COMPLETED', 'FAILED'].includes(row.status) ? row : undefined;
    }, 'export end');
    expect(done).toEqual({ status: 'COMPLETED', rows_exported: '40000', attempts: 2 });
    expect((await holderOf('export', id)).child.pid).not.toBe(holder.child.pid);

    // Exactly one finished file (the dead try left only its temporary file), holding every row once.
    const jobDir = join(process.env.EXPORT_DIR!, tenant.companyId, id);
    expect(readdirSync(jobDir).filter((file) => !/\.partial|~type$/.test(file))).toHaveLength(1);
    const response = await fetch(`${t.url}/exports/${id}/download`, {
      headers: { authorization: `Bearer ${tenant.rep.token}` },
    });
    expect(response.status).toBe(200);
    const workbook = new ExcelJS.Workbook();
    await workbook.xlsx.load(await response.arrayBuffer());
    const ids = new Set<string>();
    workbook.worksheets[0]!.eachRow((row, number) => {
      if (number > 1) ids.add(String((row.values as unknown[])[1]));
    });
    const [{ n }] = await t.app.dataSource.query<[{ n: number }]>(
      'SELECT count(*)::int AS n FROM leads WHERE company_id = $1 AND id = ANY($2::uuid[])',
      [tenant.companyId, [...ids]],
    );
    expect([ids.size, n]).toEqual([40_000, 40_000]);
  });

  it('workflow: the step in flight runs again on the other worker; completed steps do not', async () => {
    // The export's killed worker is replaced, as an operator (or an orchestrator) would: two live workers again.
    if (workers.filter(alive).length < 2) await startWorker();
    expect(workers.filter(alive)).toHaveLength(2);
    const step = (key: string, ms: number, dependsOn: string[]) => ({
      key,
      name: key,
      type: 'http',
      action: 'http.request',
      dependsOn,
      config: {
        method: 'POST',
        url: `${server.url}/slow?ms=${ms}`,
        body: { tag: 'input.tag', step: `'${key}'` },
      },
    });
    const created = await t.gql(
      'mutation ($input: CreateWorkflowInput!) { createWorkflow(input: $input) { id } }',
      {
        input: {
          name: 'kill',
          steps: [
            step('a', 50, []),
            step('b', 2500, ['a']),
            {
              key: 'c',
              name: 'c',
              type: 'transform',
              action: 'transform.map',
              dependsOn: ['b'],
              config: { mapping: { from: "steps.b.body.echo.step & '>c'", tag: 'steps.b.body.echo.tag' } },
            },
          ],
        },
      },
      tenant.rep.token,
    );
    expect(created.errors).toBeUndefined();
    const tag = randomUUID();
    const started = await t.gql(
      'mutation ($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { id } }',
      { id: created.data!.createWorkflow.id, input: { tag } },
      tenant.rep.token,
    );
    const runId = started.data!.runWorkflow.id as string;
    const hits = (key: string) =>
      server.hits.filter((hit) => {
        const body = hit.body as { tag?: string; step?: string };
        return body?.tag === tag && body.step === key;
      });
    await waitFor(async () => (hits('b').length > 0 ? true : undefined), 'step b started', 20_000);
    const holder = await holderOf('workflow_io', `${runId}_b`);
    await kill(holder);

    const status = await waitFor(async () => {
      const [run] = await t.app.dataSource.query<[{ status: string }]>(
        'SELECT status FROM workflow_runs WHERE id = $1',
        [runId],
      );
      return run.status === 'RUNNING' ? undefined : run.status;
    }, 'run end');
    expect(status).toBe('COMPLETED');
    const steps = await t.app.dataSource.query<
      Array<{ step_key: string; attempts: number; output: unknown }>
    >('SELECT step_key, attempts, output FROM workflow_step_runs WHERE run_id = $1 ORDER BY step_key', [
      runId,
    ]);
    expect(steps.map((row) => [row.step_key, row.attempts])).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 1],
    ]);
    expect(steps[2]!.output).toEqual({ from: 'b>c', tag });
    expect([hits('a').length, hits('b').length, hits('c').length]).toEqual([1, 2, 0]);
    expect((await holderOf('workflow_io', `${runId}_b`)).child.pid).not.toBe(holder.child.pid);
  });
});
