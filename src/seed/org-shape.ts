import type { SeededRandom } from './random';

const LEVEL_NAMES = ['CEO', 'VP', 'Director', 'Senior Manager', 'Manager', 'Team Lead', 'Senior Rep', 'Rep'];

export interface SeedRole {
  id: string;
  name: string;
  parentId: string | null;
  level: number;
}

/** Deeper trees for bigger companies: 3 levels for a handful of users, 8 (255 roles) from ~256 users up. */
export function roleDepthFor(users: number): number {
  return Math.min(8, Math.max(3, Math.ceil(Math.log2(users + 1)) - 1));
}

/** A binary role tree `depth` levels deep, parents before children. */
export function buildRoleTree(random: SeededRandom, depth: number): SeedRole[] {
  const roles: SeedRole[] = [];
  let level: SeedRole[] = [{ id: random.uuid(), name: LEVEL_NAMES[0]!, parentId: null, level: 0 }];
  roles.push(...level);
  for (let l = 1; l < depth; l++) {
    const next: SeedRole[] = [];
    level.forEach((parent, i) => {
      for (let child = 0; child < 2; child++) {
        next.push({
          id: random.uuid(),
          name: `${LEVEL_NAMES[Math.min(l, LEVEL_NAMES.length - 1)]} ${i * 2 + child + 1}`,
          parentId: parent.id,
          level: l,
        });
      }
    });
    roles.push(...next);
    level = next;
  }
  return roles;
}

/** Most people sit low in the tree: a role is picked with weight doubling per level. */
export function pickRole(random: SeededRandom, roles: readonly SeedRole[]): SeedRole {
  return random.weighted(
    roles,
    roles.map((role) => (role.level === 0 ? 0 : 2 ** role.level)),
  );
}

export interface SeedGroupMember {
  type: 'USER' | 'ROLE' | 'ROLE_AND_SUBORDINATES' | 'GROUP';
  id: string;
}

/** Public groups: a role subtree, a few named users, and now and then an earlier group nested inside. */
export function buildGroups(
  random: SeededRandom,
  roles: readonly SeedRole[],
  userIds: readonly string[],
): Array<{ id: string; name: string; members: SeedGroupMember[] }> {
  const count = Math.max(1, Math.floor(userIds.length / 25));
  const groups: Array<{ id: string; name: string; members: SeedGroupMember[] }> = [];
  for (let g = 0; g < count; g++) {
    const members: SeedGroupMember[] = [
      {
        type: 'ROLE_AND_SUBORDINATES',
        id: random.pick(roles.filter((r) => r.level > 0).length ? roles.filter((r) => r.level > 0) : roles)
          .id,
      },
    ];
    const named = new Set<string>();
    for (let k = 0; k < 2; k++) named.add(random.pick(userIds));
    named.forEach((id) => members.push({ type: 'USER', id }));
    if (groups.length > 0 && random.next() < 0.3) members.push({ type: 'GROUP', id: random.pick(groups).id });
    groups.push({ id: random.uuid(), name: g === 0 ? 'Sales Leadership' : `Team ${g}`, members });
  }
  return groups;
}

export interface SeedRule {
  objectType: 'LEAD' | 'DEAL' | 'ACCOUNT';
  ruleType: 'OWNER' | 'CRITERIA';
  sourceType: 'ROLE' | 'ROLE_AND_SUBORDINATES' | 'GROUP' | null;
  sourceId: string | null;
  criteria: string | null;
  targetType: 'USER' | 'ROLE' | 'ROLE_AND_SUBORDINATES' | 'GROUP';
  targetId: string;
  accessLevel: 'READ' | 'EDIT';
}

const CRITERIA_SAMPLES: Record<SeedRule['objectType'], (random: SeededRandom) => object[]> = {
  LEAD: (random) => [
    { field: 'status', operator: 'eq', value: random.pick(['NEW', 'QUALIFIED', 'CONTACTED']) },
  ],
  DEAL: (random) => [{ field: 'amount', operator: 'gte', value: random.pick([10_000, 50_000, 100_000]) }],
  ACCOUNT: (random) => [
    { field: 'industry', operator: 'in', value: [random.pick(['TECHNOLOGY', 'FINANCE']), 'RETAIL'] },
  ],
};

/** A mix like real orgs: mostly owner-based rules, some criteria rules, targets of every kind. */
export function buildRule(
  random: SeededRandom,
  roles: readonly SeedRole[],
  userIds: readonly string[],
  groupIds: readonly string[],
): SeedRule {
  const objectType = random.weighted(['LEAD', 'DEAL', 'ACCOUNT'] as const, [5, 3, 2]);
  const targetType = random.weighted(
    ['USER', 'ROLE', 'ROLE_AND_SUBORDINATES', 'GROUP'] as const,
    [3, 3, 2, 2],
  );
  const targetId =
    targetType === 'USER'
      ? random.pick(userIds)
      : targetType === 'GROUP'
        ? random.pick(groupIds)
        : random.pick(roles).id;
  const accessLevel = random.next() < 0.3 ? 'EDIT' : 'READ';
  if (random.next() < 0.2) {
    return {
      objectType,
      ruleType: 'CRITERIA',
      sourceType: null,
      sourceId: null,
      criteria: JSON.stringify(CRITERIA_SAMPLES[objectType](random)),
      targetType,
      targetId,
      accessLevel,
    };
  }
  const sourceType = random.weighted(['ROLE', 'ROLE_AND_SUBORDINATES', 'GROUP'] as const, [4, 3, 1]);
  const sourceId = sourceType === 'GROUP' ? random.pick(groupIds) : random.pick(roles).id;
  return {
    objectType,
    ruleType: 'OWNER',
    sourceType,
    sourceId,
    criteria: null,
    targetType,
    targetId,
    accessLevel,
  };
}
