import { CompanyRateLimits1765527000000 } from '../../../migrations/1765527000000-company-rate-limits';
import { ShutdownPhase } from '../../platform/lifecycle/lifecycle';
import { MemoryRateLimitStore, RedisRateLimitStore } from '../../platform/rate-limit/flexible.rate-limit';
import { LeasedRateLimitStore } from '../../platform/rate-limit/leased.rate-limit';
import { closeRedis, createRedisConnection } from '../../platform/redis/redis.connection';
import { defineModule, requireService } from '../kernel';
import { CompanyRateLimitEntity } from './company-rate-limit.entity';
import { RateLimitResolver } from './rate-limit.resolver';
import { RateLimitAudit, RateLimitService } from './rate-limit.service';

export interface RateLimitServices {
  rateLimits: RateLimitService;
}

declare module '../kernel/registries' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ServiceRegistry extends RateLimitServices {}
}

/** Metric families of this slice, declared once. */
export const RateLimitMetric = {
  rateLimited: 'crm_rate_limited_total',
  failOpen: 'crm_rate_limit_fail_open_total',
} as const;

/** The store's keys (`crm:ratelimit:...`), claimed like a cache namespace so no other slice writes there. */
const RATE_LIMIT_NAMESPACE = 'ratelimit';

/**
 * Per-tenant rate limits and cost quotas: counters in Redis (every gateway shares them) or in process (embedded),
 * each company's limits (defaults, or a platform operator's override), the `rateLimits` query. The edge
 * (src/graphql/rate-limits.ts) asks `admit` once per operation, on every transport.
 */
export const rateLimitsModule = defineModule<RateLimitServices>({
  name: 'rateLimits',
  entities: [CompanyRateLimitEntity],
  migrations: [CompanyRateLimits1765527000000],
  cacheNamespaces: [RATE_LIMIT_NAMESPACE],
  createServices: ({ services, config, dataSource, redis, events, metrics, logger, lifecycle, role }) => {
    const refused = metrics.counter(
      RateLimitMetric.rateLimited,
      'Operations refused by a rate limit or cost quota, by the refusing quota',
      ['scope', 'measure'],
    );
    const failOpen = metrics.counter(
      RateLimitMetric.failOpen,
      'Operations counted by the process alone (or not at all) because the shared rate-limit store failed',
      [],
    );
    // In process there is no round trip to save; on Redis each gateway counts most operations from its leases.
    const store = redis
      ? new LeasedRateLimitStore(
          new RedisRateLimitStore(counterConnection(), { onFallback: () => failOpen.inc() }),
          { share: config.rateLimits.leaseShare },
        )
      : new MemoryRateLimitStore();
    /**
     * A connection of the counters' own, auto-pipelined: each operation sends its four counters' scripts in the same
     * tick, and with the other requests of that tick they go as one write (the cache's connection stays as it is).
     */
    function counterConnection() {
      const client = createRedisConnection({
        url: config.redis.url,
        clusterNodes: config.redis.clusterNodes,
        name: `crm-${role}-rate-limits`,
        logger,
        failFast: true,
        autoPipelining: true,
      });
      lifecycle.register('redis rate-limit counters', ShutdownPhase.cache, () => closeRedis(client));
      return client;
    }
    const audit = requireService(services, 'audit', 'rateLimits');
    audit.declare({ actions: [RateLimitAudit.action], objectTypes: [RateLimitAudit.objectType] });
    const rateLimits = new RateLimitService({
      dataSource,
      store,
      events,
      logger,
      enabled: config.rateLimits.enabled,
      defaults: config.rateLimits.defaults,
      operators: new Set(config.platformOperators),
      identity: () => requireService(services, 'identity', 'rateLimits'),
      audit,
      onRefused: (scope, measure) => refused.inc({ scope, measure }),
      onFailOpen: () => failOpen.inc(),
    });
    return { rateLimits };
  },
  start: (services) => services.rateLimits.start(),
  resolvers: (services) => [
    { resolver: RateLimitResolver, create: () => new RateLimitResolver(services.rateLimits) },
  ],
});
