import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';

@ObjectType({
  description: 'One quota: whom it counts (USER or COMPANY), what (REQUESTS or COMPLEXITY), and its usage',
})
export class RateLimitPolicyUsage {
  @Field(() => String, { description: 'The RateLimit-Policy name: user-requests, company-complexity, ...' })
  name!: string;

  @Field(() => String, { description: 'user or company' })
  scope!: string;

  @Field(() => String, { description: 'requests or complexity (units of GRAPHQL_MAX_COMPLEXITY)' })
  measure!: string;

  @Field(() => Int)
  quota!: number;

  @Field(() => Int)
  windowSeconds!: number;

  @Field(() => Int, {
    nullable: true,
    description: 'Counted in the current window (user quotas: the caller; null for another company)',
  })
  used!: number | null;

  @Field(() => Int, { nullable: true })
  remaining!: number | null;

  @Field(() => Int, { nullable: true, description: 'Seconds until the current window ends' })
  resetSeconds!: number | null;
}

@ObjectType({ description: "A company's rate limits and cost quotas in force, and their current usage" })
export class RateLimits {
  @Field(() => ID)
  companyId!: string;

  @Field(() => Boolean, { description: 'False when the deployment counts nothing (RATE_LIMITS=false)' })
  enabled!: boolean;

  @Field(() => Boolean, {
    description: 'Whether a platform operator overrides the defaults for this company',
  })
  overridden!: boolean;

  @Field(() => Int)
  windowSeconds!: number;

  @Field(() => [RateLimitPolicyUsage])
  policies!: RateLimitPolicyUsage[];
}

@InputType({
  description: "A company's override (platform operators); a null or missing field keeps the default",
})
export class RateLimitOverrideInput {
  @Field(() => ID)
  companyId!: string;

  @Field(() => Int, { nullable: true })
  windowSeconds?: number | null;

  @Field(() => Int, { nullable: true })
  userRequests?: number | null;

  @Field(() => Int, { nullable: true })
  companyRequests?: number | null;

  @Field(() => Int, { nullable: true })
  userComplexity?: number | null;

  @Field(() => Int, { nullable: true })
  companyComplexity?: number | null;
}
