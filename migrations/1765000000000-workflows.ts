import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Workflows (a company's DAG definitions), their runs, and one row per step of a run: the state the orchestrator
 * reads and writes, so a run survives any process restart (queues only carry "run this step now").
 */
export class Workflows1765000000000 implements MigrationInterface {
  name = 'Workflows1765000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE workflows (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
        owner_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name text NOT NULL,
        steps jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX workflows_company_idx ON workflows (company_id, created_at DESC);
      CREATE TABLE workflow_runs (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        workflow_id uuid NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
        company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        status text NOT NULL DEFAULT 'RUNNING' CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
        input jsonb NOT NULL DEFAULT '{}',
        error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX workflow_runs_workflow_idx ON workflow_runs (workflow_id, created_at DESC);
      CREATE INDEX workflow_runs_active_idx ON workflow_runs (updated_at) WHERE status = 'RUNNING';
      CREATE TABLE workflow_step_runs (
        run_id uuid NOT NULL REFERENCES workflow_runs(id) ON DELETE CASCADE,
        step_key text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('IO', 'CPU', 'MIXED')),
        queue text NOT NULL,
        status text NOT NULL DEFAULT 'PENDING'
          CHECK (status IN ('PENDING', 'QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
        attempts int NOT NULL DEFAULT 0,
        queued_at timestamptz,
        started_at timestamptz,
        finished_at timestamptz,
        output jsonb,
        error text,
        PRIMARY KEY (run_id, step_key)
      );
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE IF EXISTS workflow_step_runs, workflow_runs, workflows');
  }
}
