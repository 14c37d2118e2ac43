import { GraphQLError } from 'graphql';
import type { Principal } from '../modules/kernel';
import type { Admission, PolicyCount, RateLimitPolicy } from '../modules/rate-limits';
import { AppError, ErrorCode } from '../platform/errors/app-error';

/**
 * What the operation core asks of rate limiting: count one operation of `complexity` units for its caller (answered
 * at once when no shared counter needs asking).
 */
export interface RateLimitGate {
  readonly enabled: boolean;
  admit(principal: Principal, complexity: number): Admission | Promise<Admission>;
}

type Refusal = Extract<Admission, { admitted: false }>;

/** The refusal's client-facing detail (in `extensions`, beside the code), kept through error formatting. */
export class RateLimitedError extends AppError {
  constructor(refusal: Refusal) {
    const { refusedBy, retryAfterSeconds } = refusal;
    super(
      ErrorCode.RATE_LIMITED,
      `Rate limit exceeded: the ${refusedBy.scope}'s ${refusedBy.measure} quota (${refusedBy.quota} per ${refusedBy.windowSeconds} s) is spent; retry in ${retryAfterSeconds} s`,
      {
        extensions: {
          retryAfterSeconds,
          scope: refusedBy.scope,
          measure: refusedBy.measure,
          policy: refusedBy.name,
        },
      },
    );
    this.name = 'RateLimitedError';
  }
}

/**
 * A quota policy item of draft-ietf-httpapi-ratelimit-headers (a String identifier with `q` and `w`). Requests are
 * the draft's "request" unit; complexity units are not a registered quota unit, so they say so in a parameter of
 * their own (the draft asks service-specific parameters to carry a vendor prefix).
 */
function policyItem(policy: RateLimitPolicy): string {
  const unit = policy.measure === 'requests' ? ';qu="request"' : ';crm-unit="complexity"';
  return `"${policy.name}";q=${policy.quota};w=${policy.windowSeconds}${unit}`;
}

/** A RateLimit field item: what is left (`r`) and the seconds until the window resets (`t`). */
function limitItem({ policy, count }: PolicyCount): string {
  return `"${policy.name}";r=${count.remaining};t=${Math.ceil(count.resetMs / 1000)}`;
}

/** Retry-After and the draft's RateLimit-Policy / RateLimit fields of a refusal, as lower-case header names. */
export function rateLimitHeaders(refusal: Refusal): Map<string, string> {
  return new Map([
    ['retry-after', String(refusal.retryAfterSeconds)],
    ['ratelimit-policy', refusal.counts.map(({ policy }) => policyItem(policy)).join(', ')],
    ['ratelimit', refusal.counts.map(limitItem).join(', ')],
  ]);
}

/**
 * The GraphQL error of a refused operation: RATE_LIMITED with the retry time and the refusing scope in `extensions`,
 * and `extensions.http` (status 429 and the headers) for the HTTP adapters; error formatting keeps `http` off the wire.
 */
export function rateLimitedError(refusal: Refusal): GraphQLError {
  const error = new RateLimitedError(refusal);
  return new GraphQLError(error.message, {
    originalError: error,
    extensions: {
      code: ErrorCode.RATE_LIMITED,
      ...(error.details.extensions as Record<string, unknown>),
      http: { status: 429, headers: rateLimitHeaders(refusal) },
    },
  });
}

/** The RATE_LIMITED error of a refused admission, or undefined for an admitted one. */
export function refusalOf(admission: Admission): GraphQLError | undefined {
  return admission.admitted ? undefined : rateLimitedError(admission);
}
