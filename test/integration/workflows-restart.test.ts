import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createTenant, type TestTenant } from '../helpers/fixtures';
import { spawnBuilt, testProcessEnv, type SpawnedProcess } from '../helpers/spawn-gateway';
import { StepServer } from '../helpers/step-server';
import { startTestApp, type TestApp } from '../helpers/test-app';

describe('workflows: a worker killed mid-run', () => {
  const server = new StepServer();
  const redisUrl = 'redis://127.0.0.1:6379/14';
  let env: Record<string, string>;
  let t: TestApp;
  let tenant: TestTenant;
  let killed: SpawnedProcess | undefined;
  let replacement: TestApp | undefined;

  beforeAll(async () => {
    const url = await server.start();
    env = { REDIS_URL: redisUrl, WORKFLOW_HTTP_ALLOWLIST: `${url}/`, WORKFLOW_LOCK_MS: '1500' };
    const redis = new Redis(redisUrl);
    await redis.flushdb();
    redis.disconnect();
    // A spawned worker uses the default queue prefix; this gateway and the replacement worker share it.
    t = await startTestApp(env, 'gateway', { queuePrefix: 'crm' });
    tenant = await createTenant(t.app);
  });

  afterAll(async () => {
    killed?.child.kill('SIGKILL');
    await replacement?.stop();
    await t.stop();
    await server.stop();
  });

  it('another worker finishes the run; completed steps are not run again', async () => {
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
        input: { name: 'restart', steps: [step('a', 50, []), step('b', 4000, ['a']), step('c', 50, ['b'])] },
      },
      tenant.rep.token,
    );
    killed = spawnBuilt('worker', testProcessEnv(env));
    await killed.waitFor(/"role":"worker"/);
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
    const deadline = Date.now() + 20_000;
    while (hits('b').length === 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(hits('b')).toHaveLength(1);
    killed.child.kill('SIGKILL');
    await killed.exited;

    replacement = await startTestApp(env, 'worker', { queuePrefix: 'crm' });
    let status = '';
    const until = Date.now() + 40_000;
    while (Date.now() < until) {
      const [run] = await t.app.dataSource.query<[{ status: string }]>(
        'SELECT status FROM workflow_runs WHERE id = $1',
        [runId],
      );
      status = run.status;
      if (status !== 'RUNNING') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toBe('COMPLETED');
    const steps = await t.app.dataSource.query<Array<{ step_key: string; status: string; attempts: number }>>(
      'SELECT step_key, status, attempts FROM workflow_step_runs WHERE run_id = $1 ORDER BY step_key',
      [runId],
    );
    // b was claimed twice (the dead worker's try, then the replacement's); a and c once each.
    expect(steps).toEqual([
      { step_key: 'a', status: 'COMPLETED', attempts: 1 },
      { step_key: 'b', status: 'COMPLETED', attempts: 2 },
      { step_key: 'c', status: 'COMPLETED', attempts: 1 },
    ]);
    expect([hits('a').length, hits('b').length, hits('c').length]).toEqual([1, 2, 1]);
  });
});
