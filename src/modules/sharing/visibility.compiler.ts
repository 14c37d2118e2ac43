import type { DataSource } from 'typeorm';
import type { RecordType } from '../kernel';
import type { CriteriaCondition } from './criteria';
import type { AccessLevel, OrgWideAccess } from './sharing.entities';
import {
  ancestorsOrSelf,
  descendantsOf,
  groupsContaining,
  usersInGroup,
  type CompanySharingModel,
  type CompiledVisibility,
} from './sharing.model';

interface RuleRow {
  id: string;
  rule_type: 'OWNER' | 'CRITERIA';
  source_type: 'ROLE' | 'ROLE_AND_SUBORDINATES' | 'GROUP' | null;
  source_id: string | null;
  criteria: CriteriaCondition[] | null;
  access_level: AccessLevel;
}

/** Reads the sharing inputs from Postgres and compiles them; pure functions do the set logic. */
export class VisibilityCompiler {
  constructor(private readonly dataSource: DataSource) {}

  async loadModel(companyId: string): Promise<CompanySharingModel> {
    const [defaults, roles, members, users] = await Promise.all([
      this.dataSource.query<Array<{ object_type: RecordType; access_level: OrgWideAccess }>>(
        'SELECT object_type, access_level FROM org_wide_defaults WHERE company_id = $1',
        [companyId],
      ),
      this.dataSource.query<Array<{ id: string; parent_id: string | null }>>(
        'SELECT id, parent_id FROM roles WHERE company_id = $1',
        [companyId],
      ),
      this.dataSource.query<
        Array<{
          group_id: string;
          member_type: 'USER' | 'ROLE' | 'ROLE_AND_SUBORDINATES' | 'GROUP';
          member_id: string;
        }>
      >('SELECT group_id, member_type, member_id FROM group_members WHERE company_id = $1', [companyId]),
      this.dataSource.query<Array<{ id: string; role_id: string | null; is_admin: boolean }>>(
        'SELECT id, role_id, is_admin FROM users WHERE company_id = $1',
        [companyId],
      ),
    ]);
    const groupMembers: CompanySharingModel['groupMembers'] = {};
    for (const member of members)
      (groupMembers[member.group_id] ??= []).push({ type: member.member_type, id: member.member_id });
    return {
      orgWideDefaults: Object.fromEntries(defaults.map((d) => [d.object_type, d.access_level])),
      roleParents: Object.fromEntries(roles.map((r) => [r.id, r.parent_id])),
      groupMembers,
      users: Object.fromEntries(users.map((u) => [u.id, { roleId: u.role_id, isAdmin: u.is_admin }])),
    };
  }

  async compile(
    model: CompanySharingModel,
    companyId: string,
    userId: string,
    objectType: RecordType,
  ): Promise<CompiledVisibility> {
    // Long by choice: the one place that turns a principal's sharing (defaults, role tree, groups, rules, shares) into
    // SQL; every branch adds to the same predicate and parameter list, and reads best as one decision.
    const user = model.users[userId];
    const owd = model.orgWideDefaults[objectType] ?? 'PRIVATE';
    const base: CompiledVisibility = {
      companyId,
      userId,
      objectType,
      isAdmin: false,
      readAll: false,
      editAll: false,
      hierarchyOwnerIds: [userId],
      ruleEditOwnerIds: [],
      ruleReadOwnerIds: [],
      criteria: [],
      groupIds: [],
      manualShares: false,
    };
    if (!user) return base; // an unknown user sees nothing but what they own (which is nothing)
    if (user.isAdmin) return { ...base, isAdmin: true, readAll: true, editAll: true };

    const subordinates = descendantsOf(model.roleParents);
    const hierarchy = new Set([userId]);
    if (user.roleId) {
      const below = subordinates(user.roleId);
      for (const [otherId, other] of Object.entries(model.users))
        if (other.roleId && below.has(other.roleId)) hierarchy.add(otherId);
    }
    const groups = groupsContaining(model, userId);
    const roleLine = [...ancestorsOrSelf(model.roleParents, user.roleId)];

    const [rules, shares] = await Promise.all([
      this.dataSource.query<RuleRow[]>(
        `SELECT id, rule_type, source_type, source_id, criteria, access_level
           FROM sharing_rules
          WHERE company_id = $1 AND object_type = $2
            AND ((target_type = 'USER' AND target_id = $3)
              OR (target_type = 'ROLE' AND target_id = $4)
              OR (target_type = 'ROLE_AND_SUBORDINATES' AND target_id = ANY($5::uuid[]))
              OR (target_type = 'GROUP' AND target_id = ANY($6::uuid[])))`,
        [companyId, objectType, userId, user.roleId, roleLine, [...groups]],
      ),
      this.dataSource.query<Array<{ found: boolean }>>(
        `SELECT EXISTS (SELECT 1 FROM record_shares
                         WHERE company_id = $1 AND object_type = $2
                           AND ((grantee_type = 'USER' AND grantee_id = $3) OR (grantee_type = 'GROUP' AND grantee_id = ANY($4::uuid[])))) AS found`,
        [companyId, objectType, userId, [...groups]],
      ),
    ]);

    const editOwners = new Set<string>();
    const readOwners = new Set<string>();
    const criteria: CompiledVisibility['criteria'] = [];
    for (const rule of rules) {
      if (rule.rule_type === 'CRITERIA') {
        criteria.push({ ruleId: rule.id, access: rule.access_level, conditions: rule.criteria ?? [] });
        continue;
      }
      const owners = this.sourceMembers(model, rule, subordinates);
      const into = rule.access_level === 'EDIT' ? editOwners : readOwners;
      owners.forEach((owner) => into.add(owner));
    }
    for (const owner of hierarchy) {
      editOwners.delete(owner);
      readOwners.delete(owner);
    }
    for (const owner of editOwners) readOwners.delete(owner);

    return {
      ...base,
      readAll: owd !== 'PRIVATE',
      editAll: owd === 'PUBLIC_READ_WRITE',
      hierarchyOwnerIds: [...hierarchy],
      ruleEditOwnerIds: [...editOwners],
      ruleReadOwnerIds: [...readOwners],
      criteria,
      groupIds: [...groups],
      manualShares: shares[0]?.found ?? false,
    };
  }

  private sourceMembers(
    model: CompanySharingModel,
    rule: RuleRow,
    subordinates: (roleId: string) => Set<string>,
  ): Set<string> {
    if (!rule.source_id) return new Set();
    if (rule.source_type === 'GROUP') return usersInGroup(model, rule.source_id, subordinates);
    const roles = new Set([rule.source_id]);
    if (rule.source_type === 'ROLE_AND_SUBORDINATES')
      subordinates(rule.source_id).forEach((role) => roles.add(role));
    const owners = new Set<string>();
    for (const [userId, user] of Object.entries(model.users))
      if (user.roleId && roles.has(user.roleId)) owners.add(userId);
    return owners;
  }
}
