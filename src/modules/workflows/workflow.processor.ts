import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { DataSource } from 'typeorm';
import type { Logger } from '../../platform/logging/logger';
import type { JobContext } from '../../platform/queue/queue.driver';
import type { Principal, ServiceRegistry } from '../kernel';
import { CpuPool, StepCancelledError, StepTimeoutError } from './cpu-pool';
import type { StepJob, WorkflowRunDispatcher } from './workflow-run.dispatcher';
import {
  toRunView,
  type ClaimedStep,
  type RunWithSteps,
  type WorkflowRunRepository,
} from './workflow-run.repository';
import { PermanentStepError } from './workflow-action.contract';
import { ACTIONS } from './workflow.actions';
import { WorkflowQueue, type StepDefinition } from './workflow.model';
import type { WorkflowMetrics, WorkflowSettings } from './workflow.options';

export interface WorkflowStepProcessorDeps {
  /** Handed to the actions (CRM reads and writes). */
  dataSource: DataSource;
  runs: WorkflowRunRepository;
  dispatcher: WorkflowRunDispatcher;
  logger: Logger;
  identity: ServiceRegistry['identity'];
  records: ServiceRegistry['records'];
  visibility: ServiceRegistry['visibility'];
  metrics: WorkflowMetrics;
  settings: WorkflowSettings;
}

type StepScope = {
  input: unknown;
  steps: Record<string, unknown>;
};

/** What the processor answers the queue for a step job. */
type StepOutcome = 'skipped' | 'completed' | 'cancelled' | 'failed';

/** A step this worker holds the claim on, and what it runs under. */
interface ClaimedRun {
  run: RunWithSteps;
  step: StepDefinition;
  /** What the step's expressions read: the run's input and its dependencies' outputs. */
  scope: StepScope;
  token: string;
  claimed: ClaimedStep;
  signal: AbortSignal;
}

/**
 * The worker side of workflows: runs one step per job (claim with a lease, execute, retry with backoff, complete or
 * fail), queues the dependents it made ready, and re-queues steps whose job was lost.
 */
export class WorkflowStepProcessor {
  private pool?: CpuPool;
  private runner = false;
  /** Steps running in this process, by run: cancelling a run aborts them. */
  private readonly running = new Map<string, Set<AbortController>>();

  constructor(private readonly deps: WorkflowStepProcessorDeps) {}

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
    void this.deps.dispatcher
      .onCancel((runId) => {
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

  /**
   * Step jobs this process takes from `queue` at once. The CPU queue takes twice its threads: a step's claim and its
   * completion are Postgres round trips on the main thread, and with one job per thread the thread would idle through
   * them; the extra jobs wait claimed in the pool, so a thread that finishes starts the next step at once (a step's
   * time limit counts from its thread).
   */
  jobConcurrency(queue: WorkflowQueue): number {
    const { concurrency } = this.deps.settings.queues[queue];
    return queue === WorkflowQueue.cpu && this.deps.settings.routing === 'partitioned'
      ? 2 * concurrency
      : concurrency;
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }

  /**
   * The processor of every workflow queue: claims the step (a token and a lease renewed while it runs), runs its
   * action, and records the outcome only while it still holds the claim. A job delivered twice finds the step
   * claimed (or finished) and does nothing.
   */
  async processStep(job: JobContext<StepJob>): Promise<StepOutcome> {
    const { runId, stepKey } = job.data;
    // Listening before the claim: a cancel that lands right after it is not missed.
    const controller = this.track(runId);
    const token = randomUUID();
    let renewal: NodeJS.Timeout | undefined;
    try {
      const claim = await this.deps.runs.claimStep(runId, stepKey, token, this.deps.settings.lockMs);
      // Finished, cancelled, or running under someone else's live claim: nothing to do.
      if (!claim) return 'skipped';
      renewal = this.renewLease(runId, stepKey, token);
      const { run, claimed, rows } = claim;
      this.deps.dispatcher.publish(run.company_id, toRunView(run, rows));
      const step = run.steps.find((candidate) => candidate.key === stepKey)!;
      const outputs = new Map(rows.map((row) => [row.step_key, row.output]));
      const scope = {
        input: run.input,
        steps: Object.fromEntries(step.dependsOn.map((key) => [key, outputs.get(key)])),
      };
      return await this.runClaimed({ run, step, scope, token, claimed, signal: controller.signal });
    } finally {
      clearInterval(renewal);
      this.untrack(runId, controller);
    }
  }

  /**
   * Re-queues steps whose job may be gone: QUEUED for a minute (a process died between recording a step as ready and
   * queueing it), or RUNNING with a lapsed lease (its worker died and the queue gave up on the job). The job id
   * carries the attempt count, so a job the queue still remembers as failed does not swallow the new one.
   */
  async requeueStranded(olderThanMs = 60_000): Promise<number> {
    const rows = await this.deps.runs.strandedSteps(olderThanMs);
    for (const row of rows)
      await this.deps.dispatcher.enqueue(row.run_id, row.steps, [row.step_key], `r${row.attempts}`);
    return rows.length;
  }

  /** Registers a running step of the run, so a cancel of the run aborts it. */
  private track(runId: string): AbortController {
    const controller = new AbortController();
    const controllers = this.running.get(runId) ?? new Set();
    controllers.add(controller);
    this.running.set(runId, controllers);
    return controller;
  }

  private untrack(runId: string, controller: AbortController): void {
    const controllers = this.running.get(runId);
    controllers?.delete(controller);
    if (controllers?.size === 0) this.running.delete(runId);
  }

  /** Renews the claim's lease every third of it while the step runs; the caller clears the timer. */
  private renewLease(runId: string, stepKey: string, token: string): NodeJS.Timeout {
    const leaseMs = this.deps.settings.lockMs;
    const renewal = setInterval(
      () => {
        void this.deps.runs
          .renewLease(runId, stepKey, token, leaseMs)
          .catch((error: unknown) =>
            this.deps.logger.warn({ err: error, runId, stepKey }, 'step lease renewal failed'),
          );
      },
      Math.max(100, Math.floor(leaseMs / 3)),
    );
    renewal.unref();
    return renewal;
  }

  /** Runs the claimed step's action and records its outcome. */
  private async runClaimed(claim: ClaimedRun): Promise<StepOutcome> {
    const { run, step, scope, token, claimed, signal } = claim;
    const stepKey = step.key;
    const started = performance.now();
    try {
      if (signal.aborted) throw new StepCancelledError();
      const output = await this.execute(
        run,
        step,
        scope,
        this.deps.settings.queues[claimed.queue].timeoutMs,
        signal,
      );
      this.deps.metrics.stepDuration.observe(
        { queue: claimed.queue, kind: claimed.kind },
        (performance.now() - started) / 1000,
      );
      await this.completeStep(run, stepKey, token, output);
      return 'completed';
    } catch (error) {
      return this.recordFailure(claim, error);
    }
  }

  /** A failed attempt: cancelled, back to the queue for a retry (rethrown), or the step fails for good. */
  private async recordFailure(claim: ClaimedRun, error: unknown): Promise<StepOutcome> {
    const { run, token, claimed, signal } = claim;
    const stepKey = claim.step.key;
    const message = (error as Error).message ?? String(error);
    if (signal.aborted || error instanceof StepCancelledError) {
      await this.settleCancelled(run.id, stepKey, token);
      return 'cancelled';
    }
    const permanent = error instanceof PermanentStepError;
    if (!permanent && claimed.attempts < this.deps.settings.queues[claimed.queue].attempts) {
      const status = await this.deps.runs.releaseForRetry(
        run.id,
        stepKey,
        token,
        `attempt ${claimed.attempts} failed: ${message}`,
      );
      await this.deps.dispatcher.publishRun(run.company_id, run.id);
      if (status !== 'QUEUED') return 'cancelled';
      // The queue retries it after an exponential, jittered delay.
      throw error;
    }
    const reason = error instanceof StepTimeoutError ? `timed out after ${error.timeoutMs} ms` : message;
    await this.failStep(run, stepKey, token, reason);
    return 'failed';
  }

  private async execute(
    run: RunWithSteps,
    step: StepDefinition,
    scope: StepScope,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<unknown> {
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
    run: RunWithSteps,
    stepKey: string,
    token: string,
    output: unknown,
  ): Promise<void> {
    const { ready, runCompleted, view } = await this.deps.runs.completeStep(run, stepKey, token, output);
    if (runCompleted) this.deps.metrics.executions.inc({ status: 'completed' });
    // No view: the claim was lost (or the run ended) before the output was recorded; nothing changed to announce.
    if (!view) return;
    this.deps.dispatcher.publish(run.company_id, view);
    await this.deps.dispatcher.enqueue(run.id, run.steps, ready);
  }

  /** A step failed for good: the run fails, steps not started are cancelled, running ones are stopped. */
  private async failStep(run: RunWithSteps, stepKey: string, token: string, reason: string): Promise<void> {
    if (await this.deps.runs.failStep(run.id, stepKey, token, reason)) {
      this.deps.metrics.executions.inc({ status: 'failed' });
      await this.deps.dispatcher.cancelRunning(run.id);
    }
    await this.deps.dispatcher.publishRun(run.company_id, run.id);
  }

  private async settleCancelled(runId: string, stepKey: string, token: string): Promise<void> {
    const companyId = await this.deps.runs.settleStep(runId, stepKey, token, 'CANCELLED', 'cancelled');
    if (companyId) await this.deps.dispatcher.publishRun(companyId, runId);
  }
}
