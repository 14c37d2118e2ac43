import type { DataSource } from 'typeorm';
import type { BenchContext } from './module';

/** One company of 1M leads and 1M deals among five: the data set the report and search benchmarks read. */
export function millionRecordSizes(scale: number) {
  const scaled = (n: number, min: number) => Math.max(min, Math.round(n * scale));
  return {
    companies: 5,
    users: 400,
    rules: 80,
    largest: { users: 200, rules: 40, leads: scaled(1_000_000, 2_000), deals: scaled(1_000_000, 2_000) },
    accounts: scaled(100_000, 500),
    leads: scaled(1_200_000, 2_400),
    deals: scaled(1_200_000, 2_400),
  };
}

export interface BenchUser {
  name: 'admin' | 'manager' | 'rep';
  id: string;
  /** Share of the company's deals the user reads. */
  share: number;
  token: string;
}

export interface BenchUserOptions {
  graphqlUrl: string;
  db: DataSource;
  companyId: string;
  mint(userId: string): Promise<string>;
  /** Names the rep's criteria rules, so a rerun (and the cleanup) can find them. */
  ruleName: string;
  /** How many deals a user reads, through the gateway. */
  countDeals(token: string): Promise<number>;
}

/**
 * The admin; a manager whose hierarchy holds about 30% of the deals; a rep in a role with none below who holds about
 * 3%, plus what two criteria rules (the largest 1% of deal amounts; qualified leads scoring 99) and 100 manual shares
 * per type give them.
 */
export async function pickBenchUsers(context: BenchContext, options: BenchUserOptions): Promise<BenchUser[]> {
  // Long by choice: the admin, the manager and the rep are picked from one reading of the company's users, roles and
  // deal owners (each user's hierarchy share), then the rep's rules and shares are made; parted, the steps would only
  // hand that state to each other.
  const { db, companyId, graphqlUrl } = options;
  // Each user's share of the deals by ownership and hierarchy alone (the records of users in roles below theirs).
  const users = await db.query<Array<{ id: string; role_id: string | null; is_admin: boolean }>>(
    'SELECT id, role_id, is_admin FROM users WHERE company_id = $1 ORDER BY id',
    [companyId],
  );
  const roles = await db.query<Array<{ id: string; parent_id: string | null }>>(
    'SELECT id, parent_id FROM roles WHERE company_id = $1',
    [companyId],
  );
  const owned = new Map(
    (
      await db.query<Array<{ owner_id: string; n: string }>>(
        'SELECT owner_id, count(*) AS n FROM deals WHERE company_id = $1 GROUP BY owner_id',
        [companyId],
      )
    ).map((row) => [row.owner_id, Number(row.n)]),
  );
  const total = [...owned.values()].reduce((a, b) => a + b, 0);
  const children = new Map<string, string[]>();
  for (const role of roles)
    if (role.parent_id) children.set(role.parent_id, [...(children.get(role.parent_id) ?? []), role.id]);
  const below = (roleId: string | null): Set<string> => {
    const found = new Set<string>();
    const walk = (id: string) => (children.get(id) ?? []).forEach((child) => (found.add(child), walk(child)));
    if (roleId) walk(roleId);
    return found;
  };
  const hierarchyShare = (user: (typeof users)[number]) => {
    const roleSet = below(user.role_id);
    const seen = users.filter(
      (other) => other.id === user.id || (other.role_id && roleSet.has(other.role_id)),
    );
    return seen.reduce((sum, other) => sum + (owned.get(other.id) ?? 0), 0) / total;
  };
  const candidates = users.filter((u) => !u.is_admin).map((u) => ({ ...u, share: hierarchyShare(u) }));
  const closest = <T extends { share: number }>(target: number, pool: T[]) =>
    pool.reduce((best, c) => (Math.abs(c.share - target) < Math.abs(best.share - target) ? c : best));
  const managerRow = closest(0.3, candidates);
  const repRow = closest(
    0.03,
    candidates.filter((c) => c.id !== managerRow.id && below(c.role_id).size === 0),
  );
  const adminRow = users.find((u) => u.is_admin)!;
  const admin: BenchUser = {
    name: 'admin',
    id: adminRow.id,
    share: 1,
    token: await options.mint(adminRow.id),
  };
  const manager: BenchUser = {
    name: 'manager',
    id: managerRow.id,
    share: 0,
    token: await options.mint(managerRow.id),
  };
  const rep: BenchUser = { name: 'rep', id: repRow.id, share: 0, token: await options.mint(repRow.id) };
  context.log(
    `manager: ${(managerRow.share * 100).toFixed(1)}% of the deals by hierarchy; rep: ${(repRow.share * 100).toFixed(1)}% (a role with none below)`,
  );
  const [{ amount }] = (await db.query<Array<{ amount: string }>>(
    'SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY amount) AS amount FROM deals WHERE company_id = $1',
    [companyId],
  )) as [{ amount: string }];
  const asAdmin = (query: string) => context.graphql(graphqlUrl, admin.token, query);
  for (const [type, criteria] of [
    ['DEAL', `[{ field: "amount", operator: gte, value: ${Number(amount)} }]`],
    [
      'LEAD',
      '[{ field: "status", operator: eq, value: "QUALIFIED" }, { field: "score", operator: gte, value: 99 }]',
    ],
  ] as const)
    await asAdmin(
      `mutation { createSharingRule(input: { objectType: ${type}, name: "${options.ruleName}", ruleType: CRITERIA, criteria: ${criteria}, target: { type: USER, id: "${rep.id}" } }) { id } }`,
    );
  for (const [type, table] of [
    ['DEAL', 'deals'],
    ['LEAD', 'leads'],
  ] as const) {
    const records = await db.query<Array<{ id: string }>>(
      `SELECT id FROM ${table} WHERE company_id = $1 AND owner_id <> $2 ORDER BY id LIMIT 100`,
      [companyId, rep.id],
    );
    for (const record of records)
      await asAdmin(
        `mutation { shareRecord(input: { objectType: ${type}, recordId: "${record.id}", granteeType: USER, granteeId: "${rep.id}" }) { id } }`,
      );
  }
  // What each reads in the end, sharing rules included (through the gateway).
  for (const user of [manager, rep]) user.share = (await options.countDeals(user.token)) / total;
  return [admin, manager, rep];
}
