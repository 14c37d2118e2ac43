import { seedDatabase } from '../seed.generator';
import type { Queryable } from '../seed.writer';

function recorder(): Queryable & { statements: Array<{ sql: string; params: unknown[] }> } {
  const statements: Array<{ sql: string; params: unknown[] }> = [];
  return {
    statements,
    query: async (sql, params = []) => {
      statements.push({ sql, params });
      return [];
    },
  };
}

const sizes = { companies: 3, users: 20, accounts: 30, leads: 400, deals: 150 };
const anchor = new Date('2026-11-01T00:00:00Z');

describe('seedDatabase', () => {
  it('is deterministic: the same seed produces identical rows, another seed different ones', async () => {
    const first = recorder();
    const second = recorder();
    const other = recorder();
    await seedDatabase(first, { ...sizes, seed: 7, anchor, chunkSize: 100 });
    await seedDatabase(second, { ...sizes, seed: 7, anchor, chunkSize: 100 });
    await seedDatabase(other, { ...sizes, seed: 8, anchor, chunkSize: 100 });
    expect(JSON.stringify(second.statements)).toBe(JSON.stringify(first.statements));
    expect(JSON.stringify(other.statements)).not.toBe(JSON.stringify(first.statements));
  });

  it('gives the largest company the fixed shape asked for, with a role tree 8 deep and its share of rules', async () => {
    const db = recorder();
    const summary = await seedDatabase(db, {
      companies: 4,
      users: 1600,
      accounts: 0,
      leads: 0,
      deals: 0,
      rules: 3000,
      largest: { users: 500, rules: 2000 },
      seed: 3,
      anchor,
    });
    expect(summary.companies[0]!.userCount).toBe(500);
    expect(Math.max(...summary.companies.slice(1).map((c) => c.userCount))).toBeLessThanOrEqual(500);
    expect(summary.counts.rules).toBe(3000);
    const rules = db.statements
      .filter((s) => s.sql.startsWith('INSERT INTO sharing_rules'))
      .flatMap((s) => s.params[0] as string[]);
    expect(rules.filter((companyId) => companyId === summary.companies[0]!.id)).toHaveLength(2000);
    const roleInsert = db.statements.find((s) => s.sql.startsWith('INSERT INTO roles'))!;
    const [ids, companies, , parents] = roleInsert.params as [
      string[],
      string[],
      string[],
      Array<string | null>,
    ];
    const parentOf = new Map(ids.map((id, i) => [id, parents[i]!]));
    const depth = (id: string): number => (parentOf.get(id) ? 1 + depth(parentOf.get(id)!) : 1);
    const largestRoles = ids.filter((_, i) => companies[i] === summary.companies[0]!.id);
    expect(Math.max(...largestRoles.map(depth))).toBe(8);
  });

  it('writes exactly the requested counts, in chunks, with skewed distributions', async () => {
    const db = recorder();
    const summary = await seedDatabase(db, { ...sizes, seed: 1, anchor, chunkSize: 100 });
    expect(summary.counts).toEqual({ ...sizes, rules: 0 });
    const leadInserts = db.statements.filter((s) => s.sql.startsWith('INSERT INTO leads'));
    expect(leadInserts).toHaveLength(4);
    const statuses = leadInserts.flatMap((s) => s.params[7] as string[]);
    const count = (status: string) => statuses.filter((s) => s === status).length;
    expect(count('NEW')).toBeGreaterThan(count('CONVERTED') * 2);
    const created = leadInserts.flatMap((s) => s.params[13] as Date[]).map((d) => d.getTime());
    expect(Math.min(...created)).toBeGreaterThanOrEqual(anchor.getTime() - 731 * 86_400_000);
    expect(Math.max(...created)).toBeLessThanOrEqual(anchor.getTime());
    // The largest company gets the most leads (Zipf-like company sizes).
    const companies = leadInserts.flatMap((s) => s.params[1] as string[]);
    const perCompany = summary.companies.map((c) => companies.filter((id) => id === c.id).length);
    expect(perCompany[0]).toBeGreaterThan(perCompany[2]!);
  });

  it('gives the largest company the records asked for, and spreads the rest over the others', async () => {
    const db = recorder();
    const summary = await seedDatabase(db, {
      ...sizes,
      leads: 500,
      deals: 300,
      largest: { users: 5, rules: 0, leads: 420, deals: 250 },
      seed: 2,
      anchor,
    });
    for (const [table, largest, total] of [
      ['leads', 420, 500],
      ['deals', 250, 300],
    ] as const) {
      const companies = db.statements
        .filter((s) => s.sql.startsWith(`INSERT INTO ${table}`))
        .flatMap((s) => s.params[1] as string[]);
      expect(companies).toHaveLength(total);
      expect(companies.filter((id) => id === summary.companies[0]!.id)).toHaveLength(largest);
    }
  });
});
