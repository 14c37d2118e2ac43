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
import type { RateLimitCount, RateLimitStore } from '../../platform/rate-limit/rate-limit.store';
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

interface CachedLimits {
  at: number;
  promise: Promise<{ limits: EffectiveRateLimits; overridden: boolean }>;
}

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

  /** Counts an operation of `complexity` units for its caller; refuses it when any quota would be passed. */
  async admit(principal: Principal, complexity: number): Promise<Admission> {
    if (!this.options.enabled) return { admitted: true };
    const { limits } = await this.limitsOf(principal.companyId);
    const policies = policiesOf(limits);
    const cost = Math.max(1, Math.ceil(complexity));
    const pointsOf = (policy: RateLimitPolicy) => (policy.measure === 'requests' ? 1 : cost);
    let counts: PolicyCount[];
    try {
      counts = await Promise.all(
        policies.map(async (policy) => ({
          policy,
          count: await this.options.store.consume(
            bucketOf(policy),
            counterKey(policy.scope, principal),
            pointsOf(policy),
          ),
        })),
      );
    } catch (error) {
      // The store failed past its own fallback: an unmetered operation beats a refused or failed one.
      this.options.logger.warn({ err: error }, 'rate-limit store failed: operation admitted uncounted');
      this.options.onFailOpen();
      return { admitted: true };
    }
    const refused = counts.filter(({ count }) => !count.admitted);
    if (refused.length === 0) return { admitted: true };

    // The operation does not run, so it spends nothing: a query too big for what is left keeps the rest for smaller
    // ones, and a user refused by their own quota does not use up their company's.
    await Promise.all(
      counts.map(({ policy }) =>
        this.options.store
          .refund(bucketOf(policy), counterKey(policy.scope, principal), pointsOf(policy))
          .catch(() => undefined),
      ),
    );
    for (const entry of counts) {
      const consumed = Math.max(0, entry.count.consumed - pointsOf(entry.policy));
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
    const { limits, overridden } = await this.limitsOf(companyId);
    const ownCompany = companyId === caller.companyId;
    const usage = await Promise.all(
      policiesOf(limits).map(async (policy): Promise<RateLimitUsage> => {
        if (policy.scope === 'user' && !ownCompany) return { policy, count: null };
        const key = counterKey(policy.scope, { companyId, userId: caller.userId });
        const count = await this.options.store.peek(bucketOf(policy), key).catch(() => null);
        return { policy, count };
      }),
    );
    return { companyId, enabled: this.options.enabled, overridden, limits, usage };
  }

  /** A company's limits in force, cached per process (LIMITS_CACHE_MS, or until a change message). */
  private limitsOf(companyId: string): Promise<{ limits: EffectiveRateLimits; overridden: boolean }> {
    const hit = this.cached.get(companyId);
    if (hit && Date.now() - hit.at < LIMITS_CACHE_MS) return hit.promise;
    const promise = this.load(companyId).catch((error: unknown) => {
      // A failed read is not kept: the defaults answer now, the next operation reads again.
      this.cached.delete(companyId);
      this.options.logger.warn({ err: error }, 'rate-limit override unreadable: defaults apply');
      return { limits: this.options.defaults, overridden: false };
    });
    this.cached.set(companyId, { at: Date.now(), promise });
    return promise;
  }

  private async load(companyId: string): Promise<{ limits: EffectiveRateLimits; overridden: boolean }> {
    const columns = LIMIT_FIELD_NAMES.map((field) => `${LIMIT_FIELDS[field].column} AS "${field}"`);
    const [row] = await this.options.dataSource.query<Array<Partial<RateLimitOverride>>>(
      `SELECT ${columns.join(', ')} FROM company_rate_limits WHERE company_id = $1`,
      [companyId],
    );
    return { limits: effectiveLimits(this.options.defaults, row), overridden: row !== undefined };
  }
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
