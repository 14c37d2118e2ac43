import type { RecordType } from '../kernel';
import type { CriteriaCondition } from './criteria';
import type { AccessLevel, OrgWideAccess } from './sharing.entities';

/** The company-wide inputs of visibility: defaults, role tree, groups, who holds which role. Cached per company. */
export interface CompanySharingModel {
  orgWideDefaults: Partial<Record<RecordType, OrgWideAccess>>;
  /** role id -> parent role id (null for a root). */
  roleParents: Record<string, string | null>;
  /** group id -> its members. */
  groupMembers: Record<
    string,
    Array<{ type: 'USER' | 'ROLE' | 'ROLE_AND_SUBORDINATES' | 'GROUP'; id: string }>
  >;
  /** user id -> role id and admin flag. */
  users: Record<string, { roleId: string | null; isAdmin: boolean }>;
}

/**
 * What one user may see of one record type, compiled once and cached: everything the SQL predicate and the
 * single-record checks need, with no reference to rules that do not concern this user.
 */
export interface CompiledVisibility {
  companyId: string;
  userId: string;
  objectType: RecordType;
  /** A company admin (clause 1), as the sharing model last saw them. */
  isAdmin: boolean;
  /** Company admin or PUBLIC_READ/PUBLIC_READ_WRITE default. */
  readAll: boolean;
  /** Company admin or PUBLIC_READ_WRITE default. */
  editAll: boolean;
  /** The user and everyone in roles below theirs: full access (ownership and hierarchy). */
  hierarchyOwnerIds: string[];
  /** Owners whose records owner-based rules share with the user, by access. */
  ruleEditOwnerIds: string[];
  ruleReadOwnerIds: string[];
  /** Criteria rules whose target includes the user. */
  criteria: Array<{ ruleId: string; access: AccessLevel; conditions: CriteriaCondition[] }>;
  /** Groups that contain the user, directly or through roles and nested groups. */
  groupIds: string[];
  /** Whether any manual share names the user or one of those groups for this record type. */
  manualShares: boolean;
}

export function descendantsOf(roleParents: Record<string, string | null>): (roleId: string) => Set<string> {
  const children = new Map<string, string[]>();
  for (const [role, parent] of Object.entries(roleParents)) {
    if (parent) children.set(parent, [...(children.get(parent) ?? []), role]);
  }
  return (roleId) => {
    const found = new Set<string>();
    const stack = [...(children.get(roleId) ?? [])];
    while (stack.length > 0) {
      const role = stack.pop()!;
      if (found.has(role)) continue;
      found.add(role);
      stack.push(...(children.get(role) ?? []));
    }
    return found;
  };
}

export function ancestorsOrSelf(
  roleParents: Record<string, string | null>,
  roleId: string | null,
): Set<string> {
  const found = new Set<string>();
  let current = roleId;
  while (current && !found.has(current)) {
    found.add(current);
    current = roleParents[current] ?? null;
  }
  return found;
}

/** Groups containing the user, through USER, ROLE, ROLE_AND_SUBORDINATES and nested GROUP members (to a fixed point). */
export function groupsContaining(model: CompanySharingModel, userId: string): Set<string> {
  const roleId = model.users[userId]?.roleId ?? null;
  const roleLine = ancestorsOrSelf(model.roleParents, roleId);
  const groups = new Set<string>();
  let changed = true;
  while (changed) {
    changed = false;
    for (const [groupId, members] of Object.entries(model.groupMembers)) {
      if (groups.has(groupId)) continue;
      const contains = members.some(
        (m) =>
          (m.type === 'USER' && m.id === userId) ||
          (m.type === 'ROLE' && m.id === roleId) ||
          (m.type === 'ROLE_AND_SUBORDINATES' && roleLine.has(m.id)) ||
          (m.type === 'GROUP' && groups.has(m.id)),
      );
      if (contains) {
        groups.add(groupId);
        changed = true;
      }
    }
  }
  return groups;
}

/** Users who are members of a group, expanding roles, role subtrees and nested groups (cycles are safe). */
export function usersInGroup(
  model: CompanySharingModel,
  groupId: string,
  subordinates: (roleId: string) => Set<string>,
): Set<string> {
  const users = new Set<string>();
  const roles = new Set<string>();
  const seen = new Set<string>();
  const stack = [groupId];
  while (stack.length > 0) {
    const current = stack.pop()!;
    if (seen.has(current)) continue;
    seen.add(current);
    for (const member of model.groupMembers[current] ?? []) {
      if (member.type === 'USER') users.add(member.id);
      else if (member.type === 'ROLE') roles.add(member.id);
      else if (member.type === 'ROLE_AND_SUBORDINATES') {
        roles.add(member.id);
        subordinates(member.id).forEach((role) => roles.add(role));
      } else stack.push(member.id);
    }
  }
  if (roles.size > 0) {
    for (const [userId, user] of Object.entries(model.users))
      if (user.roleId && roles.has(user.roleId)) users.add(userId);
  }
  return users;
}
