import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Export jobs: what a user asked for, where the worker is, and the finished file's size, checksum and key. */
export class ExportJobs1764700000000 implements MigrationInterface {
  name = 'ExportJobs1764700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE export_jobs (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
        owner_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        entity_type text NOT NULL CHECK (entity_type IN ('LEAD', 'DEAL', 'ACCOUNT')),
        format text NOT NULL CHECK (format IN ('CSV', 'JSON', 'NDJSON', 'XLSX')),
        compression text NOT NULL CHECK (compression IN ('GZIP', 'NONE')),
        fields text[] NOT NULL,
        filters jsonb NOT NULL DEFAULT '[]',
        sort jsonb NOT NULL DEFAULT '[]',
        file_name text NOT NULL,
        status text NOT NULL DEFAULT 'QUEUED'
          CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
        progress real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
        rows_exported bigint NOT NULL DEFAULT 0,
        total_rows bigint,
        bytes_written bigint NOT NULL DEFAULT 0,
        sha256 text,
        storage_key text,
        error text,
        attempts int NOT NULL DEFAULT 0,
        attempt_token uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        finished_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX export_jobs_owner_idx ON export_jobs (company_id, owner_id, created_at DESC, id DESC);
      CREATE INDEX export_jobs_active_idx ON export_jobs (owner_id) WHERE status IN ('QUEUED', 'RUNNING');
      CREATE INDEX export_jobs_created_idx ON export_jobs (created_at);
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE IF EXISTS export_jobs');
  }
}
