import { Client } from 'pg';
import { fieldsFor, RECORD_TABLE, RecordType } from '../../src/modules/kernel';

/** Every allow-listed sort of a company's records has an index that returns a page in that order. */
describe('record sort indexes', () => {
  const client = new Client({ connectionString: process.env.TEST_DATABASE_URL });
  beforeAll(() => client.connect());
  afterAll(() => client.end());

  const sorts = Object.values(RecordType).flatMap((type) =>
    Object.values(fieldsFor(type, 'sort')).map((spec) => [type, RECORD_TABLE[type], spec.column] as const),
  );

  it.each(sorts)('%s sorted by %s.%s has a (company_id, column, id) index', async (_type, table, column) => {
    const { rows } = await client.query<{ indexdef: string }>(
      `SELECT indexdef FROM pg_indexes WHERE tablename = $1`,
      [table],
    );
    expect(rows.map((row) => row.indexdef)).toContainEqual(
      expect.stringContaining(`(company_id, ${column}, id)`),
    );
  });

  it.each([
    ['deals', 'amount', 'DESC'],
    ['leads', 'score', 'ASC'],
    ['accounts', 'name', 'DESC'],
  ])(
    'a page of %s by %s %s is read in index order, without a sort (EXPLAIN)',
    async (table, column, direction) => {
      await client.query('BEGIN');
      try {
        // Tiny test tables would be scanned whole; what matters is that an index serves the company's order at all.
        // (With a selective owner filter the planner may rightly prefer the owner index and sort the few rows.)
        await client.query('SET LOCAL enable_seqscan = off');
        await client.query('SET LOCAL enable_bitmapscan = off');
        // With the table's statistics as other test files left them, an index on company alone plus a sort of
        // "one row" can look cheaper; without sorts the question is only whether an index gives the order.
        await client.query('SET LOCAL enable_sort = off');
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN SELECT * FROM ${table} r
          WHERE r.company_id = '00000000-0000-0000-0000-000000000001'
          ORDER BY r.${column} ${direction}, r.id ${direction} LIMIT 100 OFFSET 200`,
        );
        const plan = rows.map((row) => row['QUERY PLAN']).join('\n');
        expect(plan).toContain(`${table}_company_${column}_id_idx`);
        expect(plan).not.toMatch(/\bSort\b/);
      } finally {
        await client.query('ROLLBACK');
      }
    },
  );
});
