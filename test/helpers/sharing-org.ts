import { randomUUID } from 'node:crypto';
import type { App } from '../../src/app';

export interface OrgUser {
  id: string;
  token: string;
}

/**
 * One company with a role tree, users, nested groups and one lead per user:
 *   CEO (admin) > VP > Manager > Rep (rep1, rep2);  CEO > Support (sup);  outsider has no role.
 *   g1 = { sup },  g2 = { group g1 },  g3 = { role-and-subordinates Manager }.
 */
export interface SharingOrg {
  companyId: string;
  roles: Record<'ceo' | 'vp' | 'manager' | 'rep' | 'support', string>;
  users: Record<'admin' | 'vp' | 'mgr' | 'rep1' | 'rep2' | 'sup' | 'outsider', OrgUser>;
  groups: Record<'g1' | 'g2' | 'g3', string>;
  /** One lead per user, keyed by the owner's name. */
  leads: Record<'vp' | 'mgr' | 'rep1' | 'rep2' | 'sup' | 'outsider', string>;
}

export async function buildSharingOrg(app: App): Promise<SharingOrg> {
  const db = app.dataSource;
  const companyId = randomUUID();
  await db.query('INSERT INTO companies (id, name) VALUES ($1, $2)', [
    companyId,
    `Sharing ${companyId.slice(0, 6)}`,
  ]);
  const roles = {
    ceo: randomUUID(),
    vp: randomUUID(),
    manager: randomUUID(),
    rep: randomUUID(),
    support: randomUUID(),
  };
  for (const [id, name, parent] of [
    [roles.ceo, 'CEO', null],
    [roles.vp, 'VP', roles.ceo],
    [roles.manager, 'Manager', roles.vp],
    [roles.rep, 'Rep', roles.manager],
    [roles.support, 'Support', roles.ceo],
  ] as const) {
    await db.query('INSERT INTO roles (id, company_id, name, parent_id) VALUES ($1, $2, $3, $4)', [
      id,
      companyId,
      name,
      parent,
    ]);
  }
  const makeUser = async (roleId: string | null, isAdmin = false): Promise<OrgUser> => {
    const id = randomUUID();
    await db.query(
      'INSERT INTO users (id, company_id, email, name, role_id, is_admin) VALUES ($1, $2, $3, $4, $5, $6)',
      [id, companyId, `${id}@sharing.example.com`, `U ${id.slice(0, 4)}`, roleId, isAdmin],
    );
    return { id, token: await app.services.tokens.mint(id, companyId) };
  };
  const users = {
    admin: await makeUser(roles.ceo, true),
    vp: await makeUser(roles.vp),
    mgr: await makeUser(roles.manager),
    rep1: await makeUser(roles.rep),
    rep2: await makeUser(roles.rep),
    sup: await makeUser(roles.support),
    outsider: await makeUser(null),
  };
  const groups = { g1: randomUUID(), g2: randomUUID(), g3: randomUUID() };
  for (const [name, id] of Object.entries(groups)) {
    await db.query('INSERT INTO groups (id, company_id, name) VALUES ($1, $2, $3)', [id, companyId, name]);
  }
  for (const [group, type, member] of [
    [groups.g1, 'USER', users.sup.id],
    [groups.g2, 'GROUP', groups.g1],
    [groups.g3, 'ROLE_AND_SUBORDINATES', roles.manager],
  ] as const) {
    await db.query(
      'INSERT INTO group_members (company_id, group_id, member_type, member_id) VALUES ($1, $2, $3, $4)',
      [companyId, group, type, member],
    );
  }
  const leads = {} as SharingOrg['leads'];
  const statuses: Record<keyof SharingOrg['leads'], string> = {
    vp: 'NEW',
    mgr: 'QUALIFIED',
    rep1: 'QUALIFIED',
    rep2: 'NEW',
    sup: 'CONTACTED',
    outsider: 'NEW',
  };
  for (const owner of Object.keys(statuses) as Array<keyof SharingOrg['leads']>) {
    const id = randomUUID();
    await db.query(
      `INSERT INTO leads (id, company_id, owner_id, first_name, last_name, status, score) VALUES ($1, $2, $3, 'Lead', $4, $5, $6)`,
      [id, companyId, users[owner].id, owner, statuses[owner], owner === 'rep2' ? 80 : 20],
    );
    leads[owner] = id;
  }
  return { companyId, roles, users, groups, leads };
}
