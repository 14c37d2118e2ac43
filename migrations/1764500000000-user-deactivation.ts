import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Users can be deactivated: their tokens stop working at once; their records and audit history stay. */
export class UserDeactivation1764500000000 implements MigrationInterface {
  name = 'UserDeactivation1764500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE users ADD COLUMN deactivated_at timestamptz');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE users DROP COLUMN IF EXISTS deactivated_at');
  }
}
