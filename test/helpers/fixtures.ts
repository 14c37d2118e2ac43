import { randomUUID } from 'node:crypto';
import type { App } from '../../src/app';

export interface TestUser {
  id: string;
  email: string;
  token: string;
  isAdmin: boolean;
}

export interface TestTenant {
  companyId: string;
  roleIds: { ceo: string; rep: string };
  admin: TestUser;
  rep: TestUser;
  /** More non-admin users. */
  others: TestUser[];
}

/** A fresh company with a CEO (admin) and reps; unique ids so test files never collide. */
export async function createTenant(
  app: App,
  options: { extraUsers?: number; name?: string } = {},
): Promise<TestTenant> {
  const db = app.dataSource;
  const companyId = randomUUID();
  await db.query('INSERT INTO companies (id, name) VALUES ($1, $2)', [
    companyId,
    options.name ?? `Test ${companyId.slice(0, 8)}`,
  ]);
  const ceo = randomUUID();
  const rep = randomUUID();
  await db.query(
    'INSERT INTO roles (id, company_id, name, parent_id) VALUES ($1, $3, $4, NULL), ($2, $3, $5, $1)',
    [ceo, rep, companyId, 'CEO', 'Rep'],
  );
  const makeUser = async (isAdmin: boolean, roleId: string): Promise<TestUser> => {
    const id = randomUUID();
    const email = `${id}@test.example.com`;
    await db.query(
      'INSERT INTO users (id, company_id, email, name, role_id, is_admin) VALUES ($1, $2, $3, $4, $5, $6)',
      [id, companyId, email, `User ${id.slice(0, 6)}`, roleId, isAdmin],
    );
    return { id, email, isAdmin, token: await app.services.tokens.mint(id, companyId) };
  };
  const admin = await makeUser(true, ceo);
  const repUser = await makeUser(false, rep);
  const others: TestUser[] = [];
  for (let i = 0; i < (options.extraUsers ?? 0); i++) others.push(await makeUser(false, rep));
  return { companyId, roleIds: { ceo, rep }, admin, rep: repUser, others };
}

export async function insertLead(
  app: App,
  tenant: TestTenant,
  ownerId: string,
  lastName = 'Lead',
): Promise<string> {
  const id = randomUUID();
  await app.dataSource.query(
    `INSERT INTO leads (id, company_id, owner_id, first_name, last_name, status) VALUES ($1, $2, $3, 'Test', $4, 'NEW')`,
    [id, tenant.companyId, ownerId, lastName],
  );
  return id;
}

export async function insertAccount(
  app: App,
  tenant: TestTenant,
  ownerId: string,
  name = 'Account',
): Promise<string> {
  const id = randomUUID();
  await app.dataSource.query(
    'INSERT INTO accounts (id, company_id, owner_id, name) VALUES ($1, $2, $3, $4)',
    [id, tenant.companyId, ownerId, name],
  );
  return id;
}

export async function insertDeal(
  app: App,
  tenant: TestTenant,
  ownerId: string,
  accountId: string | null,
  name = 'Deal',
): Promise<string> {
  const id = randomUUID();
  await app.dataSource.query(
    `INSERT INTO deals (id, company_id, owner_id, account_id, name, stage, amount) VALUES ($1, $2, $3, $4, $5, 'PROSPECTING', 1000)`,
    [id, tenant.companyId, ownerId, accountId, name],
  );
  return id;
}

export async function auditCount(app: App, companyId: string): Promise<number> {
  const [{ count }] = await app.dataSource.query<[{ count: number }]>(
    'SELECT count(*)::int AS count FROM audit_logs WHERE company_id = $1',
    [companyId],
  );
  return count;
}
