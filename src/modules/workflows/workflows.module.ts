import { Workflows1765000000000 } from '../../../migrations/1765000000000-workflows';
import { WorkflowStepLeases1765000000001 } from '../../../migrations/1765000000001-workflow-step-leases';
import { MetricBuckets } from '../../platform/metrics/metrics';
import { ShutdownPhase } from '../../platform/lifecycle/lifecycle';
import type { JobContext } from '../../platform/queue/queue.driver';
import { defineModule, requireService } from '../kernel';
import { workflowBench } from './workflow.bench';
import { WorkflowResolver } from './workflow.resolver';
import { WorkflowQueue } from './workflow.model';
import { WorkflowRunDispatcher, type StepJob } from './workflow-run.dispatcher';
import { WorkflowRunRepository } from './workflow-run.repository';
import { WorkflowStepProcessor } from './workflow.processor';
import { WorkflowService } from './workflow.service';
import type { WorkflowMetrics, WorkflowSettings } from './workflow.options';

export interface WorkflowServices {
  workflows: WorkflowService;
  /** The step runner of the workflow queues (used by this module's processors and scheduled job). */
  workflowSteps: WorkflowStepProcessor;
}

declare module '../kernel/registries' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ServiceRegistry extends WorkflowServices {}
}

export const WorkflowMetric = {
  executions: 'crm_workflow_executions_total',
  stepDuration: 'crm_workflow_step_duration_seconds',
} as const;

/** Workflows: DAGs of steps routed to I/O, CPU (worker threads) and default queues, with state in Postgres. */
export const workflowsModule = defineModule<WorkflowServices>({
  name: 'workflows',
  migrations: [Workflows1765000000000, WorkflowStepLeases1765000000001],
  queues: Object.values(WorkflowQueue),
  createServices: ({ config, dataSource, queue, pubsub, events, logger, metrics, lifecycle, services }) => {
    const { queues, backoffMs } = config.workflows;
    const workflowMetrics: WorkflowMetrics = {
      executions: metrics.counter(WorkflowMetric.executions, 'Workflow runs by outcome', ['status']),
      stepDuration: metrics.histogram(
        WorkflowMetric.stepDuration,
        'Workflow step duration by queue and kind (IO, CPU, MIXED)',
        ['queue', 'kind'],
        MetricBuckets.long,
      ),
    };
    const settings: WorkflowSettings = {
      queues: {
        [WorkflowQueue.io]: { ...queues.io, backoffMs },
        [WorkflowQueue.cpu]: { ...queues.cpu, backoffMs },
        // Single routing puts every step on this queue, with the three queues' concurrency together.
        [WorkflowQueue.default]: {
          ...queues.default,
          backoffMs,
          concurrency:
            config.workflows.routing === 'single'
              ? queues.io.concurrency + queues.cpu.concurrency + queues.default.concurrency
              : queues.default.concurrency,
        },
      },
      routing: config.workflows.routing,
      backoffJitter: config.workflows.backoffJitter,
      lockMs: config.workflows.lockMs,
      maxInputBytes: 1024 * 1024,
      actions: {
        httpAllowList: config.workflows.httpAllowList,
        webhookSecret: config.workflows.webhookSecret,
      },
    };
    const runs = new WorkflowRunRepository(dataSource);
    const dispatcher = new WorkflowRunDispatcher({ queue, pubsub, events, runs, settings });
    const steps = new WorkflowStepProcessor({
      dataSource,
      runs,
      dispatcher,
      logger,
      identity: requireService(services, 'identity', 'workflows'),
      records: requireService(services, 'records', 'workflows'),
      visibility: requireService(services, 'visibility', 'workflows'),
      metrics: workflowMetrics,
      settings,
    });
    lifecycle.register('workflow CPU threads', ShutdownPhase.workers, () => steps.close());
    return {
      workflows: new WorkflowService({ runs, dispatcher, pubsub, metrics: workflowMetrics, settings }),
      workflowSteps: steps,
    };
  },
  resolvers: (services) => [
    { resolver: WorkflowResolver, create: () => new WorkflowResolver(services.workflows) },
  ],
  processors: (services) => {
    // Only processes that run steps listen for cancels and start the CPU threads.
    services.workflowSteps.startRunner();
    const { lockMs } = services.workflowSteps.settings;
    return Object.values(WorkflowQueue).map((queue) => ({
      queue,
      processor: (job: JobContext<StepJob>) => services.workflowSteps.processStep(job),
      options: { concurrency: services.workflowSteps.jobConcurrency(queue), lockDurationMs: lockMs },
    }));
  },
  scheduledJobs: (services) => [
    {
      name: 'workflows.requeue-stranded',
      schedule: { everyMs: 60_000 },
      run: async () => {
        await services.workflowSteps.requeueStranded();
      },
    },
  ],
  bench: workflowBench,
});
