import { z } from 'zod';
import { booleanFlag, defineSettings } from '../../config/settings';

/** A quota a deployment may set: a positive integer, at most a billion. */
const quota = (defaultValue: number) =>
  z.coerce
    .number()
    .int()
    .positive()
    .max(1_000_000_000, { message: 'must be at most 1000000000' })
    .default(defaultValue);

/**
 * Per-tenant rate limits and cost quotas (config.rateLimits): what every company gets unless a platform operator
 * overrides it for that company. Every quota counts per window of RATE_LIMIT_WINDOW_SECONDS.
 */
export const rateLimitSettings = defineSettings({
  variables: {
    /** Off: no operation is counted or refused (the `rateLimits` query still answers). */
    RATE_LIMITS: booleanFlag(true),
    RATE_LIMIT_WINDOW_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
    /** Operations one user may send per window (10/s sustained over the default minute). */
    RATE_LIMIT_USER_REQUESTS: quota(600),
    /** Operations all users of one company may send per window together. */
    RATE_LIMIT_COMPANY_REQUESTS: quota(6_000),
    /** Complexity units (those GRAPHQL_MAX_COMPLEXITY caps per operation) one user may spend per window. */
    RATE_LIMIT_USER_COMPLEXITY: quota(200_000),
    RATE_LIMIT_COMPANY_COMPLEXITY: quota(2_000_000),
    /**
     * The percentage of each quota a gateway may take from the shared counters ahead of use and count locally, so
     * most operations make no Redis round trip; another gateway's caller may be refused while points sit unspent in
     * a lease (at most this share per gateway). 0: every operation counted on Redis.
     */
    RATE_LIMIT_LEASE_PERCENT: z.coerce.number().min(0).max(25).default(2),
  },
  read: (e) => ({
    enabled: e.RATE_LIMITS,
    leaseShare: e.RATE_LIMIT_LEASE_PERCENT / 100,
    defaults: {
      windowSeconds: e.RATE_LIMIT_WINDOW_SECONDS,
      userRequests: e.RATE_LIMIT_USER_REQUESTS,
      companyRequests: e.RATE_LIMIT_COMPANY_REQUESTS,
      userComplexity: e.RATE_LIMIT_USER_COMPLEXITY,
      companyComplexity: e.RATE_LIMIT_COMPANY_COMPLEXITY,
    },
  }),
});
