import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Every allow-listed sort of a record list at the time of this migration, per table (a test checks new ones). */
const SORT_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  leads: ['created_at', 'updated_at', 'last_name', 'status', 'score', 'estimated_value'],
  deals: ['created_at', 'updated_at', 'name', 'stage', 'amount', 'close_date'],
  accounts: ['created_at', 'updated_at', 'name', 'annual_revenue', 'employees'],
};

/** The indexes these replace: same leading columns, without the id tie-breaker. */
const SUPERSEDED = [
  ['leads_company_created_idx', 'leads', 'created_at'],
  ['leads_company_status_idx', 'leads', 'status'],
  ['deals_company_created_idx', 'deals', 'created_at'],
  ['deals_company_stage_idx', 'deals', 'stage'],
  ['accounts_company_created_idx', 'accounts', 'created_at'],
] as const;

/**
 * A page of a company's records in any allow-listed order (id breaking ties) is read from an index in order, instead
 * of sorting every record of the company for each request: one (company_id, column, id) index per sort.
 */
export class RecordSortIndexes1764800000000 implements MigrationInterface {
  name = 'RecordSortIndexes1764800000000';
  /** Built CONCURRENTLY (writes go on meanwhile), which cannot run inside a transaction. */
  transaction = false;

  async up(queryRunner: QueryRunner): Promise<void> {
    for (const [table, columns] of Object.entries(SORT_COLUMNS))
      for (const column of columns)
        await queryRunner.query(
          `CREATE INDEX CONCURRENTLY IF NOT EXISTS ${table}_company_${column}_id_idx ON ${table} (company_id, ${column}, id)`,
        );
    for (const [index] of SUPERSEDED) await queryRunner.query(`DROP INDEX CONCURRENTLY IF EXISTS ${index}`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const [index, table, column] of SUPERSEDED)
      await queryRunner.query(`CREATE INDEX IF NOT EXISTS ${index} ON ${table} (company_id, ${column})`);
    for (const [table, columns] of Object.entries(SORT_COLUMNS))
      for (const column of columns)
        await queryRunner.query(`DROP INDEX IF EXISTS ${table}_company_${column}_id_idx`);
  }
}
