import type { DataSource, EntityManager } from 'typeorm';
import { assertUuid, NotFoundError, ValidationError } from '../../platform/errors/app-error';
import type { AuditService } from '../audit';
import type { Principal } from '../kernel';
import { GroupEntity, GroupMemberEntity, type GroupMemberType } from './group.entity';
import type { IdentityService } from './identity.service';
import { RoleEntity } from './role.entity';
import { UserEntity } from './user.entity';

export interface DirectoryServiceDeps {
  dataSource: DataSource;
  identity: IdentityService;
  audit: AuditService;
}

/** Told the company whose access inputs (roles, groups, memberships, users' roles and admin flags) changed. */
export type AccessChangeListener = (companyId: string) => Promise<void>;

const REFERENCE_TABLE = {
  USER: 'users',
  ROLE: 'roles',
  ROLE_AND_SUBORDINATES: 'roles',
  GROUP: 'groups',
} as const;

export interface GroupWithMembers {
  id: string;
  name: string;
  members: Array<{ memberType: GroupMemberType; memberId: string }>;
}

/**
 * The company's directory, administered by its admins: users, the role tree, groups and their members. Every change
 * is audited in its transaction and, once committed, told to the access listeners (sharing recompiles visibility).
 */
export class DirectoryService {
  private readonly listeners: AccessChangeListener[] = [];

  constructor(private readonly deps: DirectoryServiceDeps) {}

  /** Sharing subscribes here instead of writing identity's tables itself. */
  onAccessChanged(listener: AccessChangeListener): void {
    this.listeners.push(listener);
  }

  async listUsers(principal: Principal, includeDeactivated = false): Promise<UserEntity[]> {
    await this.deps.identity.requireAdmin(principal, 'list users');
    const users = await this.deps.dataSource.getRepository(UserEntity).find({
      where: { companyId: principal.companyId },
      order: { name: 'ASC', id: 'ASC' },
    });
    return includeDeactivated ? users : users.filter((user) => !user.deactivatedAt);
  }

  /** Every role, parents before their children (a depth-first walk of the tree), then by name. */
  async listRoles(principal: Principal): Promise<RoleEntity[]> {
    await this.deps.identity.requireAdmin(principal, 'list roles');
    const roles = await this.deps.dataSource
      .getRepository(RoleEntity)
      .find({ where: { companyId: principal.companyId }, order: { name: 'ASC', id: 'ASC' } });
    const children = new Map<string | null, RoleEntity[]>();
    for (const role of roles) children.set(role.parentId, [...(children.get(role.parentId) ?? []), role]);
    const ordered: RoleEntity[] = [];
    const visit = (parentId: string | null) => {
      for (const role of children.get(parentId) ?? []) {
        ordered.push(role);
        visit(role.id);
      }
    };
    visit(null);
    return ordered;
  }

  async listGroups(principal: Principal): Promise<GroupWithMembers[]> {
    await this.deps.identity.requireAdmin(principal, 'list groups');
    const [groups, members] = await Promise.all([
      this.deps.dataSource
        .getRepository(GroupEntity)
        .find({ where: { companyId: principal.companyId }, order: { name: 'ASC', id: 'ASC' } }),
      this.deps.dataSource
        .getRepository(GroupMemberEntity)
        .find({ where: { companyId: principal.companyId }, order: { memberType: 'ASC', memberId: 'ASC' } }),
    ]);
    return groups.map((group) => ({
      id: group.id,
      name: group.name,
      members: members
        .filter((member) => member.groupId === group.id)
        .map(({ memberType, memberId }) => ({ memberType, memberId })),
    }));
  }

  async createUser(
    principal: Principal,
    input: { email: string; name: string; roleId?: string | null; isAdmin?: boolean },
  ): Promise<UserEntity> {
    await this.deps.identity.requireAdmin(principal, 'create users');
    const id = await this.change(principal, async (manager) => {
      if (input.roleId) await this.assertReference(manager, principal, 'ROLE', input.roleId, 'input.roleId');
      const taken = await manager.query<unknown[]>('SELECT 1 FROM users WHERE lower(email) = lower($1)', [
        input.email,
      ]);
      if (taken.length > 0) throw ValidationError.single('input.email', 'is already taken');
      const [row] = await manager.query<Array<{ id: string }>>(
        'INSERT INTO users (company_id, email, name, role_id, is_admin) VALUES ($1, $2, $3, $4, $5) RETURNING id',
        [principal.companyId, input.email, input.name, input.roleId ?? null, input.isAdmin ?? false],
      );
      await this.deps.audit.recordChange(manager, principal, 'USER_CREATE', 'USER', row!.id, input);
      return row!.id;
    });
    return (await this.deps.identity.usersByIds(principal.companyId, [id]))[0]!;
  }

  /**
   * Deactivates a user of the caller's company: from the commit on, every gateway refuses their tokens (401). Their
   * records, shares and audit history stay.
   */
  async deactivateUser(principal: Principal, userId: string): Promise<UserEntity> {
    await this.deps.identity.requireAdmin(principal, 'deactivate users');
    assertUuid('userId', userId);
    if (userId === principal.userId)
      throw ValidationError.single('userId', 'must not be yourself (ask another admin)');
    await this.change(principal, async (manager) => {
      const [rows] = await manager.query<[Array<{ id: string }>, number]>(
        `UPDATE users SET deactivated_at = COALESCE(deactivated_at, now()), updated_at = now()
          WHERE id = $1 AND company_id = $2 RETURNING id`,
        [userId, principal.companyId],
      );
      if (rows.length === 0) throw new NotFoundError('User', userId);
      await this.deps.audit.recordChange(manager, principal, 'USER_DEACTIVATE', 'USER', userId, null);
    });
    await this.deps.identity.invalidateUsersAfterCommit(principal.companyId, [userId]);
    return (await this.deps.identity.usersByIds(principal.companyId, [userId]))[0]!;
  }

  async updateUserAccess(
    principal: Principal,
    userId: string,
    change: { roleId?: string | null; isAdmin?: boolean },
  ): Promise<UserEntity> {
    await this.deps.identity.requireAdmin(principal, "change a user's role or admin flag");
    assertUuid('userId', userId);
    await this.change(principal, async (manager) => {
      await this.assertReference(manager, principal, 'USER', userId, 'userId');
      if (change.roleId)
        await this.assertReference(manager, principal, 'ROLE', change.roleId, 'input.roleId');
      await manager.query(
        `UPDATE users SET role_id = CASE WHEN $3 THEN $4::uuid ELSE role_id END, is_admin = COALESCE($5, is_admin),
                updated_at = now()
          WHERE id = $1 AND company_id = $2`,
        [
          userId,
          principal.companyId,
          change.roleId !== undefined,
          change.roleId ?? null,
          change.isAdmin ?? null,
        ],
      );
      await this.deps.audit.recordChange(manager, principal, 'USER_ACCESS_UPDATE', 'USER', userId, change);
    });
    await this.deps.identity.invalidateUsersAfterCommit(principal.companyId, [userId]);
    return (await this.deps.identity.usersByIds(principal.companyId, [userId]))[0]!;
  }

  async createRole(principal: Principal, name: string | undefined, parentId: string | null | undefined) {
    await this.deps.identity.requireAdmin(principal, 'change the role hierarchy');
    if (!name) throw ValidationError.single('input.name', 'is required to create a role');
    return this.change(principal, async (manager) => {
      if (parentId !== null && parentId !== undefined)
        await this.assertReference(manager, principal, 'ROLE', parentId, 'input.parentId');
      const [row] = await manager.query<Array<{ id: string }>>(
        'INSERT INTO roles (company_id, name, parent_id) VALUES ($1, $2, $3) RETURNING id',
        [principal.companyId, name, parentId ?? null],
      );
      await this.deps.audit.recordChange(manager, principal, 'ROLE_CREATE', 'ROLE', row!.id, {
        name,
        parentId: parentId ?? null,
      });
      return { id: row!.id, name, parentId: parentId ?? null };
    });
  }

  /** Partial: an omitted name or parent stays; `parentId: null` makes the role a root. Cycles are rejected. */
  async updateRole(
    principal: Principal,
    id: string,
    change: { name?: string | null; parentId?: string | null },
  ) {
    await this.deps.identity.requireAdmin(principal, 'change the role hierarchy');
    assertUuid('id', id);
    if (change.name === null)
      throw ValidationError.single('input.name', 'must not be null (omit it to keep)');
    return this.change(principal, async (manager) => {
      const roles = await manager.query<Array<{ id: string; name: string; parent_id: string | null }>>(
        'SELECT id, name, parent_id FROM roles WHERE company_id = $1 FOR UPDATE',
        [principal.companyId],
      );
      const parents = new Map(roles.map((r) => [r.id, r.parent_id]));
      const current = roles.find((role) => role.id === id);
      if (!current) throw new NotFoundError('Role', id);
      const name = change.name ?? current.name;
      const newParent = change.parentId === undefined ? current.parent_id : change.parentId;
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
      await this.deps.audit.recordChange(manager, principal, 'ROLE_UPDATE', 'ROLE', id, {
        name,
        parentId: newParent,
      });
      return { id, name, parentId: newParent };
    });
  }

  async createGroup(principal: Principal, name: string): Promise<GroupWithMembers> {
    await this.deps.identity.requireAdmin(principal, 'manage groups');
    if (name.length < 1 || name.length > 200)
      throw ValidationError.single('name', 'must be 1 to 200 characters');
    return this.change(principal, async (manager) => {
      const [row] = await manager.query<Array<{ id: string }>>(
        'INSERT INTO groups (company_id, name) VALUES ($1, $2) RETURNING id',
        [principal.companyId, name],
      );
      await this.deps.audit.recordChange(manager, principal, 'GROUP_CREATE', 'GROUP', row!.id, { name });
      return { id: row!.id, name, members: [] };
    });
  }

  async addGroupMember(
    principal: Principal,
    groupId: string,
    memberType: GroupMemberType,
    memberId: string,
  ): Promise<boolean> {
    await this.deps.identity.requireAdmin(principal, 'manage groups');
    return this.change(principal, async (manager) => {
      await this.assertReference(manager, principal, 'GROUP', groupId, 'input.groupId');
      await this.assertReference(manager, principal, memberType, memberId, 'input.memberId');
      if (memberType === 'GROUP' && memberId === groupId)
        throw ValidationError.single('input.memberId', 'a group cannot contain itself');
      await manager.query(
        `INSERT INTO group_members (company_id, group_id, member_type, member_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (group_id, member_type, member_id) DO NOTHING`,
        [principal.companyId, groupId, memberType, memberId],
      );
      await this.deps.audit.recordChange(manager, principal, 'GROUP_MEMBER_ADD', 'GROUP', groupId, {
        memberType,
        memberId,
      });
      return true;
    });
  }

  async removeGroupMember(
    principal: Principal,
    groupId: string,
    memberType: GroupMemberType,
    memberId: string,
  ): Promise<boolean> {
    await this.deps.identity.requireAdmin(principal, 'manage groups');
    assertUuid('input.groupId', groupId);
    assertUuid('input.memberId', memberId);
    return this.change(principal, async (manager) => {
      const removed = await manager.query<[unknown[], number]>(
        'DELETE FROM group_members WHERE company_id = $1 AND group_id = $2 AND member_type = $3 AND member_id = $4',
        [principal.companyId, groupId, memberType, memberId],
      );
      if (!removed[1]) return false;
      await this.deps.audit.recordChange(manager, principal, 'GROUP_MEMBER_REMOVE', 'GROUP', groupId, {
        memberType,
        memberId,
      });
      return true;
    });
  }

  /** The id must name a user, role or group of the caller's company (never another tenant's). */
  async assertReference(
    manager: EntityManager,
    principal: Principal,
    type: keyof typeof REFERENCE_TABLE,
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

  /** Runs a change in a transaction; once committed, every access listener hears of it. */
  private async change<T>(principal: Principal, work: (manager: EntityManager) => Promise<T>): Promise<T> {
    const result = await this.deps.dataSource.transaction(work);
    for (const listener of this.listeners) await listener(principal.companyId);
    return result;
  }
}
