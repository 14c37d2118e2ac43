import { Arg, Mutation, Query, Resolver } from 'type-graphql';
import { CurrentPrincipal, type Principal } from '../kernel';
import type { RateLimitService, RateLimitsView } from './rate-limit.service';
import { RateLimitOverrideInput, RateLimits } from './rate-limit.types';

@Resolver()
export class RateLimitResolver {
  constructor(private readonly service: RateLimitService) {}

  @Query(() => RateLimits, {
    description: "The company's rate limits and cost quotas in force and their usage (company admins)",
  })
  async rateLimits(@CurrentPrincipal() principal: Principal): Promise<RateLimits> {
    return present(await this.service.view(principal));
  }

  @Mutation(() => RateLimits, {
    description:
      "Overrides a company's rate limits; every field null restores the defaults (platform operators)",
  })
  async setRateLimitOverride(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => RateLimitOverrideInput) input: RateLimitOverrideInput,
  ): Promise<RateLimits> {
    const { companyId, ...override } = input;
    return present(await this.service.setOverride(principal, companyId, override));
  }
}

function present(view: RateLimitsView): RateLimits {
  return {
    companyId: view.companyId,
    enabled: view.enabled,
    overridden: view.overridden,
    windowSeconds: view.limits.windowSeconds,
    policies: view.usage.map(({ policy, count }) => ({
      name: policy.name,
      scope: policy.scope,
      measure: policy.measure,
      quota: policy.quota,
      windowSeconds: policy.windowSeconds,
      used: count?.consumed ?? null,
      remaining: count?.remaining ?? null,
      resetSeconds: count ? Math.ceil(count.resetMs / 1000) : null,
    })),
  };
}
