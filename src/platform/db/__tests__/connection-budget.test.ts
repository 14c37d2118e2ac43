import {
  ConnectionBudget,
  ConnectionBudgetError,
  planConnections,
  type PoolClaim,
} from '../connection-budget';

/** Today's pools and their default sizes, as the modules declare them. */
const DEFAULT_CLAIMS: PoolClaim[] = [
  { name: 'main', weight: 10, min: 2, setting: 'DATABASE_POOL_SIZE' },
  { name: 'search pool', weight: 6, setting: 'SEARCH_DB_POOL_SIZE' },
  { name: 'search build pool', weight: 1 },
  { name: 'report pool', weight: 4, setting: 'REPORT_DB_POOL_SIZE' },
  { name: 'report rollup pool', weight: 4, setting: 'REPORT_DB_POOL_SIZE' },
  { name: 'export pool', weight: 2, min: 3, setting: 'EXPORT_CONCURRENCY + 1' },
];

const total = (sizes: Map<string, number>) => [...sizes.values()].reduce((sum, size) => sum + size, 0);
const plan = (max: number, claims: PoolClaim[] = DEFAULT_CLAIMS) =>
  planConnections(max, claims, 'DATABASE_MAX_CONNECTIONS');

describe('the connection budget', () => {
  it('scales the default sizes down in proportion to fit, never below a minimum, and spends the whole budget', () => {
    expect(Object.fromEntries(plan(16))).toEqual({
      main: 5,
      'search pool': 3,
      'search build pool': 1,
      'report pool': 2,
      'report rollup pool': 2,
      'export pool': 3,
    });
    for (const max of [9, 10, 11, 16, 20, 27]) {
      const sizes = plan(max);
      expect(total(sizes)).toBe(max);
      expect(sizes.get('export pool')).toBeGreaterThanOrEqual(3);
      expect(sizes.get('main')).toBeGreaterThanOrEqual(2);
    }
  });

  it('gives each pool its default size when the budget holds them all (a budget never inflates a pool)', () => {
    const sizes = plan(100);
    expect(sizes.get('main')).toBe(10);
    expect(sizes.get('export pool')).toBe(3);
    expect(total(sizes)).toBe(28);
  });

  it('takes an explicit size as it is and shares the rest of the budget among the others', () => {
    const claims = DEFAULT_CLAIMS.map((claim) => (claim.name === 'main' ? { ...claim, size: 8 } : claim));
    const sizes = plan(16, claims);
    expect(sizes.get('main')).toBe(8);
    expect(total(sizes)).toBe(16);
    expect(sizes.get('search pool')).toBeLessThan(6);
  });

  it('refuses explicit sizes and minimums that cannot fit, naming each pool, its setting and what is needed', () => {
    const claims = DEFAULT_CLAIMS.map((claim) =>
      claim.name === 'main'
        ? { ...claim, size: 10 }
        : claim.name === 'search pool'
          ? { ...claim, size: 6 }
          : claim,
    );
    expect(() => plan(16, claims)).toThrow(ConnectionBudgetError);
    expect(() => plan(16, claims)).toThrow(
      "DATABASE_MAX_CONNECTIONS=16 cannot hold this process's database pools: main 10 (DATABASE_POOL_SIZE) + " +
        'search pool 6 (SEARCH_DB_POOL_SIZE) + search build pool at least 1 + report pool at least 1 + ' +
        'report rollup pool at least 1 + export pool at least 3 (EXPORT_CONCURRENCY + 1) = 22. ' +
        'Raise DATABASE_MAX_CONNECTIONS to at least 22, or lower the explicit pool sizes',
    );
    expect(() => plan(8)).toThrow(/= 9\. Raise DATABASE_MAX_CONNECTIONS to at least 9/);
  });

  it('describes the split in one line and refuses a pool it was never told of', () => {
    const budget = new ConnectionBudget({ server: 'primary', max: 16, claims: DEFAULT_CLAIMS });
    expect(budget.describe()).toBe(
      'database connections: budget 16 on primary: main 5, search pool 3, search build pool 1, report pool 2, ' +
        'report rollup pool 2, export pool 3',
    );
    expect(() => budget.sizeOf('vector pool')).toThrow(
      'pool "vector pool" has no share of the primary connection budget: declare it in its module\'s pools',
    );
    expect(() => plan(16, [...DEFAULT_CLAIMS, { name: 'main', weight: 1 }])).toThrow(
      'pool "main" is declared twice',
    );
  });
});
