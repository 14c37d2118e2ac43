import { Client } from 'pg';
import { searchDocumentSql, type SearchTable } from '../../src/modules/search/search.document';

/**
 * The search document the code queries by is the expression the migration's GIN index was built on: otherwise the
 * index silently stops serving text search. The migration holds a literal copy (it never imports live code), so this
 * is what keeps the two from drifting apart. Postgres normalises both: the code's expression is indexed on a scratch
 * copy of the table and the two definitions are compared as `pg_get_indexdef` prints them.
 */
describe('search document', () => {
  const client = new Client({ connectionString: process.env.TEST_DATABASE_URL });
  beforeAll(() => client.connect());
  afterAll(() => client.end());

  /** The part of an index definition after the table name: method and expression. */
  const usingPart = (indexdef: string) => indexdef.replace(/^.* ON \S+ /, '');

  it.each<SearchTable>(['leads', 'deals', 'accounts'])(
    "the code's %s document is the one the migration's GIN index is built on",
    async (table) => {
      const migrated = await client.query<{ def: string }>(
        `SELECT pg_get_indexdef(c.oid) AS def FROM pg_class c WHERE c.relname = $1 AND c.relkind = 'i'`,
        [`${table}_search_document_idx`],
      );
      expect(migrated.rows).toHaveLength(1);
      await client.query('BEGIN');
      try {
        await client.query(`CREATE TEMP TABLE scratch_${table} (LIKE ${table}) ON COMMIT DROP`);
        await client.query(
          `CREATE INDEX scratch_${table}_document_idx ON scratch_${table} USING gin (${searchDocumentSql(table)})`,
        );
        const code = await client.query<{ def: string }>(`SELECT pg_get_indexdef($1::regclass) AS def`, [
          `scratch_${table}_document_idx`,
        ]);
        expect(usingPart(code.rows[0]!.def)).toBe(usingPart(migrated.rows[0]!.def));
        // The code's aliased form (what queries spell) is the same expression over `r`.
        expect(searchDocumentSql(table, 'r')).toBe(
          searchDocumentSql(table).replace(/coalesce\(/g, 'coalesce(r.'),
        );
      } finally {
        await client.query('ROLLBACK');
      }
    },
  );
});
