import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Who runs a step now, and until when: a claim renewed while the step runs. Another worker may take the step only
 * once the lease has lapsed, and only the holder of the token may record its outcome (so a job delivered twice cannot
 * run a step twice). The index serves the sweep that re-queues steps whose job was lost.
 */
export class WorkflowStepLeases1765000000001 implements MigrationInterface {
  name = 'WorkflowStepLeases1765000000001';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE workflow_step_runs ADD COLUMN claim_token uuid, ADD COLUMN lease_until timestamptz;
      CREATE INDEX workflow_step_runs_waiting_idx ON workflow_step_runs (status, queued_at)
        WHERE status IN ('QUEUED', 'RUNNING');
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      DROP INDEX IF EXISTS workflow_step_runs_waiting_idx;
      ALTER TABLE workflow_step_runs DROP COLUMN IF EXISTS claim_token, DROP COLUMN IF EXISTS lease_until;
    `);
  }
}
