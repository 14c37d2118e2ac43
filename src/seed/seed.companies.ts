import {
  buildGroups,
  buildRoleTree,
  buildRule,
  pickRole,
  roleDepthFor,
  type SeedGroupMember,
  type SeedRole,
} from './org-shape';
import { SeededRandom } from './random';
import { COMPANY_WORDS, DAY_MS, FIRST_NAMES, HISTORY_DAYS, LAST_NAMES } from './seed.values';
import { ChunkWriter, writeAll, type Queryable, type SeedProgress } from './seed.writer';

export interface SeededCompany {
  id: string;
  name: string;
  adminEmail: string;
  userCount: number;
}

interface SeedUser {
  id: string;
  email: string;
  name: string;
  roleId: string;
  isAdmin: boolean;
  createdAt: Date;
}

/** One company as generated, before any of it is written: its role tree, users and groups. */
export interface SeedOrg {
  company: SeededCompany;
  createdAt: Date;
  roles: SeedRole[];
  users: SeedUser[];
  groups: Array<{ id: string; name: string; members: SeedGroupMember[] }>;
}

/** Company `c` with `userCount` users, the first its admin at the top of a role tree sized to the company. */
export function generateCompany(random: SeededRandom, c: number, userCount: number, anchor: number): SeedOrg {
  const companyId = random.uuid();
  const name = `${COMPANY_WORDS[c % COMPANY_WORDS.length]} ${c === 0 ? 'Demo' : `#${c}`}`;
  const roles = buildRoleTree(random, roleDepthFor(userCount));
  const users: SeedUser[] = [];
  for (let u = 0; u < userCount; u++) {
    const userId = random.uuid();
    const role = u === 0 ? roles[0]! : pickRole(random, roles);
    users.push({
      id: userId,
      email: `user${u}@company${c}.example.com`,
      name: `${random.pick(FIRST_NAMES)} ${random.pick(LAST_NAMES)}`,
      roleId: role.id,
      isAdmin: u === 0,
      createdAt: new Date(anchor - random.int(30, HISTORY_DAYS) * DAY_MS),
    });
  }
  const groups = buildGroups(
    random,
    roles,
    users.map((user) => user.id),
  );
  return {
    company: { id: companyId, name, adminEmail: `user0@company${c}.example.com`, userCount: users.length },
    createdAt: new Date(anchor - HISTORY_DAYS * DAY_MS),
    roles,
    users,
    groups,
  };
}

/** The companies' directories: companies, roles, users, groups and their members, org-wide defaults. */
export async function writeDirectory(db: Queryable, orgs: readonly SeedOrg[]): Promise<void> {
  await writeCompanies(db, orgs);
  await writeRoles(db, orgs);
  await writeUsers(db, orgs);
  await writeGroups(db, orgs);
  await writeGroupMembers(db, orgs);
  await writeOrgWideDefaults(db, orgs);
}

function writeCompanies(db: Queryable, orgs: readonly SeedOrg[]): Promise<void> {
  return writeAll(
    db,
    'companies',
    { id: 'uuid', name: 'text', created_at: 'timestamptz' },
    orgs.map(({ company, createdAt }) => ({ id: company.id, name: company.name, created_at: createdAt })),
  );
}

function writeRoles(db: Queryable, orgs: readonly SeedOrg[]): Promise<void> {
  // Parents come before children, and one statement checks the foreign key only at its end anyway.
  return writeAll(
    db,
    'roles',
    { id: 'uuid', company_id: 'uuid', name: 'text', parent_id: 'uuid' },
    orgs.flatMap(({ company, roles }) =>
      roles.map((role) => ({
        id: role.id,
        company_id: company.id,
        name: role.name,
        parent_id: role.parentId,
      })),
    ),
  );
}

function writeUsers(db: Queryable, orgs: readonly SeedOrg[]): Promise<void> {
  return writeAll(
    db,
    'users',
    {
      id: 'uuid',
      company_id: 'uuid',
      email: 'text',
      name: 'text',
      role_id: 'uuid',
      is_admin: 'boolean',
      created_at: 'timestamptz',
    },
    orgs.flatMap(({ company, users }) =>
      users.map((user) => ({
        id: user.id,
        company_id: company.id,
        email: user.email,
        name: user.name,
        role_id: user.roleId,
        is_admin: user.isAdmin,
        created_at: user.createdAt,
      })),
    ),
  );
}

function writeGroups(db: Queryable, orgs: readonly SeedOrg[]): Promise<void> {
  return writeAll(
    db,
    'groups',
    { id: 'uuid', company_id: 'uuid', name: 'text' },
    orgs.flatMap(({ company, groups }) =>
      groups.map((group) => ({ id: group.id, company_id: company.id, name: group.name })),
    ),
  );
}

function writeGroupMembers(db: Queryable, orgs: readonly SeedOrg[]): Promise<void> {
  return writeAll(
    db,
    'group_members',
    { company_id: 'uuid', group_id: 'uuid', member_type: 'text', member_id: 'uuid' },
    orgs.flatMap(({ company, groups }) =>
      groups.flatMap((group) =>
        group.members.map((member) => ({
          company_id: company.id,
          group_id: group.id,
          member_type: member.type,
          member_id: member.id,
        })),
      ),
    ),
  );
}

function writeOrgWideDefaults(db: Queryable, orgs: readonly SeedOrg[]): Promise<void> {
  const defaults = [
    ['LEAD', 'PRIVATE'],
    ['DEAL', 'PRIVATE'],
    ['ACCOUNT', 'PUBLIC_READ'],
  ] as const;
  return writeAll(
    db,
    'org_wide_defaults',
    { company_id: 'uuid', object_type: 'text', access_level: 'text' },
    orgs.flatMap(({ company }) =>
      defaults.map(([objectType, access]) => ({
        company_id: company.id,
        object_type: objectType,
        access_level: access,
      })),
    ),
  );
}

export interface RuleSeed {
  db: Queryable;
  chunkSize: number;
  progress?: SeedProgress;
  /** The run's seed: rules draw from a generator of their own, seeded one above it. */
  seed: number;
  /** Rules per company, in the order of `orgs`. */
  perCompany: readonly number[];
  total: number;
}

/** Sharing rules of every company; how many were written. */
export async function writeRules(orgs: readonly SeedOrg[], options: RuleSeed): Promise<number> {
  // Rules draw from their own generator, so the records below do not change with --rules.
  const ruleRandom = new SeededRandom(options.seed + 1);
  const rules = new ChunkWriter(
    options.db,
    'sharing_rules',
    {
      company_id: 'uuid',
      object_type: 'text',
      name: 'text',
      rule_type: 'text',
      source_type: 'text',
      source_id: 'uuid',
      criteria: 'jsonb',
      target_type: 'text',
      target_id: 'uuid',
      access_level: 'text',
    },
    options.chunkSize,
    options.total,
    options.progress,
  );
  for (const [c, org] of orgs.entries()) {
    const roles = org.roles;
    const users = org.users.map((user) => user.id);
    const groups = org.groups.map((group) => group.id);
    for (let r = 0; r < options.perCompany[c]!; r++) {
      const rule = buildRule(ruleRandom, roles, users, groups);
      await rules.push({
        company_id: org.company.id,
        object_type: rule.objectType,
        name: `Rule ${r + 1}`,
        rule_type: rule.ruleType,
        source_type: rule.sourceType,
        source_id: rule.sourceId,
        criteria: rule.criteria,
        target_type: rule.targetType,
        target_id: rule.targetId,
        access_level: rule.accessLevel,
      });
    }
  }
  await rules.flush();
  return rules.written;
}
