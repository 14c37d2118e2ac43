import { TieredCache } from '../../platform/cache/tiered.cache';
import { createLogger } from '../../platform/logging/logger';
import { RedisEventBus } from '../../platform/pubsub/event-bus';
import { closeRedis, createRedisConnection, waitForReady } from '../../platform/redis/redis.connection';
import type { BenchScenario, LatencyStats, Principal } from '../kernel';
import { VisibilityCache } from './visibility.cache';
import { VisibilityCompiler } from './visibility.compiler';
import { VisibilityService } from './visibility.service';

function sharingSizes(scale: number) {
  const scaled = (n: number, min: number) => Math.max(min, Math.round(n * scale));
  return {
    companies: scaled(1_000, 10),
    users: scaled(10_000, 100),
    rules: scaled(1_000_000, 2_000),
    largest: { users: scaled(500, 50), rules: scaled(20_000, 400) },
    accounts: 0,
    leads: 0,
    deals: 0,
  };
}

const figures = (prefix: string, stats: LatencyStats) => ({
  [`${prefix}P50Ms`]: stats.p50Ms,
  [`${prefix}P95Ms`]: stats.p95Ms,
  [`${prefix}P99Ms`]: stats.p99Ms,
});

/** Compiled visibility of the largest company's users from each tier: in process, Redis, and cold from Postgres. */
export const sharingLookup: BenchScenario = {
  name: 'sharing.lookup',
  async run(context) {
    // Long by choice: one benchmark scenario that reads top to bottom as the table it prints (set up, warm up, measure,
    // compare with the baseline of the same run); cut into parts, its figures would be spread over several functions.
    const sizes = sharingSizes(context.scale);
    const dataSource = await context.openDatabase('sharing', sizes);
    const logger = createLogger({ level: 'error', name: 'bench' });
    const connections = ['cache-a', 'cache-b', 'publish', 'subscribe'].map((name) =>
      createRedisConnection({
        url: context.redisUrl,
        name: `bench-${name}`,
        logger,
        failFast: name !== 'subscribe',
      }),
    );
    await Promise.all(connections.map((c) => waitForReady(c, 3000)));
    const [redisA, redisB, publisher, subscriber] = connections as [
      (typeof connections)[0],
      (typeof connections)[0],
      (typeof connections)[0],
      (typeof connections)[0],
    ];
    const events = new RedisEventBus(publisher, subscriber, logger);
    const compiler = new VisibilityCompiler(dataSource);
    const ttl = { rulesTtlSeconds: 3600, visibilityTtlSeconds: 1800 };
    // Process A keeps everything in its in-process tier; process B holds one entry, so its lookups go to Redis.
    const tieredA = new TieredCache({
      name: 'sharing-bench',
      redis: redisA,
      events,
      logger,
      maxLocalEntries: 100_000,
      localMaxAgeMs: 600_000,
    });
    const tieredB = new TieredCache({
      name: 'sharing-bench',
      redis: redisB,
      events,
      logger,
      maxLocalEntries: 1,
      localMaxAgeMs: 600_000,
    });
    const serviceA = new VisibilityService(
      dataSource,
      compiler,
      new VisibilityCache({ cache: tieredA, ...ttl }),
    );
    const serviceB = new VisibilityService(
      dataSource,
      compiler,
      new VisibilityCache({ cache: tieredB, ...ttl }),
    );
    try {
      const [largest] = await dataSource.query<Array<{ id: string; rules: number; users: number }>>(
        `SELECT c.id, (SELECT count(*) FROM sharing_rules r WHERE r.company_id = c.id)::int AS rules,
                (SELECT count(*) FROM users u WHERE u.company_id = c.id)::int AS users
           FROM companies c ORDER BY users DESC, rules DESC LIMIT 1`,
      );
      const users = await dataSource.query<Array<{ id: string; role_id: string | null; is_admin: boolean }>>(
        'SELECT id, role_id, is_admin FROM users WHERE company_id = $1 AND NOT is_admin ORDER BY id LIMIT 200',
        [largest!.id],
      );
      const principals: Principal[] = users.map((u) => ({
        userId: u.id,
        companyId: largest!.id,
        roleId: u.role_id,
        isAdmin: false,
        tokenExpiresAt: 0,
      }));
      context.log(
        `sharing.lookup: largest company has ${largest!.users} users and ${largest!.rules} rules; ${principals.length} users measured`,
      );
      await tieredA.invalidateScope(largest!.id); // start from an empty Redis tier for this company

      let i = 0;
      const next = () => principals[i++ % principals.length]!;
      const cold = await context.timeCalls(
        async () => {
          const principal = next();
          const model = await compiler.loadModel(principal.companyId);
          return compiler.compile(model, principal.companyId, principal.userId, 'LEAD');
        },
        { iterations: principals.length, warmup: 5 },
      );
      for (const principal of principals) await serviceA.compiled(principal, 'LEAD'); // fills Redis and A's local tier
      const redisBefore = tieredB.stats.redisHits;
      const redisTier = await context.timeCalls(() => serviceB.compiled(next(), 'LEAD'), {
        iterations: 2000,
        warmup: 200,
      });
      const redisHits = tieredB.stats.redisHits - redisBefore;
      const localBefore = tieredA.stats.localHits;
      const inProcess = await context.timeCalls(() => serviceA.compiled(next(), 'LEAD'), {
        iterations: 20_000,
        warmup: 2000,
      });
      const localHits = tieredA.stats.localHits - localBefore;
      const sample = await serviceA.compiled(principals[0]!, 'LEAD');
      return {
        scenario: 'sharing.lookup',
        description:
          'compiled per-user visibility for the largest company: in-process tier, Redis tier, cold from Postgres',
        measured: { ...figures('inProcess', inProcess), ...figures('redis', redisTier) },
        baseline: { coldP50Ms: cold.p50Ms, coldP95Ms: cold.p95Ms, coldP99Ms: cold.p99Ms },
        baselineName: 'cold: computed from Postgres',
        ratio: cold.p95Ms / inProcess.p95Ms,
        ratioOf: 'cold p95 / in-process p95',
        notes:
          `cold p95 / Redis-tier p95 = ${(cold.p95Ms / redisTier.p95Ms).toFixed(1)}; ` +
          `tier hits: ${localHits}/22000 in-process, ${redisHits}/2200 Redis; ` +
          `data: ${JSON.stringify({ companies: sizes.companies, users: sizes.users, rules: sizes.rules })}, largest ${largest!.users} users / ${largest!.rules} rules; ` +
          `sample user: ${sample.hierarchyOwnerIds.length} hierarchy owners, ${sample.ruleReadOwnerIds.length + sample.ruleEditOwnerIds.length} rule owners, ${sample.criteria.length} criteria rules. ` +
          'Targets: in-process p95 < 0.05 ms, Redis p95 < 1 ms, cold p95 < 50 ms.',
      };
    } finally {
      await tieredA.stop();
      await tieredB.stop();
      await events.close();
      await Promise.all(connections.map(closeRedis));
      await dataSource.destroy();
    }
  },
};
