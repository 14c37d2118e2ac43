import type { EventBus } from '../../platform/pubsub/event-bus';
import type { GraphQLPubSub } from '../../platform/pubsub/graphql-pubsub';
import type { QueueDriver } from '../../platform/queue/queue.driver';
import type { WorkflowRunRepository } from './workflow-run.repository';
import type { RunView } from './workflow.views';
import { WorkflowPartitioner, WorkflowQueue, type StepDefinition } from './workflow.model';
import type { WorkflowSettings } from './workflow.options';

export const WorkflowTopic = { run: 'workflows.run' } as const;
const CANCEL_CHANNEL = 'crm:workflows:cancel';

export interface StepJob {
  runId: string;
  stepKey: string;
}

export interface RunEvent {
  runId: string;
  companyId: string;
  run: RunView;
}

const jobIdOf = (runId: string, stepKey: string) => `${runId}_${stepKey}`;

export interface WorkflowRunDispatcherDeps {
  queue: QueueDriver;
  pubsub: GraphQLPubSub;
  events: EventBus;
  runs: WorkflowRunRepository;
  settings: WorkflowSettings;
}

/**
 * What leaves a run for the rest of the system: step jobs on their queues (under a deterministic job id), the run's
 * transitions to its subscribers, and cancels to every process running its steps.
 */
export class WorkflowRunDispatcher {
  constructor(private readonly deps: WorkflowRunDispatcherDeps) {}

  async enqueue(
    runId: string,
    steps: readonly StepDefinition[],
    keys: readonly string[],
    generation?: string,
  ): Promise<void> {
    const plan = WorkflowPartitioner.createExecutionPlan(steps).levels.flat();
    for (const key of keys) {
      const queue = this.queueOf(plan.find((step) => step.key === key)!);
      const settings = this.deps.settings.queues[queue];
      await this.deps.queue.add<StepJob>(
        queue,
        key,
        { runId, stepKey: key },
        {
          jobId: generation ? `${jobIdOf(runId, key)}_${generation}` : jobIdOf(runId, key),
          attempts: settings.attempts,
          backoffMs: settings.backoffMs,
          backoffJitter: this.deps.settings.backoffJitter,
        },
      );
    }
  }

  /** The queue a step goes to: its kind's, or the default queue for every step when routing is `single`. */
  queueOf(step: { queue: WorkflowQueue }): WorkflowQueue {
    return this.deps.settings.routing === 'single' ? WorkflowQueue.default : step.queue;
  }

  async publishRun(companyId: string, runId: string): Promise<void> {
    this.publish(companyId, await this.deps.runs.runView(companyId, runId));
  }

  publish(companyId: string, run: RunView): void {
    this.deps.pubsub.publish(`${WorkflowTopic.run}.${run.id}`, {
      runId: run.id,
      companyId,
      run,
    } satisfies RunEvent);
  }

  /** Tells every process to stop the run's running steps. */
  async cancelRunning(runId: string): Promise<void> {
    await this.deps.events.publish(CANCEL_CHANNEL, runId);
  }

  /** Calls `onCancel` with each run cancelled from now on (the step runners listen). */
  onCancel(onCancel: (runId: string) => void): Promise<() => Promise<void>> {
    return this.deps.events.subscribe(CANCEL_CHANNEL, onCancel);
  }
}
