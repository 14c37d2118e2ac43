import type { RateLimitBucket } from '../../platform/rate-limit/rate-limit.store';

export type RateLimitScope = 'user' | 'company';
export type RateLimitMeasure = 'requests' | 'complexity';

/** A company's limits in force: the deployment's defaults (RATE_LIMIT_*) with its override, if any, on top. */
export interface EffectiveRateLimits {
  windowSeconds: number;
  userRequests: number;
  companyRequests: number;
  userComplexity: number;
  companyComplexity: number;
}

/** The fields an override may set, each with its bounds: the one allow-list for validation, SQL columns and merging. */
export const LIMIT_FIELDS = {
  windowSeconds: { column: 'window_seconds', min: 1, max: 86_400 },
  userRequests: { column: 'user_requests', min: 1, max: 1_000_000_000 },
  companyRequests: { column: 'company_requests', min: 1, max: 1_000_000_000 },
  userComplexity: { column: 'user_complexity', min: 1, max: 1_000_000_000 },
  companyComplexity: { column: 'company_complexity', min: 1, max: 1_000_000_000 },
} as const satisfies Record<keyof EffectiveRateLimits, { column: string; min: number; max: number }>;

export type LimitField = keyof typeof LIMIT_FIELDS;
export const LIMIT_FIELD_NAMES = Object.keys(LIMIT_FIELDS) as LimitField[];

/** An override as stored: null keeps the default. */
export type RateLimitOverride = Record<LimitField, number | null>;

/** One quota a caller is held to: its name (the `RateLimit-Policy` item), whom it counts and what. */
export interface RateLimitPolicy {
  name: `${RateLimitScope}-${RateLimitMeasure}`;
  scope: RateLimitScope;
  measure: RateLimitMeasure;
  quota: number;
  windowSeconds: number;
}

export function effectiveLimits(
  defaults: EffectiveRateLimits,
  override: Partial<RateLimitOverride> | undefined,
): EffectiveRateLimits {
  const limits = { ...defaults };
  for (const field of LIMIT_FIELD_NAMES) {
    const value = override?.[field];
    if (typeof value === 'number') limits[field] = value;
  }
  return limits;
}

/** The four quotas of a company's limits, in the order they are reported. */
export function policiesOf(limits: EffectiveRateLimits): RateLimitPolicy[] {
  const { windowSeconds } = limits;
  return [
    { name: 'user-requests', scope: 'user', measure: 'requests', quota: limits.userRequests, windowSeconds },
    {
      name: 'company-requests',
      scope: 'company',
      measure: 'requests',
      quota: limits.companyRequests,
      windowSeconds,
    },
    {
      name: 'user-complexity',
      scope: 'user',
      measure: 'complexity',
      quota: limits.userComplexity,
      windowSeconds,
    },
    {
      name: 'company-complexity',
      scope: 'company',
      measure: 'complexity',
      quota: limits.companyComplexity,
      windowSeconds,
    },
  ];
}

/** The store's bucket of a policy: buckets of one name share counters whatever their quota (an override keeps usage). */
export function bucketOf(policy: RateLimitPolicy): RateLimitBucket {
  return { name: policy.name, quota: policy.quota, windowSeconds: policy.windowSeconds };
}

/**
 * The counter key of a policy for a caller. The company id is a Redis Cluster hash tag, so all of a tenant's counters
 * live in one slot (any multi-key script over them stays legal), while tenants spread over the cluster.
 */
export function counterKey(scope: RateLimitScope, caller: { companyId: string; userId: string }): string {
  return scope === 'company' ? `{${caller.companyId}}` : `{${caller.companyId}}:${caller.userId}`;
}
