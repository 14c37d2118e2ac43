import type { Counter, Histogram } from 'prom-client';

export interface VectorSettings {
  dimension: number;
  /** Metadata keys `similar` may filter on. */
  filterKeys: readonly string[];
  /** Most candidates asked of an index before switching to an exact scan with the visibility in SQL. */
  maxCandidates: number;
  /** How long a backend's health check may take before it counts as down. */
  checkTimeoutMs: number;
  /** How often each process re-checks the backends. */
  healthCheckMs: number;
  /** How often the worker rebuilds stale indexes and purges tombstones. */
  repairEveryMs: number;
}

export interface VectorMetrics {
  duration: Histogram<'backend'>;
  fallbacks: Counter<'from' | 'to'>;
}
