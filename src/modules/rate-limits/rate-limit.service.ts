import type { DataSource } from 'typeorm';
import {
  assertUuid,
  ForbiddenError,
  NotFoundError,
  ValidationError,
  type FieldViolation,
} from '../../platform/errors/app-error';
import type { Logger } from '../../platform/logging/logger';
import type { EventBus } from '../../platform/pubsub/event-bus';
import type {
  RateLimitBucket,
  RateLimitCount,
  RateLimitSpend,
  RateLimitStore,
} from '../../platform/rate-limit/rate-limit.store';
import type { Principal } from '../kernel';
import type { ServiceRegistry } from '../kernel/registries';
import {
  bucketOf,
  counterKey,
  effectiveLimits,
  LIMIT_FIELD_NAMES,
  LIMIT_FIELDS,
  policiesOf,
  type EffectiveRateLimits,
  type RateLimitMeasure,
  type RateLimitOverride,
  type RateLimitPolicy,
  type RateLimitScope,
} from './rate-limit.model';

/** Audit vocabulary of this slice. */
export const RateLimitAudit = { action: 'SET_RATE_LIMITS', objectType: 'RATE_LIMITS' } as const;

/** Every gateway drops its cached copy of a company's limits when a message with its id arrives here. */
const CHANGED_CHANNEL = 'crm:ratelimit:changed';
/** A cached company's limits are read again after this long even without a change message (a lost message heals). */
const LIMITS_CACHE_MS = 60_000;

export interface PolicyCount {
  policy: RateLimitPolicy;
  count: RateLimitCount;
}

/** Whether an operation may run; a refusal names the quota that refused it and when to retry. */
export type Admission =
  | { admitted: true }
  | {
      admitted: false;
      /** The refusing quota whose window ends last: retrying before then is refused again. */
      refusedBy: RateLimitPolicy;
      retryAfterSeconds: number;
      /** Every quota of the caller as it stands (the refused operation refunded everywhere: it did not run). */
      counts: PolicyCount[];
    };

export interface RateLimitUsage {
  policy: RateLimitPolicy;
  /** Null for user quotas when the view is of another company than the caller's. */
  count: RateLimitCount | null;
}

export interface RateLimitsView {
  companyId: string;
  enabled: boolean;
  overridden: boolean;
  limits: EffectiveRateLimits;
  usage: RateLimitUsage[];
}

export interface RateLimitServiceOptions {
  dataSource: DataSource;
  store: RateLimitStore;
  events: EventBus;
  logger: Logger;
  /** Off: `admit` admits everything without counting (RATE_LIMITS). */
  enabled: boolean;
  /** The deployment's limits (RATE_LIMIT_*), for every company without an override. */
  defaults: EffectiveRateLimits;
  /** Lower-cased user ids of the platform's operators (PLATFORM_OPERATOR_USER_IDS): the only ones who set overrides. */
  operators: ReadonlySet<string>;
  identity: () => ServiceRegistry['identity'];
  audit: ServiceRegistry['audit'];
  /** Told of each refused operation, by the refusing quota. */
  onRefused(scope: RateLimitScope, measure: RateLimitMeasure): void;
  /** Told of each operation admitted without the shared counters (their store failed). */
  onFailOpen(): void;
}

interface CompanyLimits {
  limits: EffectiveRateLimits;
  overridden: boolean;
  /** The limits' four quotas, and each one's bucket in the store (made once per read of the limits). */
  policies: RateLimitPolicy[];
  buckets: RateLimitBucket[];
}

interface CachedLimits {
  at: number;
  promise: Promise<CompanyLimits>;
  /** Set once the read has answered: an operation of this company then needs no promise to find its quotas. */
  settled?: CompanyLimits;
}

const ADMITTED: Admission = Object.freeze({ admitted: true });

/**
 * Per-tenant rate limits and cost quotas: each operation counts one request and its complexity against its user's
 * and its company's quotas in the shared store; a company's limits are the defaults or a platform operator's override
 * (Postgres, cached per process, dropped everywhere when changed).
 */
export class RateLimitService {
  private readonly cached = new Map<string, CachedLimits>();

  constructor(private readonly options: RateLimitServiceOptions) {}

  get enabled(): boolean {
    return this.options.enabled;
  }

  async start(): Promise<void> {
    await this.options.events.subscribe(CHANGED_CHANNEL, (companyId) => this.cached.delete(companyId));
    // Messages sent while the subscription was down are lost: drop everything rather than keep a stale override.
    this.options.events.onReconnect(() => this.cached.clear());
  }

  /**
   * Counts an operation of `complexity` units for its caller; refuses it when any quota would be passed. Answers at
   * once (no promise) when the company's limits are cached and the store holds the points in this process already
   * (a lease), which is most operations under their limits.
   */
  admit(principal: Principal, complexity: number): Admission | Promise<Admission> {
    if (!this.options.enabled) return ADMITTED;
    const cost = Math.max(1, Math.ceil(complexity));
    const settled = this.cachedLimits(principal.companyId)?.settled;
    const { store } = this.options;
    if (settled && store.spendLocally?.(spendsOf(settled, principal, cost))) return ADMITTED;
    return this.admitShared(principal, cost);
  }

  private async admitShared(principal: Principal, cost: number): Promise<Admission> {
    const company = await this.limitsOf(principal.companyId);
    const spends = spendsOf(company, principal, cost);
    let counts: PolicyCount[];
    try {
      counts = await Promise.all(
        spends.map(async ({ bucket, key, points }, i) => ({
          policy: company.policies[i]!,
          count: await this.options.store.consume(bucket, key, points),
        })),
      );
    } catch (error) {
      // The store failed past its own fallback: an unmetered operation beats a refused or failed one.
      this.options.logger.warn({ err: error }, 'rate-limit store failed: operation admitted uncounted');
      this.options.onFailOpen();
      return ADMITTED;
    }
    const refused = counts.filter(({ count }) => !count.admitted);
    if (refused.length === 0) return ADMITTED;

    // The operation does not run, so it spends nothing: a query too big for what is left keeps the rest for smaller
    // ones, and a user refused by their own quota does not use up their company's.
    await Promise.all(
      spends.map(({ bucket, key, points }) =>
        this.options.store.refund(bucket, key, points).catch(() => undefined),
      ),
    );
    for (const [i, entry] of counts.entries()) {
      const consumed = Math.max(0, entry.count.consumed - spends[i]!.points);
      entry.count = { ...entry.count, consumed, remaining: Math.max(0, entry.policy.quota - consumed) };
    }
    const binding = refused.reduce((a, b) => (b.count.resetMs > a.count.resetMs ? b : a));
    this.options.onRefused(binding.policy.scope, binding.policy.measure);
    return {
      admitted: false,
      refusedBy: binding.policy,
      retryAfterSeconds: Math.max(1, Math.ceil(binding.count.resetMs / 1000)),
      counts,
    };
  }

  /** The caller's company's limits and usage (company admins): its quotas, and its and the caller's counters. */
  async view(principal: Principal): Promise<RateLimitsView> {
    await this.options.identity().requireAdmin(principal, 'see the rate limits');
    return this.describe(principal.companyId, principal);
  }

  /**
   * Sets (or, with every field null, removes) a company's override. Platform operators only: a company admin may not
   * raise their own limits, and nobody outside the operators may touch another company's.
   */
  async setOverride(
    principal: Principal,
    companyId: string,
    override: Partial<RateLimitOverride>,
  ): Promise<RateLimitsView> {
    assertUuid('companyId', companyId);
    const isOperator = this.options.operators.has(principal.userId.toLowerCase());
    if (!isOperator && companyId.toLowerCase() !== principal.companyId.toLowerCase())
      throw new ForbiddenError("Only platform operators may change another company's rate limits");
    if (!isOperator)
      throw new ForbiddenError(
        'Only platform operators (PLATFORM_OPERATOR_USER_IDS) may override rate limits',
      );
    await this.options.identity().requireAdmin(principal, 'override rate limits');
    const values = validateOverride(override);

    await this.options.dataSource.transaction(async (manager) => {
      const [company] = await manager.query<unknown[]>('SELECT 1 FROM companies WHERE id = $1', [companyId]);
      if (!company) throw new NotFoundError('Company', companyId);
      if (LIMIT_FIELD_NAMES.every((field) => values[field] === null)) {
        await manager.query('DELETE FROM company_rate_limits WHERE company_id = $1', [companyId]);
      } else {
        const columns = LIMIT_FIELD_NAMES.map((field) => LIMIT_FIELDS[field].column);
        await manager.query(
          `INSERT INTO company_rate_limits (company_id, ${columns.join(', ')}, updated_by, updated_at)
           VALUES ($1, ${columns.map((_, i) => `$${i + 2}`).join(', ')}, $${columns.length + 2}, now())
           ON CONFLICT (company_id) DO UPDATE SET ${columns.map((c) => `${c} = EXCLUDED.${c}`).join(', ')},
             updated_by = EXCLUDED.updated_by, updated_at = now()`,
          [companyId, ...LIMIT_FIELD_NAMES.map((field) => values[field]), principal.userId],
        );
      }
      await this.options.audit.record(manager, principal, {
        action: RateLimitAudit.action,
        objectType: RateLimitAudit.objectType,
        objectId: companyId,
        changes: values,
      });
    });
    this.cached.delete(companyId);
    await this.options.events.publish(CHANGED_CHANNEL, companyId);
    return this.describe(companyId, principal);
  }

  private async describe(companyId: string, caller: Principal): Promise<RateLimitsView> {
    const { limits, overridden, policies, buckets } = await this.limitsOf(companyId);
    const ownCompany = companyId === caller.companyId;
    const usage = await Promise.all(
      policies.map(async (policy, i): Promise<RateLimitUsage> => {
        if (policy.scope === 'user' && !ownCompany) return { policy, count: null };
        const key = counterKey(policy.scope, { companyId, userId: caller.userId });
        const count = await this.options.store.peek(buckets[i]!, key).catch(() => null);
        return { policy, count };
      }),
    );
    return { companyId, enabled: this.options.enabled, overridden, limits, usage };
  }

  /** The cached read of a company's limits while it is fresh (LIMITS_CACHE_MS, or until a change message). */
  private cachedLimits(companyId: string): CachedLimits | undefined {
    const hit = this.cached.get(companyId);
    return hit && Date.now() - hit.at < LIMITS_CACHE_MS ? hit : undefined;
  }

  /** A company's limits in force, cached per process. */
  private limitsOf(companyId: string): Promise<CompanyLimits> {
    const hit = this.cachedLimits(companyId);
    if (hit) return hit.promise;
    const entry: CachedLimits = {
      at: Date.now(),
      promise: this.load(companyId).then(
        (company) => {
          entry.settled = company;
          return company;
        },
        (error: unknown) => {
          // A failed read is not kept: the defaults answer now, the next operation reads again.
          if (this.cached.get(companyId) === entry) this.cached.delete(companyId);
          this.options.logger.warn({ err: error }, 'rate-limit override unreadable: defaults apply');
          return companyLimits(this.options.defaults, false);
        },
      ),
    };
    this.cached.set(companyId, entry);
    return entry.promise;
  }

  private async load(companyId: string): Promise<CompanyLimits> {
    const columns = LIMIT_FIELD_NAMES.map((field) => `${LIMIT_FIELDS[field].column} AS "${field}"`);
    const [row] = await this.options.dataSource.query<Array<Partial<RateLimitOverride>>>(
      `SELECT ${columns.join(', ')} FROM company_rate_limits WHERE company_id = $1`,
      [companyId],
    );
    return companyLimits(effectiveLimits(this.options.defaults, row), row !== undefined);
  }
}

function companyLimits(limits: EffectiveRateLimits, overridden: boolean): CompanyLimits {
  const policies = policiesOf(limits);
  return { limits, overridden, policies, buckets: policies.map(bucketOf) };
}

/** What an operation of `cost` complexity units takes from each of its caller's counters, in the policies' order. */
function spendsOf(company: CompanyLimits, caller: Principal, cost: number): RateLimitSpend[] {
  const { policies, buckets } = company;
  return policies.map((policy, i) => ({
    bucket: buckets[i]!,
    key: counterKey(policy.scope, caller),
    points: policy.measure === 'requests' ? 1 : cost,
  }));
}

/** Each field null (the default) or an integer within its bounds; every violation named. */
function validateOverride(override: Partial<RateLimitOverride>): RateLimitOverride {
  const violations: FieldViolation[] = [];
  const values = {} as RateLimitOverride;
  for (const field of LIMIT_FIELD_NAMES) {
    const value = override[field] ?? null;
    const { min, max } = LIMIT_FIELDS[field];
    if (value !== null && (!Number.isInteger(value) || value < min || value > max))
      violations.push({ field: `input.${field}`, rule: `must be an integer from ${min} to ${max}, or null` });
    values[field] = value;
  }
  if (violations.length > 0) throw new ValidationError(violations);
  return values;
}
