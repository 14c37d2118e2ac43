import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Archived audit months (one row per month, written in the transaction that drops the month's table) and an index
 * whose order serves the audit log's keyset pages, (occurred_at, id) newest first, within a company.
 */
export class AuditArchives1764600000000 implements MigrationInterface {
  name = 'AuditArchives1764600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE audit_archives (
        month date PRIMARY KEY CHECK (extract(day FROM month) = 1),
        partition_name text NOT NULL,
        row_count bigint NOT NULL CHECK (row_count >= 0),
        bytes bigint NOT NULL CHECK (bytes >= 0),
        sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        location text NOT NULL,
        status text NOT NULL CHECK (status IN ('ARCHIVED', 'RESTORED')),
        archived_at timestamptz NOT NULL DEFAULT now(),
        restored_at timestamptz
      );
      CREATE INDEX audit_logs_company_time_id_idx ON audit_logs (company_id, occurred_at, id);
      DROP INDEX audit_logs_company_time_idx;
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE INDEX IF NOT EXISTS audit_logs_company_time_idx ON audit_logs (company_id, occurred_at);
      DROP INDEX IF EXISTS audit_logs_company_time_id_idx;
      DROP TABLE IF EXISTS audit_archives;
    `);
  }
}
