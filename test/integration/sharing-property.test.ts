import { randomUUID } from 'node:crypto';
import { startTestApp, type TestApp } from '../helpers/test-app';

/**
 * Randomized check of the sharing engine against a deliberately naive reference evaluator written here, from
 * DESIGN.md alone (no code shared with src/modules/sharing). Fixed seed, so a failure reproduces.
 */

// --- a tiny seeded generator, independent of the product's ---
let state = 20261128;
const rnd = () => {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  return state / 4294967296;
};
const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const chance = (p: number) => rnd() < p;

const STATUSES = ['NEW', 'CONTACTED', 'QUALIFIED', 'UNQUALIFIED', 'CONVERTED'];
const INDUSTRIES = ['TECHNOLOGY', 'FINANCE', 'RETAIL', null];
const NAMES = ['Acme GmbH', 'Globex Inc', 'Initech Ltd', null];

interface User {
  id: string;
  roleId: string | null;
  isAdmin: boolean;
  token?: string;
}
interface Member {
  type: 'USER' | 'ROLE' | 'ROLE_AND_SUBORDINATES' | 'GROUP';
  id: string;
}
interface Condition {
  field: string;
  operator: string;
  value: unknown;
}
interface Rule {
  ruleType: 'OWNER' | 'CRITERIA';
  source?: { type: 'ROLE' | 'ROLE_AND_SUBORDINATES' | 'GROUP'; id: string };
  criteria?: Condition[];
  target: Member;
  access: 'READ' | 'EDIT';
}
interface Lead {
  id: string;
  ownerId: string;
  status: string;
  score: number;
  industry: string | null;
  companyName: string | null;
  estimatedValue: number | null;
}
interface Share {
  leadId: string;
  type: 'USER' | 'GROUP';
  id: string;
  access: 'READ' | 'EDIT';
}
interface Company {
  id: string;
  owd: 'PRIVATE' | 'PUBLIC_READ' | 'PUBLIC_READ_WRITE';
  roleParent: Map<string, string | null>;
  users: User[];
  groups: Map<string, Member[]>;
  rules: Rule[];
  leads: Lead[];
  shares: Share[];
}

function generateCompany(leadCount: number, owd?: Company['owd']): Company {
  const roleIds = Array.from({ length: int(6, 14) }, () => randomUUID());
  const roleParent = new Map<string, string | null>();
  roleIds.forEach((id, i) => roleParent.set(id, i === 0 ? null : roleIds[int(0, i - 1)]!));
  const users: User[] = Array.from({ length: int(15, 25) }, (_, i) => ({
    id: randomUUID(),
    roleId: chance(0.1) ? null : pick(roleIds),
    isAdmin: i === 0,
  }));
  const groupIds = Array.from({ length: 5 }, () => randomUUID());
  const groups = new Map<string, Member[]>();
  for (const g of groupIds) {
    const members: Member[] = [];
    for (let k = int(1, 3); k > 0; k--) {
      const type = pick(['USER', 'ROLE', 'ROLE_AND_SUBORDINATES', 'GROUP'] as const);
      const id = type === 'USER' ? pick(users).id : type === 'GROUP' ? pick(groupIds) : pick(roleIds);
      if (!members.some((m) => m.type === type && m.id === id) && !(type === 'GROUP' && id === g))
        members.push({ type, id });
    }
    groups.set(g, members);
  }
  const target = (): Member => {
    const type = pick(['USER', 'ROLE', 'ROLE_AND_SUBORDINATES', 'GROUP'] as const);
    return { type, id: type === 'USER' ? pick(users).id : type === 'GROUP' ? pick(groupIds) : pick(roleIds) };
  };
  const condition = (): Condition => {
    switch (int(0, 4)) {
      case 0:
        return { field: 'status', operator: pick(['eq', 'ne']), value: pick(STATUSES) };
      case 1:
        return { field: 'status', operator: 'in', value: [pick(STATUSES), pick(STATUSES)] };
      case 2:
        return { field: 'score', operator: pick(['gt', 'gte', 'lt', 'lte', 'eq']), value: int(0, 100) };
      case 3:
        return { field: 'industry', operator: pick(['eq', 'ne']), value: pick(INDUSTRIES.filter(Boolean)) };
      default:
        return { field: 'companyName', operator: 'contains', value: pick(['acme', 'INC', 'tech']) };
    }
  };
  const rules: Rule[] = Array.from({ length: int(6, 12) }, () => {
    const access = pick(['READ', 'EDIT'] as const);
    if (chance(0.5)) {
      const type = pick(['ROLE', 'ROLE_AND_SUBORDINATES', 'GROUP'] as const);
      return {
        ruleType: 'OWNER',
        source: { type, id: type === 'GROUP' ? pick(groupIds) : pick(roleIds) },
        target: target(),
        access,
      };
    }
    return {
      ruleType: 'CRITERIA',
      criteria: Array.from({ length: int(1, 2) }, condition),
      target: target(),
      access,
    };
  });
  const leads: Lead[] = Array.from({ length: leadCount }, () => ({
    id: randomUUID(),
    ownerId: pick(users).id,
    status: pick(STATUSES),
    score: int(0, 100),
    industry: pick(INDUSTRIES),
    companyName: pick(NAMES),
    estimatedValue: chance(0.2) ? null : int(0, 100000),
  }));
  const shares: Share[] = [];
  for (let k = 0; k < leadCount / 15; k++) {
    const type = pick(['USER', 'GROUP'] as const);
    const share = {
      leadId: pick(leads).id,
      type,
      id: type === 'USER' ? pick(users).id : pick(groupIds),
      access: pick(['READ', 'EDIT'] as const),
    };
    if (!shares.some((s) => s.leadId === share.leadId && s.type === share.type && s.id === share.id))
      shares.push(share);
  }
  return {
    id: randomUUID(),
    owd: owd ?? pick(['PRIVATE', 'PUBLIC_READ', 'PUBLIC_READ_WRITE'] as const),
    roleParent,
    users,
    groups,
    rules,
    leads,
    shares,
  };
}

// --- the reference evaluator: a direct reading of DESIGN.md ---
function isBelow(c: Company, role: string | null, above: string | null): boolean {
  if (!role || !above) return false;
  for (let r = c.roleParent.get(role) ?? null; r; r = c.roleParent.get(r) ?? null)
    if (r === above) return true;
  return false;
}
function inRoleOrBelow(c: Company, role: string | null, top: string) {
  return role === top || isBelow(c, role, top);
}
function inGroup(c: Company, user: User, group: string, seen = new Set<string>()): boolean {
  if (seen.has(group)) return false;
  seen.add(group);
  return (c.groups.get(group) ?? []).some((m) =>
    m.type === 'USER'
      ? m.id === user.id
      : m.type === 'ROLE'
        ? user.roleId === m.id
        : m.type === 'ROLE_AND_SUBORDINATES'
          ? inRoleOrBelow(c, user.roleId, m.id)
          : inGroup(c, user, m.id, seen),
  );
}
function includes(c: Company, who: Member, user: User): boolean {
  if (who.type === 'USER') return who.id === user.id;
  if (who.type === 'ROLE') return user.roleId === who.id;
  if (who.type === 'ROLE_AND_SUBORDINATES') return inRoleOrBelow(c, user.roleId, who.id);
  return inGroup(c, user, who.id);
}
function matches(cond: Condition, lead: Lead): boolean {
  const actual = (lead as unknown as Record<string, unknown>)[cond.field] as string | number | null;
  const limit = cond.value as number;
  switch (cond.operator) {
    case 'eq':
      return actual !== null && actual === cond.value;
    case 'ne':
      return actual !== cond.value;
    case 'in':
      return actual !== null && (cond.value as unknown[]).includes(actual);
    case 'contains':
      return actual !== null && String(actual).toLowerCase().includes(String(cond.value).toLowerCase());
    case 'gt':
      return actual !== null && (actual as number) > limit;
    case 'gte':
      return actual !== null && (actual as number) >= limit;
    case 'lt':
      return actual !== null && (actual as number) < limit;
    default:
      return actual !== null && (actual as number) <= limit;
  }
}
function allows(c: Company, user: User, lead: Lead, want: 'READ' | 'EDIT'): boolean {
  if (user.isAdmin) return true;
  if (c.owd === 'PUBLIC_READ_WRITE' || (want === 'READ' && c.owd === 'PUBLIC_READ')) return true;
  const owner = c.users.find((u) => u.id === lead.ownerId)!;
  if (owner.id === user.id || isBelow(c, owner.roleId, user.roleId)) return true;
  for (const rule of c.rules) {
    if (want === 'EDIT' && rule.access !== 'EDIT') continue;
    if (!includes(c, rule.target, user)) continue;
    if (rule.ruleType === 'OWNER' && includes(c, rule.source!, owner)) return true;
    if (rule.ruleType === 'CRITERIA' && rule.criteria!.every((cond) => matches(cond, lead))) return true;
  }
  return c.shares.some(
    (s) =>
      s.leadId === lead.id &&
      (want === 'READ' || s.access === 'EDIT') &&
      (s.type === 'USER' ? s.id === user.id : inGroup(c, user, s.id)),
  );
}

describe('sharing: randomized property test against a reference evaluator', () => {
  let t: TestApp;
  const companies = [
    generateCompany(1500, 'PRIVATE'),
    generateCompany(1200, 'PRIVATE'),
    generateCompany(300),
  ];

  beforeAll(async () => {
    t = await startTestApp();
    const q = (sql: string, params: unknown[]) => t.app.dataSource.query(sql, params);
    for (const c of companies) {
      await q('INSERT INTO companies (id, name) VALUES ($1, $2)', [c.id, 'Property']);
      // Parents first: roleIds were generated so that each parent precedes its children.
      for (const [id, parent] of c.roleParent)
        await q('INSERT INTO roles (id, company_id, name, parent_id) VALUES ($1, $2, $3, $4)', [
          id,
          c.id,
          'r',
          parent,
        ]);
      for (const u of c.users) {
        await q(
          'INSERT INTO users (id, company_id, email, name, role_id, is_admin) VALUES ($1, $2, $3, $4, $5, $6)',
          [u.id, c.id, `${u.id}@p.example`, 'u', u.roleId, u.isAdmin],
        );
        u.token = await t.app.services.tokens.mint(u.id, c.id);
      }
      for (const [g, members] of c.groups) {
        await q('INSERT INTO groups (id, company_id, name) VALUES ($1, $2, $3)', [g, c.id, 'g']);
        for (const m of members)
          await q(
            'INSERT INTO group_members (company_id, group_id, member_type, member_id) VALUES ($1, $2, $3, $4)',
            [c.id, g, m.type, m.id],
          );
      }
      await q('INSERT INTO org_wide_defaults (company_id, object_type, access_level) VALUES ($1, $2, $3)', [
        c.id,
        'LEAD',
        c.owd,
      ]);
      for (const r of c.rules) {
        await q(
          `INSERT INTO sharing_rules (company_id, object_type, name, rule_type, source_type, source_id, criteria, target_type, target_id, access_level)
           VALUES ($1, 'LEAD', 'rule', $2, $3, $4, $5, $6, $7, $8)`,
          [
            c.id,
            r.ruleType,
            r.source?.type ?? null,
            r.source?.id ?? null,
            r.criteria ? JSON.stringify(r.criteria) : null,
            r.target.type,
            r.target.id,
            r.access,
          ],
        );
      }
      await q(
        `INSERT INTO leads (id, company_id, owner_id, first_name, last_name, status, score, industry, company_name, estimated_value)
         SELECT id, $1, owner, 'P', 'L', status, score, industry, name, value
           FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::int[], $6::text[], $7::text[], $8::numeric[]) AS x(id, owner, status, score, industry, name, value)`,
        [
          c.id,
          c.leads.map((l) => l.id),
          c.leads.map((l) => l.ownerId),
          c.leads.map((l) => l.status),
          c.leads.map((l) => l.score),
          c.leads.map((l) => l.industry),
          c.leads.map((l) => l.companyName),
          c.leads.map((l) => l.estimatedValue),
        ],
      );
      for (const s of c.shares) {
        await q(
          'INSERT INTO record_shares (company_id, object_type, record_id, grantee_type, grantee_id, access_level) VALUES ($1, $2, $3, $4, $5, $6)',
          [c.id, 'LEAD', s.leadId, s.type, s.id, s.access],
        );
      }
    }
  });
  afterAll(() => t.stop());

  async function readableThroughApi(user: User): Promise<Set<string>> {
    const ids = new Set<string>();
    for (let page = 1; ; page++) {
      const res = await t.gql(
        'query($page: Int!) { leads(page: $page, pageSize: 200, sortBy: "score", sortDirection: ASC) { total items { id } } }',
        { page },
        user.token,
      );
      expect(res.errors).toBeUndefined();
      const items = res.data!.leads.items as Array<{ id: string }>;
      items.forEach((item) => ids.add(item.id));
      if (page * 200 >= res.data!.leads.total) break;
    }
    return ids;
  }

  it('the API returns exactly the leads the reference evaluator allows, for every user', async () => {
    let compared = 0;
    let nonTrivial = 0;
    for (const c of companies) {
      for (const user of c.users) {
        const expected = new Set(c.leads.filter((l) => allows(c, user, l, 'READ')).map((l) => l.id));
        const actual = await readableThroughApi(user);
        expect([...actual].filter((id) => !expected.has(id))).toEqual([]); // nothing leaks
        expect([...expected].filter((id) => !actual.has(id))).toEqual([]); // nothing is missing
        compared++;
        if (expected.size > 0 && expected.size < c.leads.length) nonTrivial++;
      }
    }
    expect(compared).toBeGreaterThanOrEqual(30);
    // Most users must see some but not all leads, or the comparison proves little.
    expect(nonTrivial).toBeGreaterThan(compared / 2);
  });

  it('the edit predicate and the single-record checks agree with the reference evaluator too', async () => {
    for (const c of companies) {
      for (const user of c.users.slice(0, 8)) {
        const principal = {
          userId: user.id,
          companyId: c.id,
          roleId: user.roleId,
          isAdmin: user.isAdmin,
          tokenExpiresAt: Date.now() / 1000 + 600,
        };
        const predicate = await t.app.services.visibility.editPredicate(principal, 'LEAD', 'r');
        const rows = await t.app.dataSource
          .createQueryBuilder()
          .select('r.id', 'id')
          .from('leads', 'r')
          .where(predicate.sql, predicate.params)
          .getRawMany<{ id: string }>();
        const expected = c.leads
          .filter((l) => allows(c, user, l, 'EDIT'))
          .map((l) => l.id)
          .sort();
        expect(rows.map((r) => r.id).sort()).toEqual(expected);

        const sample = c.leads.slice(0, 60);
        const entities = await t.app.dataSource.query<
          Array<{
            id: string;
            owner_id: string;
            status: string;
            score: number;
            industry: string | null;
            company_name: string | null;
          }>
        >('SELECT id, owner_id, status, score, industry, company_name FROM leads WHERE id = ANY($1)', [
          sample.map((l) => l.id),
        ]);
        const records = entities.map((e) => ({
          id: e.id,
          companyId: c.id,
          ownerId: e.owner_id,
          status: e.status,
          score: e.score,
          industry: e.industry,
          companyName: e.company_name,
        }));
        const readable = await t.app.services.visibility.readableIds(principal, 'LEAD', records);
        expect([...readable].sort()).toEqual(
          sample
            .filter((l) => allows(c, user, l, 'READ'))
            .map((l) => l.id)
            .sort(),
        );
      }
    }
  });
});
