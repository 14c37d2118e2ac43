import { Client } from 'pg';
import { filtersToSql, RecordType, validateFilters, type RecordFilter } from '../../src/modules/kernel';

/** The shared filter language, compiled and run on Postgres against rows whose expected matches are written out. */
describe('record filter language', () => {
  const client = new Client({ connectionString: process.env.TEST_DATABASE_URL });
  const ROWS = [
    { id: 1, last_name: 'Smith', score: 10, status: 'NEW', email: null, created_at: '2026-01-01T00:00:00Z' },
    {
      id: 2,
      last_name: 'smithers',
      score: 50,
      status: 'CONTACTED',
      email: 'a@b.c',
      created_at: '2026-02-01T00:00:00Z',
    },
    {
      id: 3,
      last_name: '50%_off\\deal',
      score: 90,
      status: 'QUALIFIED',
      email: 'x@y.z',
      created_at: '2026-03-01T00:00:00Z',
    },
    { id: 4, last_name: 'Jones', score: 50, status: 'NEW', email: null, created_at: '2026-03-15T12:00:00Z' },
  ];

  beforeAll(async () => {
    await client.connect();
    await client.query(
      'CREATE TEMP TABLE r (id int, last_name text, score int, status text, email text, created_at timestamptz)',
    );
    for (const row of ROWS)
      await client.query('INSERT INTO r VALUES ($1, $2, $3, $4, $5, $6)', Object.values(row));
  });
  afterAll(() => client.end());

  async function matching(filters: RecordFilter[]): Promise<number[]> {
    validateFilters(RecordType.LEAD, filters);
    const params: unknown[] = [];
    const where = filtersToSql(RecordType.LEAD, filters, 'r', (value) => `$${params.push(value)}`);
    const { rows } = await client.query<{ id: number }>(
      `SELECT id FROM r WHERE ${where} ORDER BY id`,
      params,
    );
    return rows.map((row) => row.id);
  }

  it.each<[string, RecordFilter[], number[]]>([
    ['EQ on an enum', [{ field: 'status', op: 'EQ', value: 'NEW' }], [1, 4]],
    ['NE keeps NULL-safe semantics', [{ field: 'email', op: 'NE', value: 'a@b.c' }], [1, 3, 4]],
    ['IN', [{ field: 'status', op: 'IN', values: ['CONTACTED', 'QUALIFIED'] }], [2, 3]],
    ['RANGE inclusive', [{ field: 'score', op: 'RANGE', from: 10, to: 50 }], [1, 2, 4]],
    [
      'GTE and LTE together',
      [
        { field: 'score', op: 'GTE', value: 50 },
        { field: 'score', op: 'LTE', value: 50 },
      ],
      [2, 4],
    ],
    ['PREFIX is case-insensitive', [{ field: 'lastName', op: 'PREFIX', value: 'SMITH' }], [1, 2]],
    ['PREFIX matches % _ and \\ literally', [{ field: 'lastName', op: 'PREFIX', value: '50%_off\\' }], [3]],
    ['PREFIX % is no wildcard', [{ field: 'lastName', op: 'PREFIX', value: '%' }], []],
    ['IS_NULL true', [{ field: 'email', op: 'IS_NULL', value: true }], [1, 4]],
    ['IS_NULL false', [{ field: 'email', op: 'IS_NULL', value: false }], [2, 3]],
    [
      'a timestamp RANGE',
      [{ field: 'createdAt', op: 'RANGE', from: '2026-02-01', to: '2026-03-01T00:00:00Z' }],
      [2, 3],
    ],
    ['no filters', [], [1, 2, 3, 4]],
    ['a zone-less instant is UTC', [{ field: 'createdAt', op: 'GTE', value: '2026-03-15T12:00:00' }], [4]],
  ])('%s', async (_name, filters, expected) => {
    expect(await matching(filters)).toEqual(expected);
  });

  it.each<[RecordFilter, string]>([
    [{ field: 'nope', op: 'EQ', value: 1 }, 'input.filters[0].field must be one of'],
    [{ field: 'description', op: 'EQ', value: 'x' }, 'input.filters[0].field must be one of'],
    [
      { field: 'status', op: 'PREFIX', value: 'N' },
      'input.filters[0].op must be one of EQ, NE, IN, IS_NULL for status',
    ],
    [{ field: 'score', op: 'EQ', value: '10' }, 'input.filters[0].value must be an integer'],
    [{ field: 'score', op: 'RANGE' }, 'input.filters[0].from or to must be given for RANGE'],
    [
      { field: 'score', op: 'IN', values: [] },
      'input.filters[0].values must be a list of 1 to 100 values for IN',
    ],
    [
      { field: 'email', op: 'IS_NULL', value: 'yes' },
      'input.filters[0].value must be true or false for IS_NULL',
    ],
    [{ field: 'createdAt', op: 'RANGE', from: '2026-02-30' }, 'input.filters[0].from must be a date'],
    [{ field: 'createdAt', op: 'GTE', value: '2026-01-01T25:00' }, 'input.filters[0].value must be a date'],
  ])('rejects %j naming the field and the rule', (filter, message) => {
    expect(() => validateFilters(RecordType.LEAD, [filter])).toThrow(message);
  });
});
