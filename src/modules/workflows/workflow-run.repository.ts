import type { DataSource, EntityManager } from 'typeorm';
import { NotFoundError } from '../../platform/errors/app-error';
import {
  dependentsOf,
  WorkflowPartitioner,
  type StepDefinition,
  type StepKind,
  type WorkflowQueue,
} from './workflow.model';
import type { RunStatus, RunView, StepStatus, WorkflowView } from './workflow.views';

export interface WorkflowRow {
  id: string;
  company_id: string;
  owner_id: string;
  name: string;
  steps: StepDefinition[];
  created_at: Date;
}

export interface RunRow {
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

/** A run with its workflow's step definitions, as the processor works on it. */
export type RunWithSteps = RunRow & { steps: StepDefinition[] };

export interface StepRow {
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

/** A step run as a new run records it: roots start QUEUED, the others PENDING. */
export interface PlannedStepRow {
  key: string;
  kind: StepKind;
  queue: WorkflowQueue;
  root: boolean;
}

/** What a claimed step runs with. */
export interface ClaimedStep {
  attempts: number;
  queue: WorkflowQueue;
  kind: StepKind;
}

/** A step this worker claimed: the claim, the run it belongs to, and the run's step rows right after the claim. */
export interface StepClaim {
  claimed: ClaimedStep;
  run: RunWithSteps;
  rows: StepRow[];
}

/** What recording a completed step led to. */
export interface StepCompletion {
  /** Dependents now ready to queue (empty when the claim was lost or the run no longer runs). */
  ready: string[];
  /** The run completed with this step. */
  runCompleted: boolean;
  /** The run as this transition left it; absent when nothing was recorded. */
  view?: RunView;
}

/** The SQL of workflows, runs and step runs: every state transition is one statement or one transaction here. */
export class WorkflowRunRepository {
  constructor(private readonly dataSource: DataSource) {}

  async insertWorkflow(
    owner: { companyId: string; userId: string },
    name: string,
    steps: readonly StepDefinition[],
  ): Promise<WorkflowRow> {
    const [row] = await this.dataSource.query<WorkflowRow[]>(
      `INSERT INTO workflows (company_id, owner_id, name, steps) VALUES ($1, $2, $3, $4) RETURNING *`,
      [owner.companyId, owner.userId, name, JSON.stringify(steps)],
    );
    return row!;
  }

  async workflows(companyId: string): Promise<WorkflowRow[]> {
    return this.dataSource.query<WorkflowRow[]>(
      'SELECT * FROM workflows WHERE company_id = $1 ORDER BY created_at DESC, id LIMIT 200',
      [companyId],
    );
  }

  async workflow(companyId: string, id: string): Promise<WorkflowRow | undefined> {
    const [row] = await this.dataSource.query<WorkflowRow[]>(
      'SELECT * FROM workflows WHERE id = $1 AND company_id = $2',
      [id, companyId],
    );
    return row;
  }

  async run(companyId: string, runId: string): Promise<RunRow | undefined> {
    const [row] = await this.dataSource.query<RunRow[]>(
      'SELECT * FROM workflow_runs WHERE id = $1 AND company_id = $2',
      [runId, companyId],
    );
    return row;
  }

  /** The run and its step runs in one transaction; returns the run's id. */
  async insertRun(
    workflowId: string,
    owner: { companyId: string; userId: string },
    inputJson: string,
    steps: readonly PlannedStepRow[],
  ): Promise<string> {
    return this.dataSource.transaction(async (manager) => {
      const [run] = await manager.query<Array<{ id: string }>>(
        `INSERT INTO workflow_runs (workflow_id, company_id, user_id, input) VALUES ($1, $2, $3, $4) RETURNING id`,
        [workflowId, owner.companyId, owner.userId, inputJson],
      );
      await manager.query(
        `INSERT INTO workflow_step_runs (run_id, step_key, kind, queue, status, queued_at)
         SELECT $1, s.key, s.kind, s.queue, CASE WHEN s.root THEN 'QUEUED' ELSE 'PENDING' END,
                CASE WHEN s.root THEN now() END
           FROM jsonb_to_recordset($2::jsonb) AS s(key text, kind text, queue text, root boolean)`,
        [run!.id, JSON.stringify(steps)],
      );
      return run!.id;
    });
  }

  /** Cancels the run if it still runs; false when it had already ended. */
  async cancelRun(runId: string): Promise<boolean> {
    return this.dataSource.transaction(async (manager) => {
      const [locked] = await manager.query<RunRow[]>('SELECT * FROM workflow_runs WHERE id = $1 FOR UPDATE', [
        runId,
      ]);
      if (locked!.status !== 'RUNNING') return false;
      await this.finishRun(manager, runId, 'CANCELLED', 'cancelled by a user');
      return true;
    });
  }

  /**
   * Claims a step for a worker under `token` with a lease of `leaseMs`: a QUEUED step, or a RUNNING one whose lease
   * lapsed. Answers the run with its steps and every step row as the claim left them (the step's inputs and the
   * view to announce), in two statements. Undefined when the step is finished, cancelled, or running under someone
   * else's live claim.
   */
  async claimStep(
    runId: string,
    stepKey: string,
    token: string,
    leaseMs: number,
  ): Promise<StepClaim | undefined> {
    const [run] = await this.dataSource.query<Array<RunWithSteps & { claimed: ClaimedStep }>>(
      `WITH claimed AS (
         UPDATE workflow_step_runs s
            SET status = 'RUNNING', attempts = s.attempts + 1, started_at = COALESCE(s.started_at, now()),
                error = NULL, claim_token = $3,
                lease_until = now() + make_interval(secs => $4::double precision / 1000)
           FROM workflow_runs r
          WHERE s.run_id = $1 AND s.step_key = $2 AND r.id = s.run_id AND r.status = 'RUNNING'
            AND (s.status = 'QUEUED' OR (s.status = 'RUNNING' AND s.lease_until < now()))
          RETURNING s.run_id, s.attempts, s.queue, s.kind)
       SELECT r.*, w.steps, json_build_object('attempts', c.attempts, 'queue', c.queue, 'kind', c.kind) AS claimed
         FROM claimed c JOIN workflow_runs r ON r.id = c.run_id JOIN workflows w ON w.id = r.workflow_id`,
      [runId, stepKey, token, leaseMs],
    );
    if (!run) return undefined;
    const { claimed, ...rest } = run;
    const rows = await this.dataSource.query<StepRow[]>(
      'SELECT * FROM workflow_step_runs WHERE run_id = $1',
      [runId],
    );
    return { claimed, run: rest, rows };
  }

  async renewLease(runId: string, stepKey: string, token: string, leaseMs: number): Promise<void> {
    await this.dataSource.query(
      `UPDATE workflow_step_runs SET lease_until = now() + make_interval(secs => $4::double precision / 1000)
      WHERE run_id = $1 AND step_key = $2 AND claim_token = $3`,
      [runId, stepKey, token, leaseMs],
    );
  }

  /**
   * Back to QUEUED for the queue's retry, unless the run ended meanwhile (then it will never run). Answers the status
   * the step got, or undefined when the claim was lost.
   */
  async releaseForRetry(
    runId: string,
    stepKey: string,
    token: string,
    error: string,
  ): Promise<StepStatus | undefined> {
    const [[retry]] = await this.dataSource.query<[Array<{ status: StepStatus }>, number]>(
      `UPDATE workflow_step_runs s
          SET status = CASE WHEN r.status = 'RUNNING' THEN 'QUEUED' ELSE 'CANCELLED' END, error = $4,
              claim_token = NULL, lease_until = NULL,
              finished_at = CASE WHEN r.status = 'RUNNING' THEN NULL ELSE now() END
         FROM workflow_runs r
        WHERE s.run_id = $1 AND s.step_key = $2 AND s.claim_token = $3 AND r.id = s.run_id
        RETURNING s.status`,
      [runId, stepKey, token, error],
    );
    return retry?.status;
  }

  /**
   * Records the output; finds each dependent whose dependencies are now all complete; ends the run when all are.
   * The run's row lock orders the completions of a run (two steps finishing together each see the other's result);
   * under it, recording the output also reads the run's steps, so a completion is four statements in a transaction
   * and the view is built from what they answered.
   */
  async completeStep(
    run: RunWithSteps,
    stepKey: string,
    token: string,
    output: unknown,
  ): Promise<StepCompletion> {
    return this.dataSource.transaction(async (manager): Promise<StepCompletion> => {
      const [locked] = await manager.query<RunRow[]>(
        'SELECT status FROM workflow_runs WHERE id = $1 FOR UPDATE',
        [run.id],
      );
      // The updated row (RETURNING) and the others as committed: one statement sees its own update only there.
      const rows = await manager.query<StepRow[]>(
        `WITH recorded AS (
           UPDATE workflow_step_runs SET status = 'COMPLETED', output = $4, finished_at = now(), error = NULL,
                  claim_token = NULL, lease_until = NULL
            WHERE run_id = $1 AND step_key = $2 AND claim_token = $3
            RETURNING *)
         SELECT * FROM recorded
         UNION ALL SELECT * FROM workflow_step_runs WHERE run_id = $1 AND step_key <> $2`,
        [run.id, stepKey, token, JSON.stringify(output ?? null)],
      );
      const status = new Map(rows.map((row) => [row.step_key, row.status]));
      // Lost the claim (the lease lapsed and another worker took the step): its outcome is that worker's to record.
      if (status.get(stepKey) !== 'COMPLETED' || locked!.status !== 'RUNNING')
        return { ready: [], runCompleted: false };
      const ready = dependentsOf(run.steps, stepKey)
        .filter((dependent) => status.get(dependent.key) === 'PENDING')
        .filter((dependent) => dependent.dependsOn.every((key) => status.get(key) === 'COMPLETED'))
        .map((dependent) => dependent.key);
      const byKey = new Map(rows.map((row) => [row.step_key, row]));
      if (ready.length > 0) {
        const [queued] = await manager.query<[Array<{ step_key: string; queued_at: Date }>, number]>(
          `UPDATE workflow_step_runs SET status = 'QUEUED', queued_at = now()
            WHERE run_id = $1 AND step_key = ANY($2::text[]) AND status = 'PENDING' RETURNING step_key, queued_at`,
          [run.id, ready],
        );
        for (const row of queued)
          byKey.set(row.step_key, {
            ...byKey.get(row.step_key)!,
            status: 'QUEUED',
            queued_at: row.queued_at,
          });
      }
      const runCompleted = [...status.values()].every((value) => value === 'COMPLETED');
      let finished: Pick<RunRow, 'status' | 'error' | 'finished_at'> = {
        status: 'RUNNING',
        error: null,
        finished_at: null,
      };
      if (runCompleted) finished = (await this.finishRun(manager, run.id, 'COMPLETED', null))!;
      // The run as this transition left it (built before the next steps can start): every transition is heard.
      return { ready, runCompleted, view: toRunView({ ...run, ...finished }, [...byKey.values()]) };
    });
  }

  /** The step failed for good: the run fails and steps not started are cancelled. False when the claim was lost. */
  async failStep(runId: string, stepKey: string, token: string, reason: string): Promise<boolean> {
    return this.dataSource.transaction(async (manager) => {
      const [locked] = await manager.query<RunRow[]>(
        'SELECT status FROM workflow_runs WHERE id = $1 FOR UPDATE',
        [runId],
      );
      const [, recorded] = await manager.query<[unknown, number]>(
        `UPDATE workflow_step_runs SET status = 'FAILED', error = $4, finished_at = now(), claim_token = NULL,
                lease_until = NULL
          WHERE run_id = $1 AND step_key = $2 AND claim_token = $3`,
        [runId, stepKey, token, reason.slice(0, 2000)],
      );
      if (recorded === 0 || locked!.status !== 'RUNNING') return false;
      await this.finishRun(manager, runId, 'FAILED', `step ${stepKey} failed: ${reason}`.slice(0, 2000));
      return true;
    });
  }

  /** Ends a claimed step with `status` (e.g. CANCELLED); answers the run's company, undefined if the run is gone. */
  async settleStep(
    runId: string,
    stepKey: string,
    token: string,
    status: StepStatus,
    error: string | null,
  ): Promise<string | undefined> {
    const [run] = await this.dataSource.query<Array<{ company_id: string }>>(
      `WITH settled AS (
         UPDATE workflow_step_runs SET status = $4, error = $5, finished_at = now(), claim_token = NULL, lease_until = NULL
          WHERE run_id = $1 AND step_key = $2 AND claim_token = $3 RETURNING run_id)
       SELECT company_id FROM workflow_runs WHERE id = $1`,
      [runId, stepKey, token, status, error],
    );
    return run?.company_id;
  }

  /**
   * Steps whose job may be gone: QUEUED for longer than `olderThanMs`, or RUNNING with a lease lapsed that long, in
   * runs that still run (at most 1000).
   */
  async strandedSteps(
    olderThanMs: number,
  ): Promise<Array<{ run_id: string; step_key: string; attempts: number; steps: StepDefinition[] }>> {
    return this.dataSource.query(
      `SELECT s.run_id, s.step_key, s.attempts, w.steps FROM workflow_step_runs s
         JOIN workflow_runs r ON r.id = s.run_id JOIN workflows w ON w.id = r.workflow_id
        WHERE r.status = 'RUNNING'
          AND ((s.status = 'QUEUED' AND s.queued_at < now() - make_interval(secs => $1::double precision / 1000))
            OR (s.status = 'RUNNING' AND s.lease_until < now() - make_interval(secs => $1::double precision / 1000)))
        LIMIT 1000`,
      [olderThanMs],
    );
  }

  async runView(companyId: string, runId: string, manager?: EntityManager): Promise<RunView> {
    const db = manager ?? this.dataSource.manager;
    const [run] = await db.query<RunWithSteps[]>(
      `SELECT r.*, w.steps FROM workflow_runs r JOIN workflows w ON w.id = r.workflow_id
        WHERE r.id = $1 AND r.company_id = $2`,
      [runId, companyId],
    );
    if (!run) throw new NotFoundError('WorkflowRun', runId);
    const rows = await db.query<StepRow[]>('SELECT * FROM workflow_step_runs WHERE run_id = $1', [runId]);
    return toRunView(run, rows);
  }

  /** Ends the run; answers what the run row became (undefined when it is gone). */
  private async finishRun(manager: EntityManager, runId: string, status: RunStatus, error: string | null) {
    const [[finished]] = await manager.query<
      [Array<Pick<RunRow, 'status' | 'error' | 'finished_at'>>, number]
    >(
      `UPDATE workflow_runs SET status = $2, error = $3, finished_at = now(), updated_at = now() WHERE id = $1
       RETURNING status, error, finished_at`,
      [runId, status, error],
    );
    if (status !== 'COMPLETED')
      await manager.query(
        `UPDATE workflow_step_runs SET status = 'CANCELLED', finished_at = now()
          WHERE run_id = $1 AND status IN ('PENDING', 'QUEUED')`,
        [runId],
      );
    return finished;
  }
}

/** A run and its step rows as the API shows them (steps in definition order). */
export function toRunView(run: RunWithSteps, rows: readonly StepRow[]): RunView {
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

export function workflowView(row: WorkflowRow): WorkflowView {
  return {
    id: row.id,
    name: row.name,
    ownerId: row.owner_id,
    steps: row.steps,
    plan: WorkflowPartitioner.createExecutionPlan(row.steps),
    createdAt: row.created_at,
  };
}
