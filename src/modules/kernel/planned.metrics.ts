import { MetricBuckets, type MetricFamily } from '../../platform/metrics/metrics';

/**
 * Families the dashboard and alerts already chart for the capabilities being built (workflows, search, reports), declared here so operators' queries keep resolving meanwhile. Each capability's slice takes its
 * families over in its own module's `metrics` and deletes them from this list.
 */
export const PLANNED_CAPABILITY_METRICS: readonly MetricFamily[] = [
  {
    type: 'counter',
    name: 'crm_workflow_executions_total',
    help: 'Workflow runs by outcome',
    labelNames: ['workflow', 'status'],
  },
  {
    type: 'histogram',
    name: 'crm_workflow_step_duration_seconds',
    help: 'Workflow step duration by queue and kind',
    labelNames: ['queue', 'kind'],
    buckets: MetricBuckets.long,
  },
  {
    type: 'histogram',
    name: 'crm_search_duration_seconds',
    help: 'Search duration',
    labelNames: ['entity', 'facet_source'],
    buckets: MetricBuckets.latency,
  },
  {
    type: 'histogram',
    name: 'crm_report_duration_seconds',
    help: 'Report duration',
    labelNames: ['source'],
    buckets: MetricBuckets.latency,
  },
];
