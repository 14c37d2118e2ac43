import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Lookups the visibility compiler makes: rules by target, shares by grantee and by record. */
export class SharingIndexes1764400000000 implements MigrationInterface {
  name = 'SharingIndexes1764400000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE INDEX sharing_rules_target_idx ON sharing_rules (company_id, object_type, target_type, target_id);
      CREATE INDEX record_shares_record_idx ON record_shares (company_id, object_type, record_id);
      CREATE INDEX group_members_company_group_idx ON group_members (company_id, group_id);
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      DROP INDEX IF EXISTS group_members_company_group_idx;
      DROP INDEX IF EXISTS record_shares_record_idx;
      DROP INDEX IF EXISTS sharing_rules_target_idx;
    `);
  }
}
