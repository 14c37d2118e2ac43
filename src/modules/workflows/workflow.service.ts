import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Counter, Histogram } from 'prom-client';
import type { DataSource, EntityManager } from 'typeorm';
import {
  assertUuid,
  NotFoundError,
  ValidationError,
  type FieldViolation,
} from '../../platform/errors/app-error';
import type { Logger } from '../../platform/logging/logger';
import type { EventBus } from '../../platform/pubsub/event-bus';
import type { GraphQLPubSub } from '../../platform/pubsub/graphql-pubsub';
import type { JobContext, QueueDriver } from '../../platform/queue/queue.driver';
import type { Principal, ServiceRegistry } from '../kernel';
import { CpuPool, StepCancelledError, StepTimeoutError } from './cpu-pool';
import { ACTIONS, parseActionConfig, PermanentStepError, type ActionSettings } from './workflow.actions';
import {
  dependentsOf,
  MAX_STEPS,
  WorkflowPartitioner,
  WorkflowQueue,
  type ExecutionPlan,
  type StepDefinition,
  type StepKind,
} from './workflow.model';

export const WorkflowTopic = { run: 'workflows.run' } as const;
const CANCEL_CHANNEL = 'crm:workflows:cancel';

export type RunStatus = 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
export type StepStatus = 'PENDING' | 'QUEUED' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
const FINAL_RUN = new Set<RunStatus>(['COMPLETED', 'FAILED', 'CANCELLED']);

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

export interface WorkflowServiceDeps {
  dataSource: DataSource;
  queue: QueueDriver;
  pubsub: GraphQLPubSub;
  events: EventBus;
  logger: Logger;
  identity: ServiceRegistry['identity'];
  records: ServiceRegistry['records'];
  visibility: ServiceRegistry['visibility'];
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

export interface WorkflowView {
  id: string;
  name: string;
  ownerId: string;
  steps: StepDefinition[];
  plan: ExecutionPlan;
  createdAt: Date;
}

export interface StepRunView {
  key: string;
  name: string;
  action: string;
  kind: StepKind;
  queue: string;
  status: StepStatus;
  attempts: number;
  queuedAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  output: unknown;
  error: string | null;
}

export interface RunView {
  id: string;
  workflowId: string;
  userId: string;
  status: RunStatus;
  input: unknown;
  error: string | null;
  createdAt: Date;
  finishedAt: Date | null;
  steps: StepRunView[];
}

export interface StepJob {
  runId: string;
  stepKey: string;
}

interface RunEvent {
  runId: string;
  companyId: string;
  run: RunView;
}

interface WorkflowRow {
  id: string;
  company_id: string;
  owner_id: string;
  name: string;
  steps: StepDefinition[];
  created_at: Date;
}

interface RunRow {
  id: string;
  workflow_id: string;
  company_id: string;
  user_id: string;
  status: RunStatus;
  input: unknown;
  error: string | null;
  created_at: Date;
  finished_at: Date | null;
}

interface StepRow {
  step_key: string;
  kind: StepKind;
  queue: string;
  status: StepStatus;
  attempts: number;
  queued_at: Date | null;
  started_at: Date | null;
  finished_at: Date | null;
  output: unknown;
  error: string | null;
}

const jobIdOf = (runId: string, stepKey: string) => `${runId}_${stepKey}`;

/**
 * Workflows: DAG definitions validated up front, runs whose state lives in Postgres, and steps routed to the I/O, CPU
 * or default queue by kind. A step is queued once all its dependencies completed (a per-run row lock decides who
 * queues it), under a deterministic job id, so a retried or re-delivered job never repeats a completed step.
 */
export class WorkflowService {
  private pool?: CpuPool;
  private runner = false;
  /** Steps running in this process, by run: cancelling a run aborts them. */
  private readonly running = new Map<string, Set<AbortController>>();

  constructor(private readonly deps: WorkflowServiceDeps) {}

  get settings(): WorkflowSettings {
    return this.deps.settings;
  }

  /**
   * Makes this process a step runner: it hears cancels (only processes running steps have anything to abort) and,
   * with partitioned routing, starts the CPU threads before the first CPU step arrives. Idempotent.
   */
  startRunner(): void {
    if (this.runner) return;
    this.runner = true;
    void this.deps.events
      .subscribe(CANCEL_CHANNEL, (runId) => {
        for (const controller of this.running.get(runId) ?? []) controller.abort();
      })
      .catch((error: unknown) =>
        this.deps.logger.error({ err: error }, 'workflow cancel channel unavailable'),
      );
    if (this.deps.settings.routing === 'partitioned') this.startCpuPool();
  }

  /** The CPU threads (started by `startRunner`, or on first use). */
  startCpuPool(): CpuPool {
    this.pool ??= new CpuPool(this.deps.settings.queues[WorkflowQueue.cpu].concurrency, this.deps.logger);
    return this.pool;
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }

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
    const [row] = await this.deps.dataSource.query<WorkflowRow[]>(
      `INSERT INTO workflows (company_id, owner_id, name, steps) VALUES ($1, $2, $3, $4) RETURNING *`,
      [principal.companyId, principal.userId, name, JSON.stringify(steps)],
    );
    return this.workflowView(row!);
  }

  async workflow(principal: Principal, id: string): Promise<WorkflowView> {
    return this.workflowView(await this.workflowRow(principal, id));
  }

  async workflows(principal: Principal): Promise<WorkflowView[]> {
    const rows = await this.deps.dataSource.query<WorkflowRow[]>(
      'SELECT * FROM workflows WHERE company_id = $1 ORDER BY created_at DESC, id LIMIT 200',
      [principal.companyId],
    );
    return rows.map((row) => this.workflowView(row));
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
    const planned = plan.levels.flat().map((step) => ({ ...step, queue: this.queueOf(step) }));
    const roots = new Set(plan.levels[0]!.map((step) => step.key));
    const runId = await this.deps.dataSource.transaction(async (manager) => {
      const [run] = await manager.query<Array<{ id: string }>>(
        `INSERT INTO workflow_runs (workflow_id, company_id, user_id, input) VALUES ($1, $2, $3, $4) RETURNING id`,
        [workflow.id, principal.companyId, principal.userId, json],
      );
      await manager.query(
        `INSERT INTO workflow_step_runs (run_id, step_key, kind, queue, status, queued_at)
         SELECT $1, s.key, s.kind, s.queue, CASE WHEN s.root THEN 'QUEUED' ELSE 'PENDING' END,
                CASE WHEN s.root THEN now() END
           FROM jsonb_to_recordset($2::jsonb) AS s(key text, kind text, queue text, root boolean)`,
        [run!.id, JSON.stringify(planned.map((step) => ({ ...step, root: roots.has(step.key) })))],
      );
      return run!.id;
    });
    // Published before the jobs exist, so no subscriber can hear a step run before hearing it queued.
    const view = await this.runView(principal.companyId, runId);
    this.publish(principal.companyId, view);
    await this.enqueue(runId, workflow.steps, [...roots]);
    return view;
  }

  async workflowRun(principal: Principal, runId: string): Promise<RunView> {
    const run = await this.ownRun(principal, runId);
    return this.runView(run.company_id, run.id);
  }

  /** Cancels a running run: steps not started never start, running ones are stopped (their thread or request). */
  async cancelWorkflowRun(principal: Principal, runId: string): Promise<RunView> {
    const run = await this.ownRun(principal, runId);
    const changed = await this.deps.dataSource.transaction(async (manager) => {
      const [locked] = await manager.query<RunRow[]>('SELECT * FROM workflow_runs WHERE id = $1 FOR UPDATE', [
        run.id,
      ]);
      if (locked!.status !== 'RUNNING') return false;
      await this.finishRun(manager, run.id, 'CANCELLED', 'cancelled by a user');
      return true;
    });
    if (changed) {
      this.deps.metrics.executions.inc({ status: 'cancelled' });
      await this.deps.events.publish(CANCEL_CHANNEL, run.id);
    }
    const view = await this.runView(run.company_id, run.id);
    if (changed) this.publish(run.company_id, view);
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
      let last = await this.runView(run.company_id, run.id);
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

  /**
   * The processor of every workflow queue: claims the step (a token and a lease renewed while it runs), runs its
   * action, and records the outcome only while it still holds the claim. A job delivered twice finds the step
   * claimed (or finished) and does nothing.
   */
  async processStep(job: JobContext<StepJob>): Promise<string> {
    const { runId, stepKey } = job.data;
    // Listening before the claim: a cancel that lands right after it is not missed.
    const controller = new AbortController();
    const controllers = this.running.get(runId) ?? new Set();
    controllers.add(controller);
    this.running.set(runId, controllers);
    const token = randomUUID();
    const leaseMs = this.deps.settings.lockMs;
    let renewal: NodeJS.Timeout | undefined;
    try {
      // UPDATE ... RETURNING answers [rows, affected count].
      const [[claimed]] = await this.deps.dataSource.query<
        [Array<{ attempts: number; queue: WorkflowQueue; kind: StepKind }>, number]
      >(
        `UPDATE workflow_step_runs s
            SET status = 'RUNNING', attempts = s.attempts + 1, started_at = COALESCE(s.started_at, now()),
                error = NULL, claim_token = $3, lease_until = now() + make_interval(secs => $4::double precision / 1000)
           FROM workflow_runs r
          WHERE s.run_id = $1 AND s.step_key = $2 AND r.id = s.run_id AND r.status = 'RUNNING'
            AND (s.status = 'QUEUED' OR (s.status = 'RUNNING' AND s.lease_until < now()))
          RETURNING s.attempts, s.queue, s.kind`,
        [runId, stepKey, token, leaseMs],
      );
      // Finished, cancelled, or running under someone else's live claim: nothing to do.
      if (!claimed) return 'skipped';
      renewal = setInterval(
        () => {
          void this.deps.dataSource
            .query(
              `UPDATE workflow_step_runs SET lease_until = now() + make_interval(secs => $4::double precision / 1000)
              WHERE run_id = $1 AND step_key = $2 AND claim_token = $3`,
              [runId, stepKey, token, leaseMs],
            )
            .catch((error: unknown) =>
              this.deps.logger.warn({ err: error, runId, stepKey }, 'step lease renewal failed'),
            );
        },
        Math.max(100, Math.floor(leaseMs / 3)),
      );
      renewal.unref();
      const [run] = await this.deps.dataSource.query<Array<RunRow & { steps: StepDefinition[] }>>(
        'SELECT r.*, w.steps FROM workflow_runs r JOIN workflows w ON w.id = r.workflow_id WHERE r.id = $1',
        [runId],
      );
      const step = run!.steps.find((candidate) => candidate.key === stepKey)!;
      await this.publishRun(run!.company_id, runId);
      const queueSettings = this.deps.settings.queues[claimed.queue];
      const started = performance.now();
      try {
        if (controller.signal.aborted) throw new StepCancelledError();
        const output = await this.execute(
          run!,
          step,
          claimed.kind,
          queueSettings.timeoutMs,
          controller.signal,
        );
        this.deps.metrics.stepDuration.observe(
          { queue: claimed.queue, kind: claimed.kind },
          (performance.now() - started) / 1000,
        );
        await this.completeStep(run!, stepKey, token, output);
        return 'completed';
      } catch (error) {
        const message = (error as Error).message ?? String(error);
        if (controller.signal.aborted || error instanceof StepCancelledError) {
          await this.settleStep(runId, stepKey, token, 'CANCELLED', 'cancelled');
          return 'cancelled';
        }
        const permanent = error instanceof PermanentStepError;
        if (!permanent && claimed.attempts < queueSettings.attempts) {
          // Back to QUEUED for the queue's retry, unless the run ended meanwhile (then it will never run).
          const [[retry]] = await this.deps.dataSource.query<[Array<{ status: StepStatus }>, number]>(
            `UPDATE workflow_step_runs s
                SET status = CASE WHEN r.status = 'RUNNING' THEN 'QUEUED' ELSE 'CANCELLED' END, error = $4,
                    claim_token = NULL, lease_until = NULL,
                    finished_at = CASE WHEN r.status = 'RUNNING' THEN NULL ELSE now() END
               FROM workflow_runs r
              WHERE s.run_id = $1 AND s.step_key = $2 AND s.claim_token = $3 AND r.id = s.run_id
              RETURNING s.status`,
            [runId, stepKey, token, `attempt ${claimed.attempts} failed: ${message}`],
          );
          await this.publishRun(run!.company_id, runId);
          if (retry?.status !== 'QUEUED') return 'cancelled';
          // The queue retries it after an exponential, jittered delay.
          throw error;
        }
        const reason = error instanceof StepTimeoutError ? `timed out after ${error.timeoutMs} ms` : message;
        await this.failStep(run!, stepKey, token, reason);
        return 'failed';
      }
    } finally {
      clearInterval(renewal);
      controllers.delete(controller);
      if (controllers.size === 0) this.running.delete(runId);
    }
  }

  /**
   * Re-queues steps whose job may be gone: QUEUED for a minute (a process died between recording a step as ready and
   * queueing it), or RUNNING with a lapsed lease (its worker died and the queue gave up on the job). The job id
   * carries the attempt count, so a job the queue still remembers as failed does not swallow the new one.
   */
  async requeueStranded(olderThanMs = 60_000): Promise<number> {
    const rows = await this.deps.dataSource.query<
      Array<{ run_id: string; step_key: string; attempts: number; steps: StepDefinition[] }>
    >(
      `SELECT s.run_id, s.step_key, s.attempts, w.steps FROM workflow_step_runs s
         JOIN workflow_runs r ON r.id = s.run_id JOIN workflows w ON w.id = r.workflow_id
        WHERE r.status = 'RUNNING'
          AND ((s.status = 'QUEUED' AND s.queued_at < now() - make_interval(secs => $1::double precision / 1000))
            OR (s.status = 'RUNNING' AND s.lease_until < now() - make_interval(secs => $1::double precision / 1000)))
        LIMIT 1000`,
      [olderThanMs],
    );
    for (const row of rows) await this.enqueue(row.run_id, row.steps, [row.step_key], `r${row.attempts}`);
    return rows.length;
  }

  private async execute(
    run: RunRow & { steps: StepDefinition[] },
    step: StepDefinition,
    kind: StepKind,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<unknown> {
    const outputs = await this.deps.dataSource.query<Array<{ step_key: string; output: unknown }>>(
      `SELECT step_key, output FROM workflow_step_runs WHERE run_id = $1 AND step_key = ANY($2::text[])`,
      [run.id, step.dependsOn],
    );
    const scope = {
      input: run.input,
      steps: Object.fromEntries(outputs.map((row) => [row.step_key, row.output])),
    };
    const action = ACTIONS[step.action]!;
    // Pure computation always runs in a thread (whatever queue the step is on): only there can a timeout stop it.
    if (action.runsIn === 'thread' && this.deps.settings.routing === 'partitioned')
      return this.startCpuPool().run(step.action, step.config, scope, { timeoutMs, signal });
    const [user] = await this.deps.identity.usersByIds(run.company_id, [run.user_id]);
    if (!user || user.deactivatedAt)
      throw new PermanentStepError("the run's user no longer exists or is deactivated");
    const principal: Principal = {
      userId: user.id,
      companyId: user.companyId,
      roleId: user.roleId,
      isAdmin: user.isAdmin,
      tokenExpiresAt: Number.MAX_SAFE_INTEGER,
    };
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), timeoutMs);
    try {
      const work = action.run!(step.config, {
        runId: run.id,
        stepKey: step.key,
        principal,
        scope,
        signal: AbortSignal.any([signal, timeout.signal]),
        timeoutMs,
        settings: this.deps.settings.actions,
        dataSource: this.deps.dataSource,
        records: this.deps.records,
        visibility: this.deps.visibility,
      });
      // An action that ignores its signal still stops counting against the step at the timeout.
      return await Promise.race([
        work,
        new Promise<never>((_, reject) =>
          timeout.signal.addEventListener('abort', () => reject(new StepTimeoutError(timeoutMs)), {
            once: true,
          }),
        ),
      ]);
    } catch (error) {
      if (timeout.signal.aborted && !signal.aborted) throw new StepTimeoutError(timeoutMs);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Records the output; queues each dependent whose dependencies are now all complete; ends the run when all are. */
  private async completeStep(
    run: RunRow & { steps: StepDefinition[] },
    stepKey: string,
    token: string,
    output: unknown,
  ): Promise<void> {
    let view: RunView | undefined;
    const ready = await this.deps.dataSource.transaction(async (manager) => {
      // One completion of a run at a time: two steps finishing together both see each other's result.
      const [locked] = await manager.query<RunRow[]>(
        'SELECT status FROM workflow_runs WHERE id = $1 FOR UPDATE',
        [run.id],
      );
      const [, recorded] = await manager.query<[unknown, number]>(
        `UPDATE workflow_step_runs SET status = 'COMPLETED', output = $4, finished_at = now(), error = NULL,
                claim_token = NULL, lease_until = NULL
          WHERE run_id = $1 AND step_key = $2 AND claim_token = $3`,
        [run.id, stepKey, token, JSON.stringify(output ?? null)],
      );
      // Lost the claim (the lease lapsed and another worker took the step): its outcome is that worker's to record.
      if (recorded === 0 || locked!.status !== 'RUNNING') return [];
      const rows = await manager.query<Array<{ step_key: string; status: StepStatus }>>(
        'SELECT step_key, status FROM workflow_step_runs WHERE run_id = $1',
        [run.id],
      );
      const status = new Map(rows.map((row) => [row.step_key, row.status]));
      const next = dependentsOf(run.steps, stepKey)
        .filter((dependent) => status.get(dependent.key) === 'PENDING')
        .filter((dependent) => dependent.dependsOn.every((key) => status.get(key) === 'COMPLETED'))
        .map((dependent) => dependent.key);
      if (next.length > 0)
        await manager.query(
          `UPDATE workflow_step_runs SET status = 'QUEUED', queued_at = now()
            WHERE run_id = $1 AND step_key = ANY($2::text[]) AND status = 'PENDING'`,
          [run.id, next],
        );
      if ([...status.values()].every((value) => value === 'COMPLETED')) {
        await this.finishRun(manager, run.id, 'COMPLETED', null);
        this.deps.metrics.executions.inc({ status: 'completed' });
      }
      // The run as this transition left it (read before the next steps can start): every transition is heard.
      view = await this.runView(run.company_id, run.id, manager);
      return next;
    });
    this.publish(run.company_id, view!);
    await this.enqueue(run.id, run.steps, ready);
  }

  /** A step failed for good: the run fails, steps not started are cancelled, running ones are stopped. */
  private async failStep(run: RunRow, stepKey: string, token: string, reason: string): Promise<void> {
    const failedRun = await this.deps.dataSource.transaction(async (manager) => {
      const [locked] = await manager.query<RunRow[]>(
        'SELECT status FROM workflow_runs WHERE id = $1 FOR UPDATE',
        [run.id],
      );
      const [, recorded] = await manager.query<[unknown, number]>(
        `UPDATE workflow_step_runs SET status = 'FAILED', error = $4, finished_at = now(), claim_token = NULL,
                lease_until = NULL
          WHERE run_id = $1 AND step_key = $2 AND claim_token = $3`,
        [run.id, stepKey, token, reason.slice(0, 2000)],
      );
      if (recorded === 0 || locked!.status !== 'RUNNING') return false;
      await this.finishRun(manager, run.id, 'FAILED', `step ${stepKey} failed: ${reason}`.slice(0, 2000));
      return true;
    });
    if (failedRun) {
      this.deps.metrics.executions.inc({ status: 'failed' });
      await this.deps.events.publish(CANCEL_CHANNEL, run.id);
    }
    await this.publishRun(run.company_id, run.id);
  }

  private async settleStep(
    runId: string,
    stepKey: string,
    token: string,
    status: StepStatus,
    error: string | null,
  ): Promise<void> {
    const [run] = await this.deps.dataSource.query<Array<{ company_id: string }>>(
      `WITH settled AS (
         UPDATE workflow_step_runs SET status = $4, error = $5, finished_at = now(), claim_token = NULL, lease_until = NULL
          WHERE run_id = $1 AND step_key = $2 AND claim_token = $3 RETURNING run_id)
       SELECT company_id FROM workflow_runs WHERE id = $1`,
      [runId, stepKey, token, status, error],
    );
    if (run) await this.publishRun(run.company_id, runId);
  }

  private async finishRun(manager: EntityManager, runId: string, status: RunStatus, error: string | null) {
    await manager.query(
      `UPDATE workflow_runs SET status = $2, error = $3, finished_at = now(), updated_at = now() WHERE id = $1`,
      [runId, status, error],
    );
    if (status !== 'COMPLETED')
      await manager.query(
        `UPDATE workflow_step_runs SET status = 'CANCELLED', finished_at = now()
          WHERE run_id = $1 AND status IN ('PENDING', 'QUEUED')`,
        [runId],
      );
  }

  private async enqueue(
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
  private queueOf(step: { queue: WorkflowQueue }): WorkflowQueue {
    return this.deps.settings.routing === 'single' ? WorkflowQueue.default : step.queue;
  }

  private async publishRun(companyId: string, runId: string): Promise<void> {
    this.publish(companyId, await this.runView(companyId, runId));
  }

  private publish(companyId: string, run: RunView): void {
    this.deps.pubsub.publish(`${WorkflowTopic.run}.${run.id}`, {
      runId: run.id,
      companyId,
      run,
    } satisfies RunEvent);
  }

  private async workflowRow(principal: Principal, id: string): Promise<WorkflowRow> {
    assertUuid('id', id);
    const [row] = await this.deps.dataSource.query<WorkflowRow[]>(
      'SELECT * FROM workflows WHERE id = $1 AND company_id = $2',
      [id, principal.companyId],
    );
    if (!row) throw new NotFoundError('Workflow', id);
    return row;
  }

  /** A run its user or a company admin may see; anyone else gets NOT_FOUND (existence is not revealed). */
  private async ownRun(principal: Principal, runId: string): Promise<RunRow> {
    assertUuid('runId', runId);
    const [row] = await this.deps.dataSource.query<RunRow[]>(
      'SELECT * FROM workflow_runs WHERE id = $1 AND company_id = $2',
      [runId, principal.companyId],
    );
    if (!row || (row.user_id !== principal.userId && !principal.isAdmin))
      throw new NotFoundError('WorkflowRun', runId);
    return row;
  }

  private async runView(companyId: string, runId: string, manager?: EntityManager): Promise<RunView> {
    const db = manager ?? this.deps.dataSource.manager;
    const [run] = await db.query<Array<RunRow & { steps: StepDefinition[] }>>(
      `SELECT r.*, w.steps FROM workflow_runs r JOIN workflows w ON w.id = r.workflow_id
        WHERE r.id = $1 AND r.company_id = $2`,
      [runId, companyId],
    );
    if (!run) throw new NotFoundError('WorkflowRun', runId);
    const rows = await db.query<StepRow[]>('SELECT * FROM workflow_step_runs WHERE run_id = $1', [runId]);
    const byKey = new Map(rows.map((row) => [row.step_key, row]));
    return {
      id: run.id,
      workflowId: run.workflow_id,
      userId: run.user_id,
      status: run.status,
      input: run.input,
      error: run.error,
      createdAt: run.created_at,
      finishedAt: run.finished_at,
      steps: run.steps.map((step) => {
        const row = byKey.get(step.key)!;
        return {
          key: step.key,
          name: step.name,
          action: step.action,
          kind: row.kind,
          queue: row.queue,
          status: row.status,
          attempts: row.attempts,
          queuedAt: row.queued_at,
          startedAt: row.started_at,
          finishedAt: row.finished_at,
          output: row.output,
          error: row.error,
        };
      }),
    };
  }

  private workflowView(row: WorkflowRow): WorkflowView {
    return {
      id: row.id,
      name: row.name,
      ownerId: row.owner_id,
      steps: row.steps,
      plan: WorkflowPartitioner.createExecutionPlan(row.steps),
      createdAt: row.created_at,
    };
  }
}
