import type { Counter, Histogram } from 'prom-client';
import type { ActionSettings } from './workflow-action.contract';
import type { WorkflowQueue } from './workflow.model';

export interface QueueSettings {
  concurrency: number;
  timeoutMs: number;
  attempts: number;
  backoffMs: number;
}

export interface WorkflowSettings {
  queues: Readonly<Record<WorkflowQueue, QueueSettings>>;
  /**
   * `partitioned`: steps go to their kind's queue and CPU steps to worker threads. `single`: one queue (the default,
   * with the three queues' total concurrency), CPU steps inline: what the product did before, kept for comparison.
   */
  routing: 'partitioned' | 'single';
  /** Fraction of each retry delay drawn at random. */
  backoffJitter: number;
  /** A worker's claim on a running step; a step whose worker died is retried after it. */
  lockMs: number;
  maxInputBytes: number;
  actions: ActionSettings;
}

export interface WorkflowMetrics {
  executions: Counter<'status'>;
  stepDuration: Histogram<'queue' | 'kind'>;
}
