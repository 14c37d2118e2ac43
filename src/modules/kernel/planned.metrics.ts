import { MetricBuckets, type MetricFamily } from '../../platform/metrics/metrics';

/**
 * Families the dashboard and alerts already chart for the capabilities being built (search), declared here so operators' queries keep resolving meanwhile. Each capability's slice takes its
 * families over in its own module's `metrics` and deletes them from this list.
 */
export const PLANNED_CAPABILITY_METRICS: readonly MetricFamily[] = [
  {
    type: 'histogram',
    name: 'crm_search_duration_seconds',
    help: 'Search duration',
    labelNames: ['entity', 'facet_source'],
    buckets: MetricBuckets.latency,
  },
];
