import { createDataSource } from '../../src/platform/db/data-source.factory';
import { preparedStatement } from '../../src/platform/db/prepared-statement';
import { createLogger } from '../../src/platform/logging/logger';

describe('prepared statements through TypeORM', () => {
  // One connection, so the session that prepared the statement is the one asked about it.
  const { dataSource, queryLogger } = createDataSource({
    url: process.env.DATABASE_URL!,
    entities: [],
    migrations: [],
    poolSize: 1,
    logger: createLogger({ level: 'silent', name: 'test' }),
  });
  beforeAll(() => dataSource.initialize());
  afterAll(() => dataSource.destroy());

  it('runs as a named statement, prepared once per connection, and is counted and logged as its SQL', async () => {
    const sql = 'SELECT $1::int + 1 AS n /* prepared-statement test */';
    const before = queryLogger.statementCount;
    for (const value of [1, 2, 3])
      expect(await dataSource.query(preparedStatement(sql), [value])).toEqual([{ n: value + 1 }]);
    expect(queryLogger.statementCount - before).toBe(3);
    const prepared = await dataSource.query<Array<{ name: string; statement: string }>>(
      'SELECT name, statement FROM pg_prepared_statements',
    );
    expect(prepared.filter((row) => row.statement === sql)).toEqual([
      { name: expect.stringMatching(/^crm_[0-9a-f]{24}$/), statement: sql },
    ]);
  });

  it('reads as its SQL text wherever TypeORM and the metrics treat it as a string', () => {
    const statement = preparedStatement('  SELECT 1 FROM deals');
    expect(statement.trimStart()).toBe('SELECT 1 FROM deals');
    expect(/\bfrom\s+(\w+)/i.exec(statement)?.[1]).toBe('deals');
    expect(`${statement}`).toBe('  SELECT 1 FROM deals');
    expect(statement.slice(2, 8)).toBe('SELECT');
  });
});
