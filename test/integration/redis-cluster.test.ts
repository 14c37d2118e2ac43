import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HealthQueue } from '../../src/modules/health/health.processor';
import { buildSharingOrg } from '../helpers/sharing-org';
import { freePort } from '../helpers/ports';
import { startTestApp, type TestApp } from '../helpers/test-app';

/** A real three-master Redis Cluster on loopback, made for this test and removed after it. */
describe('Redis Cluster driver', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-cluster-'));
  const servers: ChildProcess[] = [];
  let ports: number[] = [];
  let t: TestApp | undefined;

  beforeAll(async () => {
    ports = [await freePort(), await freePort(), await freePort()];
    for (const port of ports) {
      const server = spawn('redis-server', [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
      ]);
      servers.push(server);
      await new Promise<void>((resolve) =>
        server.stdout.on(
          'data',
          (chunk: Buffer) => chunk.toString().includes('Ready to accept') && resolve(),
        ),
      );
    }
    const created = spawnSync('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    expect(created.status).toBe(0);
    for (let i = 0; i < 50; i++) {
      const info = spawnSync('redis-cli', ['-p', String(ports[0]), 'cluster', 'info']).stdout.toString();
      if (info.includes('cluster_state:ok')) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    t = await startTestApp({ REDIS_CLUSTER_NODES: ports.map((p) => `127.0.0.1:${p}`).join(',') });
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
    servers.forEach((server) => server.kill('SIGKILL'));
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves records, sharing and invalidation through the cluster', async () => {
    const org = await buildSharingOrg(t!.app);
    const leads = async () =>
      (
        (await t!.gql('{ leads(pageSize: 200) { items { lastName } } }', {}, org.users.sup.token)).data!.leads
          .items as Array<{ lastName: string }>
      )
        .map((item) => item.lastName)
        .sort();
    expect(await leads()).toEqual(['sup']);
    expect(await leads()).toEqual(['sup']); // cached now
    const rule = await t!.gql(
      `mutation { createSharingRule(input: { objectType: LEAD, name: "r", ruleType: OWNER, source: { type: ROLE, id: "${org.roles.rep}" }, target: { type: USER, id: "${org.users.sup.id}" } }) { id } }`,
      {},
      org.users.admin.token,
    );
    expect(rule.errors).toBeUndefined();
    expect(await leads()).toEqual(['rep1', 'rep2', 'sup']);
    const stats = t!.app.services.visibility['cache'].stats;
    expect(stats.fallbacks).toBe(0);
    expect(stats.localHits + stats.redisHits).toBeGreaterThan(0);
  });

  it('runs BullMQ jobs on the cluster (hash-tagged queue keys)', async () => {
    const queue = t!.app.queue;
    queue.process(HealthQueue.system, async (job) => ({ echoed: job.data }));
    const job = await queue.add(HealthQueue.system, 'echo', { n: 7 });
    expect(await job.finished(10_000)).toEqual({ echoed: { n: 7 } });
    expect((await queue.counts()).some((c) => c.queue === 'system')).toBe(true);
  });
});
