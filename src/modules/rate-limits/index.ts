// Rate limits' public face: its module, and what the edge uses of it.
export { rateLimitsModule, RateLimitMetric, type RateLimitServices } from './rate-limits.module';
export type { Admission, PolicyCount, RateLimitService } from './rate-limit.service';
export type { RateLimitPolicy, RateLimitScope, RateLimitMeasure } from './rate-limit.model';
