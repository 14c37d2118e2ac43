import type { MigrationInterface, QueryRunner } from 'typeorm';

const TABLES = { leads: 'LEAD', deals: 'DEAL', accounts: 'ACCOUNT' } as const;

/**
 * The text a record is found by, as the GIN indexes below were built on it: a literal snapshot (a migration never
 * imports live code). The search slice spells the same expression in `src/modules/search/search.document.ts`, and
 * `test/integration/search-document.test.ts` checks the two agree.
 */
const SEARCH_DOCUMENT: Readonly<Record<keyof typeof TABLES, string>> = {
  leads:
    "to_tsvector('simple'::regconfig, coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || " +
    "translate(coalesce(email, ''), '@.', '  ') || ' ' || coalesce(company_name, '') || ' ' || coalesce(description, ''))",
  deals: "to_tsvector('simple'::regconfig, coalesce(name, ''))",
  accounts: "to_tsvector('simple'::regconfig, coalesce(name, ''))",
};

/**
 * Search: full-text indexes, and a per-(company, record type) data version with a log of the records each version
 * changed. Statement triggers bump the version in the writing transaction, under the version row's lock, so versions
 * follow commit order: a reader that sees version V sees every change up to V, and a process that holds a counting
 * index at version A catches up by re-reading the records logged after A.
 */
export class Search1765200000000 implements MigrationInterface {
  name = 'Search1765200000000';
  /** The GIN indexes are built CONCURRENTLY (writes go on meanwhile), which cannot run inside a transaction. */
  transaction = false;

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS search_versions (
        company_id uuid NOT NULL,
        record_type text NOT NULL,
        version bigint NOT NULL DEFAULT 0,
        pruned_through bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (company_id, record_type)
      )`);
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS search_changes (
        company_id uuid NOT NULL,
        record_type text NOT NULL,
        version bigint NOT NULL,
        record_id uuid NOT NULL,
        changed_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(
      'CREATE INDEX IF NOT EXISTS search_changes_version_idx ON search_changes (company_id, record_type, version)',
    );
    await queryRunner.query(
      'CREATE INDEX IF NOT EXISTS search_changes_changed_at_idx ON search_changes (changed_at)',
    );
    // Versions are bumped in company order, so statements that touch several companies cannot deadlock.
    const logTouched = (touched: string) => `
          WITH touched AS (${touched}),
          bumped AS (
            INSERT INTO search_versions AS v (company_id, record_type, version)
            SELECT DISTINCT company_id, TG_ARGV[0], 1 FROM touched ORDER BY 1
            ON CONFLICT (company_id, record_type) DO UPDATE SET version = v.version + 1
            RETURNING company_id, version)
          INSERT INTO search_changes (company_id, record_type, version, record_id)
          SELECT t.company_id, TG_ARGV[0], b.version, t.id FROM touched t JOIN bumped b USING (company_id);`;
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION search_log_changes() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'INSERT' THEN${logTouched('SELECT company_id, id FROM new_rows')}
        ELSIF TG_OP = 'UPDATE' THEN${logTouched('SELECT company_id, id FROM new_rows UNION SELECT company_id, id FROM old_rows')}
        ELSE${logTouched('SELECT company_id, id FROM old_rows')}
        END IF;
        RETURN NULL;
      END $$`);
    // TRUNCATE names no rows: every company's index of the type is marked past the log, so it rebuilds.
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION search_log_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO search_versions AS v (company_id, record_type, version, pruned_through)
        SELECT id, TG_ARGV[0], 1, 1 FROM companies ORDER BY id
        ON CONFLICT (company_id, record_type)
          DO UPDATE SET version = v.version + 1, pruned_through = v.version + 1;
        RETURN NULL;
      END $$`);
    for (const [table, type] of Object.entries(TABLES)) {
      await queryRunner.query(`DROP TRIGGER IF EXISTS ${table}_search_truncate ON ${table}`);
      await queryRunner.query(
        `CREATE TRIGGER ${table}_search_truncate AFTER TRUNCATE ON ${table}
           FOR EACH STATEMENT EXECUTE FUNCTION search_log_truncate('${type}')`,
      );
      for (const [event, referencing] of [
        ['INSERT', 'NEW TABLE AS new_rows'],
        ['UPDATE', 'OLD TABLE AS old_rows NEW TABLE AS new_rows'],
        ['DELETE', 'OLD TABLE AS old_rows'],
      ] as const) {
        const trigger = `${table}_search_${event.toLowerCase()}`;
        await queryRunner.query(`DROP TRIGGER IF EXISTS ${trigger} ON ${table}`);
        await queryRunner.query(
          `CREATE TRIGGER ${trigger} AFTER ${event} ON ${table} REFERENCING ${referencing}
             FOR EACH STATEMENT EXECUTE FUNCTION search_log_changes('${type}')`,
        );
      }
      await queryRunner.query(
        `CREATE INDEX CONCURRENTLY IF NOT EXISTS ${table}_search_document_idx ON ${table}
           USING gin (${SEARCH_DOCUMENT[table as keyof typeof TABLES]})`,
      );
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of Object.keys(TABLES)) {
      await queryRunner.query(`DROP INDEX IF EXISTS ${table}_search_document_idx`);
      for (const event of ['insert', 'update', 'delete', 'truncate'])
        await queryRunner.query(`DROP TRIGGER IF EXISTS ${table}_search_${event} ON ${table}`);
    }
    await queryRunner.query('DROP FUNCTION IF EXISTS search_log_changes()');
    await queryRunner.query('DROP FUNCTION IF EXISTS search_log_truncate()');
    await queryRunner.query('DROP TABLE IF EXISTS search_changes');
    await queryRunner.query('DROP TABLE IF EXISTS search_versions');
  }
}
