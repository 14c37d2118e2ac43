import {
  assertUuid,
  NotFoundError,
  ValidationError,
  type FieldViolation,
} from '../../platform/errors/app-error';
import type { GraphQLPubSub } from '../../platform/pubsub/graphql-pubsub';
import type { Principal } from '../kernel';
import { WorkflowTopic, type RunEvent, type WorkflowRunDispatcher } from './workflow-run.dispatcher';
import {
  workflowView,
  type RunRow,
  type WorkflowRow,
  type WorkflowRunRepository,
} from './workflow-run.repository';
import { ACTIONS, parseActionConfig } from './workflow.actions';
import { MAX_STEPS, WorkflowPartitioner, type StepDefinition, type StepKind } from './workflow.model';
import type { WorkflowMetrics, WorkflowSettings } from './workflow.options';
import type { RunStatus, RunView, WorkflowView } from './workflow.views';

const FINAL_RUN = new Set<RunStatus>(['COMPLETED', 'FAILED', 'CANCELLED']);

export interface WorkflowServiceDeps {
  runs: WorkflowRunRepository;
  dispatcher: WorkflowRunDispatcher;
  pubsub: GraphQLPubSub;
  metrics: WorkflowMetrics;
  settings: WorkflowSettings;
}

export interface StepInput {
  key: string;
  name: string;
  type: string;
  action: string;
  config?: Record<string, unknown> | null;
  dependsOn?: string[] | null;
  kind?: StepKind | null;
}

/**
 * Workflows: DAG definitions validated up front, runs whose state lives in Postgres, and steps routed to the I/O, CPU
 * or default queue by kind. A step is queued once all its dependencies completed (a per-run row lock decides who
 * queues it), under a deterministic job id, so a retried or re-delivered job never repeats a completed step. This
 * file holds the use cases; the steps themselves run in `workflow.processor.ts`.
 */
export class WorkflowService {
  constructor(private readonly deps: WorkflowServiceDeps) {}

  async createWorkflow(
    principal: Principal,
    input: { name: string; steps: StepInput[] },
  ): Promise<WorkflowView> {
    const violations: FieldViolation[] = [];
    const name = input.name.trim();
    if (name.length === 0 || name.length > 200)
      violations.push({ field: 'input.name', rule: 'must be 1 to 200 characters' });
    if (input.steps.length === 0 || input.steps.length > MAX_STEPS) {
      // Refused before any per-step work: checking 10,000 steps only to refuse them took seconds.
      violations.push({ field: 'input.steps', rule: `must hold 1 to ${MAX_STEPS} steps` });
      throw new ValidationError(violations);
    }
    const steps = input.steps.map((step, index): StepDefinition => {
      const field = `input.steps[${index}]`;
      if (!step.name?.trim()) violations.push({ field: `${field}.name`, rule: 'must not be empty' });
      if (!/^[a-z][a-z0-9_]{0,31}$/.test(step.type))
        violations.push({
          field: `${field}.type`,
          rule: 'must be a lower-case word such as http, score or transform',
        });
      const dependsOn = [...new Set(step.dependsOn ?? [])];
      const config =
        parseActionConfig(
          step.action,
          step.config,
          dependsOn,
          this.deps.settings.actions,
          field,
          violations,
        ) ?? {};
      return {
        key: step.key,
        name: step.name?.trim() ?? '',
        type: step.type,
        action: step.action,
        config,
        dependsOn,
        kind: step.kind ?? null,
      };
    });
    const plan = WorkflowPartitioner.createExecutionPlan(steps, violations);
    for (const [index, step] of steps.entries()) {
      const planned = plan.levels.flat().find((candidate) => candidate.key === step.key);
      const action = Object.hasOwn(ACTIONS, step.action) ? ACTIONS[step.action] : undefined;
      if (planned?.kind === 'CPU' && action?.runsIn === 'main')
        violations.push({
          field: `input.steps[${index}].action`,
          rule: `${step.action} waits on services or the network and cannot run on the CPU queue (give the step an I/O type or kind)`,
        });
    }
    if (violations.length > 0) throw new ValidationError(violations);
    return workflowView(await this.deps.runs.insertWorkflow(principal, name, steps));
  }

  async workflow(principal: Principal, id: string): Promise<WorkflowView> {
    return workflowView(await this.workflowRow(principal, id));
  }

  async workflows(principal: Principal): Promise<WorkflowView[]> {
    return (await this.deps.runs.workflows(principal.companyId)).map(workflowView);
  }

  /** Starts a run as the caller: its CRM steps read and write with the caller's access. */
  async runWorkflow(principal: Principal, workflowId: string, input: unknown): Promise<RunView> {
    const workflow = await this.workflowRow(principal, workflowId);
    const json = JSON.stringify(input ?? {});
    if (Buffer.byteLength(json, 'utf8') > this.deps.settings.maxInputBytes)
      throw ValidationError.single(
        'input',
        `must be at most ${this.deps.settings.maxInputBytes} bytes as JSON`,
      );
    const plan = WorkflowPartitioner.createExecutionPlan(workflow.steps);
    const roots = new Set(plan.levels[0]!.map((step) => step.key));
    const planned = plan.levels
      .flat()
      .map((step) => ({ ...step, queue: this.deps.dispatcher.queueOf(step), root: roots.has(step.key) }));
    const runId = await this.deps.runs.insertRun(workflow.id, principal, json, planned);
    // Published before the jobs exist, so no subscriber can hear a step run before hearing it queued.
    const view = await this.deps.runs.runView(principal.companyId, runId);
    this.deps.dispatcher.publish(principal.companyId, view);
    await this.deps.dispatcher.enqueue(runId, workflow.steps, [...roots]);
    return view;
  }

  async workflowRun(principal: Principal, runId: string): Promise<RunView> {
    const run = await this.ownRun(principal, runId);
    return this.deps.runs.runView(run.company_id, run.id);
  }

  /** Cancels a running run: steps not started never start, running ones are stopped (their thread or request). */
  async cancelWorkflowRun(principal: Principal, runId: string): Promise<RunView> {
    const run = await this.ownRun(principal, runId);
    const changed = await this.deps.runs.cancelRun(run.id);
    if (changed) {
      this.deps.metrics.executions.inc({ status: 'cancelled' });
      await this.deps.dispatcher.cancelRunning(run.id);
    }
    const view = await this.deps.runs.runView(run.company_id, run.id);
    if (changed) this.deps.dispatcher.publish(run.company_id, view);
    return view;
  }

  /** The run as it is, then the run after every step transition, until it ends. */
  async *follow(principal: Principal, runId: string): AsyncGenerator<RunView> {
    const events = this.deps.pubsub.subscribe(`${WorkflowTopic.run}.${runId}`)[Symbol.asyncIterator]();
    const run = await this.ownRun(principal, runId).catch(async (error: unknown) => {
      await events.return?.();
      throw error;
    });
    try {
      let last = await this.deps.runs.runView(run.company_id, run.id);
      yield last;
      while (!FINAL_RUN.has(last.status)) {
        const next = await events.next();
        if (next.done) return;
        const event = next.value as RunEvent;
        if (event.runId !== run.id || event.companyId !== run.company_id) continue;
        last = event.run;
        yield last;
      }
    } finally {
      await events.return?.();
    }
  }

  private async workflowRow(principal: Principal, id: string): Promise<WorkflowRow> {
    assertUuid('id', id);
    const row = await this.deps.runs.workflow(principal.companyId, id);
    if (!row) throw new NotFoundError('Workflow', id);
    return row;
  }

  /** A run its user or a company admin may see; anyone else gets NOT_FOUND (existence is not revealed). */
  private async ownRun(principal: Principal, runId: string): Promise<RunRow> {
    assertUuid('runId', runId);
    const row = await this.deps.runs.run(principal.companyId, runId);
    if (!row || (row.user_id !== principal.userId && !principal.isAdmin))
      throw new NotFoundError('WorkflowRun', runId);
    return row;
  }
}
