import type { MigrationInterface, QueryRunner } from 'typeorm';
import { dropRollupSchemaSql, rollupSchemaSql } from '../src/modules/reports/report.rollups';

/**
 * Report rollups (count, sum, min, max by company, owner and a preset's dimensions), filled from the records already
 * there and kept exact by statement triggers on leads, deals and accounts. `report_rollup_state` records each
 * company's last rebuild: how many rows a rollup holds against its records, which decides whether it is worth reading.
 */
export class ReportRollups1765100000000 implements MigrationInterface {
  name = 'ReportRollups1765100000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    for (const statement of rollupSchemaSql()) await queryRunner.query(statement);
    await queryRunner.query(`
      CREATE TABLE report_rollup_state (
        company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
        rollup text NOT NULL,
        rollup_rows bigint NOT NULL,
        record_rows bigint NOT NULL,
        built_at timestamptz NOT NULL,
        build_ms integer NOT NULL,
        PRIMARY KEY (company_id, rollup)
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE IF EXISTS report_rollup_state');
    for (const statement of dropRollupSchemaSql()) await queryRunner.query(statement);
  }
}
