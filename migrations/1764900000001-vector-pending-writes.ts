import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Writes on their way to an index in another system (OpenSearch): recorded in the write's own transaction, removed
 * once the index confirmed them (or they were marked stale). A row left behind means the process died in between;
 * after a grace period the company counts as stale on that backend and the repair job rebuilds it.
 */
export class VectorPendingWrites1764900000001 implements MigrationInterface {
  name = 'VectorPendingWrites1764900000001';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE vector_pending_writes (
        backend text NOT NULL,
        company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
        seq bigint NOT NULL,
        since timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (backend, company_id, seq)
      );
      CREATE INDEX vector_pending_writes_since_idx ON vector_pending_writes (since);
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE IF EXISTS vector_pending_writes');
  }
}
