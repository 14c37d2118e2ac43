import type { DataSource, EntityManager } from 'typeorm';
import { assertUuid, ForbiddenError, NotFoundError, ValidationError } from '../../platform/errors/app-error';
import type { AuditService } from '../audit';
import type { IdentityService, Principal } from '../identity';
import { RecordType } from '../kernel';
import { validateCriteria, type CriteriaCondition } from './criteria';
import {
  RecordShareEntity,
  SharingRuleEntity,
  type AccessLevel,
  type OrgWideAccess,
} from './sharing.entities';
import type { GranteeType, MemberType, RuleType, SourceType, TargetType } from './sharing.enums';
import type { VisibilityCache } from './visibility.cache';
import type { VisibilityService, WriteVisibility } from './visibility.service';

/** Record tables by type: an allow-list, never built from input. */
const RECORD_TABLE: Record<RecordType, string> = { LEAD: 'leads', DEAL: 'deals', ACCOUNT: 'accounts' };
const REFERENCE_TABLE: Record<TargetType | SourceType | GranteeType, string> = {
  USER: 'users',
  ROLE: 'roles',
  ROLE_AND_SUBORDINATES: 'roles',
  GROUP: 'groups',
};

export interface SharingRuleCommand {
  objectType: RecordType;
  name: string;
  ruleType: RuleType;
  source?: { type: SourceType; id: string } | null;
  criteria?: CriteriaCondition[] | null;
  target: { type: TargetType; id: string };
  accessLevel: AccessLevel;
}

export interface RecordShareCommand {
  objectType: RecordType;
  recordId: string;
  granteeType: GranteeType;
  granteeId: string;
  accessLevel?: AccessLevel;
}

export interface SharingServiceDeps {
  dataSource: DataSource;
  audit: AuditService;
  identity: IdentityService;
  visibility: VisibilityService;
  cache: VisibilityCache;
}

/**
 * Manages the inputs of visibility (rules, defaults, manual shares, roles, groups, user access). Every change writes an
 * audit row in its transaction and, once committed, invalidates cached visibility in every process.
 */
export class SharingService {
  constructor(private readonly deps: SharingServiceDeps) {}

  async listRules(principal: Principal, objectType: RecordType): Promise<SharingRuleEntity[]> {
    await this.requireAdmin(principal, 'view sharing rules');
    return this.deps.dataSource.getRepository(SharingRuleEntity).find({
      where: { companyId: principal.companyId, objectType },
      order: { createdAt: 'ASC', id: 'ASC' },
    });
  }

  async createRule(principal: Principal, command: SharingRuleCommand): Promise<SharingRuleEntity> {
    await this.requireAdmin(principal, 'manage sharing rules');
    return this.changeRules(principal, async (manager) => {
      const values = await this.validateRule(manager, principal, command);
      const saved = await manager.save(
        SharingRuleEntity,
        manager.create(SharingRuleEntity, { ...values, companyId: principal.companyId }),
      );
      await this.audit(manager, principal, 'SHARING_RULE_CREATE', 'SHARING_RULE', saved.id, values);
      return saved;
    });
  }

  async updateRule(
    principal: Principal,
    id: string,
    command: SharingRuleCommand,
  ): Promise<SharingRuleEntity> {
    await this.requireAdmin(principal, 'manage sharing rules');
    assertUuid('id', id);
    return this.changeRules(principal, async (manager) => {
      const current = await manager.findOneBy(SharingRuleEntity, { id, companyId: principal.companyId });
      if (!current) throw new NotFoundError('SharingRule', id);
      const values = await this.validateRule(manager, principal, command);
      const saved = await manager.save(SharingRuleEntity, manager.merge(SharingRuleEntity, current, values));
      await this.audit(manager, principal, 'SHARING_RULE_UPDATE', 'SHARING_RULE', id, values);
      return saved;
    });
  }

  async deleteRule(principal: Principal, id: string): Promise<boolean> {
    await this.requireAdmin(principal, 'manage sharing rules');
    assertUuid('id', id);
    return this.changeRules(principal, async (manager) => {
      const result = await manager.delete(SharingRuleEntity, { id, companyId: principal.companyId });
      if (!result.affected) throw new NotFoundError('SharingRule', id);
      await this.audit(manager, principal, 'SHARING_RULE_DELETE', 'SHARING_RULE', id, null);
      return true;
    });
  }

  async setOrgWideDefault(principal: Principal, objectType: RecordType, accessLevel: OrgWideAccess) {
    await this.requireAdmin(principal, 'change org-wide defaults');
    return this.changeRules(principal, async (manager) => {
      await manager.query(
        `INSERT INTO org_wide_defaults (company_id, object_type, access_level) VALUES ($1, $2, $3)
         ON CONFLICT (company_id, object_type) DO UPDATE SET access_level = EXCLUDED.access_level, updated_at = now()`,
        [principal.companyId, objectType, accessLevel],
      );
      await this.audit(manager, principal, 'ORG_WIDE_DEFAULT_SET', 'ORG_WIDE_DEFAULT', null, {
        objectType,
        accessLevel,
      });
      return { objectType, accessLevel };
    });
  }

  async shareRecord(principal: Principal, command: RecordShareCommand): Promise<RecordShareEntity> {
    const accessLevel = command.accessLevel ?? 'READ';
    assertUuid('input.recordId', command.recordId);
    const visibility = await this.deps.visibility.forWrite(principal, command.objectType);
    const share = await this.deps.dataSource.transaction(async (manager) => {
      await this.assertMayShare(manager, principal, visibility, command);
      await this.assertReference(
        manager,
        principal,
        command.granteeType,
        command.granteeId,
        'input.granteeId',
      );
      const [row] = await manager.query<Array<{ id: string }>>(
        `INSERT INTO record_shares (company_id, object_type, record_id, grantee_type, grantee_id, access_level, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (object_type, record_id, grantee_type, grantee_id) DO UPDATE SET access_level = EXCLUDED.access_level
         RETURNING id`,
        [
          principal.companyId,
          command.objectType,
          command.recordId,
          command.granteeType,
          command.granteeId,
          accessLevel,
          principal.userId,
        ],
      );
      await this.audit(manager, principal, 'RECORD_SHARE', command.objectType, command.recordId, {
        ...command,
        accessLevel,
      });
      return manager.findOneByOrFail(RecordShareEntity, { id: row!.id });
    });
    await this.deps.cache.invalidateShares(principal.companyId);
    return share;
  }

  /**
   * The compiled predicate checks record_shares live, so reads narrow at once; the version bump after it changes the
   * visibility key, so results cached under the old key are not served again.
   */
  async unshareRecord(principal: Principal, command: RecordShareCommand): Promise<boolean> {
    assertUuid('input.recordId', command.recordId);
    assertUuid('input.granteeId', command.granteeId);
    const visibility = await this.deps.visibility.forWrite(principal, command.objectType);
    const removed = await this.deps.dataSource.transaction(async (manager) => {
      await this.assertMayShare(manager, principal, visibility, command);
      const result = await manager.delete(RecordShareEntity, {
        companyId: principal.companyId,
        objectType: command.objectType,
        recordId: command.recordId,
        granteeType: command.granteeType,
        granteeId: command.granteeId,
      });
      if (!result.affected) return false;
      await this.audit(manager, principal, 'RECORD_UNSHARE', command.objectType, command.recordId, command);
      return true;
    });
    if (removed) await this.deps.cache.invalidateShares(principal.companyId);
    return removed;
  }

  async createRole(
    principal: Principal,
    name: string,
    parentId: string | null | undefined,
  ): Promise<{ id: string; name: string; parentId: string | null }> {
    await this.requireAdmin(principal, 'change the role hierarchy');
    return this.changeRules(principal, async (manager) => {
      if (parentId !== null && parentId !== undefined)
        await this.assertReference(manager, principal, 'ROLE', parentId, 'input.parentId');
      const [row] = await manager.query<Array<{ id: string }>>(
        'INSERT INTO roles (company_id, name, parent_id) VALUES ($1, $2, $3) RETURNING id',
        [principal.companyId, name, parentId ?? null],
      );
      await this.audit(manager, principal, 'ROLE_CREATE', 'ROLE', row!.id, {
        name,
        parentId: parentId ?? null,
      });
      return { id: row!.id, name, parentId: parentId ?? null };
    });
  }

  async updateRole(principal: Principal, id: string, name: string, parentId: string | null | undefined) {
    await this.requireAdmin(principal, 'change the role hierarchy');
    assertUuid('id', id);
    return this.changeRules(principal, async (manager) => {
      const roles = await manager.query<Array<{ id: string; parent_id: string | null }>>(
        'SELECT id, parent_id FROM roles WHERE company_id = $1 FOR UPDATE',
        [principal.companyId],
      );
      const parents = new Map(roles.map((r) => [r.id, r.parent_id]));
      if (!parents.has(id)) throw new NotFoundError('Role', id);
      const newParent = parentId === undefined ? (parents.get(id) ?? null) : parentId;
      if (newParent !== null) {
        assertUuid('input.parentId', newParent);
        if (!parents.has(newParent))
          throw ValidationError.single('input.parentId', 'must be the id of a role in your company');
        for (let at: string | null | undefined = newParent; at; at = parents.get(at)) {
          if (at === id)
            throw ValidationError.single('input.parentId', 'would create a cycle in the role hierarchy');
        }
      }
      await manager.query('UPDATE roles SET name = $3, parent_id = $4 WHERE id = $1 AND company_id = $2', [
        id,
        principal.companyId,
        name,
        newParent,
      ]);
      await this.audit(manager, principal, 'ROLE_UPDATE', 'ROLE', id, { name, parentId: newParent });
      return { id, name, parentId: newParent };
    });
  }

  async createGroup(principal: Principal, name: string): Promise<{ id: string; name: string }> {
    await this.requireAdmin(principal, 'manage groups');
    if (name.length < 1 || name.length > 200)
      throw ValidationError.single('name', 'must be 1 to 200 characters');
    return this.changeRules(principal, async (manager) => {
      const [row] = await manager.query<Array<{ id: string }>>(
        'INSERT INTO groups (company_id, name) VALUES ($1, $2) RETURNING id',
        [principal.companyId, name],
      );
      await this.audit(manager, principal, 'GROUP_CREATE', 'GROUP', row!.id, { name });
      return { id: row!.id, name };
    });
  }

  async addGroupMember(
    principal: Principal,
    groupId: string,
    memberType: MemberType,
    memberId: string,
  ): Promise<boolean> {
    await this.requireAdmin(principal, 'manage groups');
    return this.changeRules(principal, async (manager) => {
      await this.assertReference(manager, principal, 'GROUP', groupId, 'input.groupId');
      await this.assertReference(manager, principal, memberType, memberId, 'input.memberId');
      if (memberType === 'GROUP' && memberId === groupId)
        throw ValidationError.single('input.memberId', 'a group cannot contain itself');
      await manager.query(
        `INSERT INTO group_members (company_id, group_id, member_type, member_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (group_id, member_type, member_id) DO NOTHING`,
        [principal.companyId, groupId, memberType, memberId],
      );
      await this.audit(manager, principal, 'GROUP_MEMBER_ADD', 'GROUP', groupId, { memberType, memberId });
      return true;
    });
  }

  async removeGroupMember(
    principal: Principal,
    groupId: string,
    memberType: MemberType,
    memberId: string,
  ): Promise<boolean> {
    await this.requireAdmin(principal, 'manage groups');
    assertUuid('input.groupId', groupId);
    assertUuid('input.memberId', memberId);
    return this.changeRules(principal, async (manager) => {
      const removed = await manager.query<[unknown[], number]>(
        'DELETE FROM group_members WHERE company_id = $1 AND group_id = $2 AND member_type = $3 AND member_id = $4',
        [principal.companyId, groupId, memberType, memberId],
      );
      if (!removed[1]) return false;
      await this.audit(manager, principal, 'GROUP_MEMBER_REMOVE', 'GROUP', groupId, { memberType, memberId });
      return true;
    });
  }

  async updateUserAccess(
    principal: Principal,
    userId: string,
    change: { roleId?: string | null; isAdmin?: boolean },
  ) {
    await this.requireAdmin(principal, "change a user's role or admin flag");
    assertUuid('userId', userId);
    const updated = await this.changeRules(principal, async (manager) => {
      await this.assertReference(manager, principal, 'USER', userId, 'userId');
      if (change.roleId)
        await this.assertReference(manager, principal, 'ROLE', change.roleId, 'input.roleId');
      // An UPDATE returns [rows, affected count] through TypeORM.
      const [[row]] = await manager.query<
        [Array<{ id: string; role_id: string | null; is_admin: boolean }>, number]
      >(
        `UPDATE users SET role_id = CASE WHEN $3 THEN $4::uuid ELSE role_id END, is_admin = COALESCE($5, is_admin), updated_at = now()
          WHERE id = $1 AND company_id = $2 RETURNING id, role_id, is_admin`,
        [
          userId,
          principal.companyId,
          change.roleId !== undefined,
          change.roleId ?? null,
          change.isAdmin ?? null,
        ],
      );
      await this.audit(manager, principal, 'USER_ACCESS_UPDATE', 'USER', userId, change);
      return row!;
    });
    await this.deps.identity.invalidateUsersAfterCommit(principal.companyId, [userId]);
    const [user] = await this.deps.identity.usersByIds(principal.companyId, [updated.id]);
    return user!;
  }

  /**
   * Deactivates a user of the caller's company: from the commit on, every gateway refuses their tokens (401). Their
   * records, shares and audit history stay.
   */
  async deactivateUser(principal: Principal, userId: string) {
    await this.requireAdmin(principal, 'deactivate users');
    assertUuid('userId', userId);
    if (userId === principal.userId)
      throw ValidationError.single('userId', 'must not be yourself (ask another admin)');
    await this.changeRules(principal, async (manager) => {
      const [rows] = await manager.query<[Array<{ id: string }>, number]>(
        `UPDATE users SET deactivated_at = COALESCE(deactivated_at, now()), updated_at = now()
          WHERE id = $1 AND company_id = $2 RETURNING id`,
        [userId, principal.companyId],
      );
      if (rows.length === 0) throw new NotFoundError('User', userId);
      await this.audit(manager, principal, 'USER_DEACTIVATE', 'USER', userId, null);
    });
    await this.deps.identity.invalidateUsersAfterCommit(principal.companyId, [userId]);
    const [user] = await this.deps.identity.usersByIds(principal.companyId, [userId]);
    return user!;
  }

  /** Runs a change to visibility inputs in a transaction, then invalidates the company's cached visibility. */
  private async changeRules<T>(
    principal: Principal,
    work: (manager: EntityManager) => Promise<T>,
  ): Promise<T> {
    const result = await this.deps.dataSource.transaction(work);
    await this.deps.cache.invalidateRules(principal.companyId);
    return result;
  }

  private async validateRule(manager: EntityManager, principal: Principal, command: SharingRuleCommand) {
    await this.assertReference(manager, principal, command.target.type, command.target.id, 'input.target.id');
    if (command.ruleType === 'OWNER') {
      if (!command.source) throw ValidationError.single('input.source', 'is required for OWNER rules');
      if (command.criteria) throw ValidationError.single('input.criteria', 'must be empty for OWNER rules');
      await this.assertReference(
        manager,
        principal,
        command.source.type,
        command.source.id,
        'input.source.id',
      );
    } else {
      if (command.source) throw ValidationError.single('input.source', 'must be empty for CRITERIA rules');
      if (!command.criteria) throw ValidationError.single('input.criteria', 'is required for CRITERIA rules');
      validateCriteria(command.objectType, command.criteria);
    }
    return {
      objectType: command.objectType,
      name: command.name,
      ruleType: command.ruleType,
      sourceType: command.source?.type ?? null,
      sourceId: command.source?.id ?? null,
      criteria:
        command.ruleType === 'CRITERIA'
          ? command.criteria!.map(({ field, operator, value }) => ({ field, operator, value }))
          : null,
      targetType: command.target.type,
      targetId: command.target.id,
      accessLevel: command.accessLevel,
    };
  }

  /** The id must name a user, role or group of the caller's company (never another tenant's). */
  private async assertReference(
    manager: EntityManager,
    principal: Principal,
    type: TargetType | SourceType | GranteeType,
    id: string,
    field: string,
  ): Promise<void> {
    assertUuid(field, id);
    const table = REFERENCE_TABLE[type];
    const rows = await manager.query<unknown[]>(`SELECT 1 FROM ${table} WHERE id = $1 AND company_id = $2`, [
      id,
      principal.companyId,
    ]);
    if (rows.length === 0)
      throw ValidationError.single(field, `must be the id of a ${table.slice(0, -1)} in your company`);
  }

  private async assertMayShare(
    manager: EntityManager,
    principal: Principal,
    visibility: WriteVisibility,
    command: RecordShareCommand,
  ): Promise<void> {
    // Readability through the full predicate (criteria rules included), so a hidden record answers NOT_FOUND.
    const readable = visibility.readPredicate('r');
    const record = await manager
      .createQueryBuilder()
      .select(['r.id AS id', 'r.owner_id AS owner_id'])
      .from(RECORD_TABLE[command.objectType], 'r')
      .where('r.id = :recordId', { recordId: command.recordId })
      .andWhere(readable.sql, readable.params)
      .getRawOne<{ id: string; owner_id: string }>();
    if (!record) throw new NotFoundError(command.objectType, command.recordId);
    const owned = { id: record.id, companyId: principal.companyId, ownerId: record.owner_id };
    if (!visibility.canShare(owned)) {
      throw new ForbiddenError('Only the record owner, their superiors and admins may share it');
    }
  }

  /** Read from Postgres, not the principal's cached copy: a just-demoted admin must not manage sharing. */
  private async requireAdmin(principal: Principal, what: string): Promise<void> {
    const [user] = await this.deps.dataSource.query<Array<{ is_admin: boolean }>>(
      'SELECT is_admin FROM users WHERE id = $1 AND company_id = $2',
      [principal.userId, principal.companyId],
    );
    if (!user?.is_admin) throw new ForbiddenError(`Only company admins may ${what}`);
  }

  private audit(
    manager: EntityManager,
    principal: Principal,
    action: string,
    objectType: string,
    objectId: string | null,
    changes: unknown,
  ) {
    return this.deps.audit.record(manager, principal, { action, objectType, objectId, changes });
  }
}
