import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A platform operator's override of a company's rate limits and cost quotas; a NULL column keeps the deployment's
 * default (RATE_LIMIT_*). One row per company at most; it goes with its company.
 */
export class CompanyRateLimits1765527000000 implements MigrationInterface {
  name = 'CompanyRateLimits1765527000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE company_rate_limits (
        company_id uuid PRIMARY KEY REFERENCES companies (id) ON DELETE CASCADE,
        window_seconds integer CHECK (window_seconds BETWEEN 1 AND 86400),
        user_requests integer CHECK (user_requests > 0),
        company_requests integer CHECK (company_requests > 0),
        user_complexity integer CHECK (user_complexity > 0),
        company_complexity integer CHECK (company_complexity > 0),
        updated_by uuid NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE IF EXISTS company_rate_limits');
  }
}
