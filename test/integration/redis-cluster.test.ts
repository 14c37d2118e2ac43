import { startRedisCluster, type RedisCluster } from '../../bench/cluster/redis-cluster';
import { HealthQueue } from '../../src/modules/health/health.processor';
import { buildSharingOrg } from '../helpers/sharing-org';
import { startTestApp, type TestApp } from '../helpers/test-app';

/** A real three-master Redis Cluster on loopback, made for this test and removed after it. */
describe('Redis Cluster driver', () => {
  let cluster: RedisCluster | undefined;
  let t: TestApp | undefined;

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 });
    t = await startTestApp({ REDIS_CLUSTER_NODES: cluster.nodes.join(',') });
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
    await cluster?.stop();
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
