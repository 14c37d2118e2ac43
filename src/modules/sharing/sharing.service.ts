import type { DataSource, EntityManager } from 'typeorm';
import { assertUuid, ForbiddenError, NotFoundError, ValidationError } from '../../platform/errors/app-error';
import type { AuditService } from '../audit';
import type { DirectoryService, IdentityService } from '../identity';
import type { Principal } from '../kernel';
import { RECORD_TABLE, RecordType } from '../kernel';
import { validateCriteria, type CriteriaCondition } from './criteria';
import {
  RecordShareEntity,
  SharingRuleEntity,
  type AccessLevel,
  type OrgWideAccess,
} from './sharing.entities';
import type { GranteeType, RuleType, SourceType, TargetType } from './sharing.enums';
import type { VisibilityCache } from './visibility.cache';
import type { VisibilityService, WriteVisibility } from './visibility.service';

/** Record tables by type: an allow-list, never built from input. */

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
  directory: DirectoryService;
  visibility: VisibilityService;
  cache: VisibilityCache;
}

/**
 * Manages sharing's own inputs of visibility (rules, org-wide defaults, manual shares); identity's directory owns
 * users, roles and groups and tells sharing when they change. Every change writes an audit row in its transaction
 * and, once committed, invalidates cached visibility in every process.
 */
export class SharingService {
  constructor(private readonly deps: SharingServiceDeps) {}

  async listRules(principal: Principal, objectType: RecordType): Promise<SharingRuleEntity[]> {
    await this.deps.identity.requireAdmin(principal, 'view sharing rules');
    return this.deps.dataSource.getRepository(SharingRuleEntity).find({
      where: { companyId: principal.companyId, objectType },
      order: { createdAt: 'ASC', id: 'ASC' },
    });
  }

  /** Every record type's default, PRIVATE where none was set. */
  async listOrgWideDefaults(
    principal: Principal,
  ): Promise<Array<{ objectType: RecordType; accessLevel: OrgWideAccess }>> {
    await this.deps.identity.requireAdmin(principal, 'view org-wide defaults');
    const rows = await this.deps.dataSource.query<
      Array<{ object_type: RecordType; access_level: OrgWideAccess }>
    >('SELECT object_type, access_level FROM org_wide_defaults WHERE company_id = $1', [principal.companyId]);
    const set = new Map(rows.map((row) => [row.object_type, row.access_level]));
    return Object.values(RecordType).map((objectType) => ({
      objectType,
      accessLevel: set.get(objectType) ?? 'PRIVATE',
    }));
  }

  /** The manual shares of one record, for those who may share it (owner, their superiors, admins). */
  async listRecordShares(
    principal: Principal,
    objectType: RecordType,
    recordId: string,
  ): Promise<RecordShareEntity[]> {
    assertUuid('recordId', recordId);
    const visibility = await this.deps.visibility.forWrite(principal, objectType);
    await this.assertMayShare(this.deps.dataSource.manager, principal, visibility, {
      objectType,
      recordId,
      granteeType: 'USER',
      granteeId: principal.userId,
    });
    return this.deps.dataSource.getRepository(RecordShareEntity).find({
      where: { companyId: principal.companyId, objectType, recordId },
      order: { createdAt: 'ASC', id: 'ASC' },
    });
  }

  async createRule(principal: Principal, command: SharingRuleCommand): Promise<SharingRuleEntity> {
    await this.deps.identity.requireAdmin(principal, 'manage sharing rules');
    return this.changeRules(principal, async (manager) => {
      const values = await this.validateRule(manager, principal, command);
      const saved = await manager.save(
        SharingRuleEntity,
        manager.create(SharingRuleEntity, { ...values, companyId: principal.companyId }),
      );
      await this.deps.audit.recordChange(
        manager,
        principal,
        'SHARING_RULE_CREATE',
        'SHARING_RULE',
        saved.id,
        values,
      );
      return saved;
    });
  }

  async updateRule(
    principal: Principal,
    id: string,
    command: SharingRuleCommand,
  ): Promise<SharingRuleEntity> {
    await this.deps.identity.requireAdmin(principal, 'manage sharing rules');
    assertUuid('id', id);
    return this.changeRules(principal, async (manager) => {
      const current = await manager.findOneBy(SharingRuleEntity, { id, companyId: principal.companyId });
      if (!current) throw new NotFoundError('SharingRule', id);
      const values = await this.validateRule(manager, principal, command);
      const saved = await manager.save(SharingRuleEntity, manager.merge(SharingRuleEntity, current, values));
      await this.deps.audit.recordChange(
        manager,
        principal,
        'SHARING_RULE_UPDATE',
        'SHARING_RULE',
        id,
        values,
      );
      return saved;
    });
  }

  async deleteRule(principal: Principal, id: string): Promise<boolean> {
    await this.deps.identity.requireAdmin(principal, 'manage sharing rules');
    assertUuid('id', id);
    return this.changeRules(principal, async (manager) => {
      const result = await manager.delete(SharingRuleEntity, { id, companyId: principal.companyId });
      if (!result.affected) throw new NotFoundError('SharingRule', id);
      await this.deps.audit.recordChange(manager, principal, 'SHARING_RULE_DELETE', 'SHARING_RULE', id, null);
      return true;
    });
  }

  async setOrgWideDefault(principal: Principal, objectType: RecordType, accessLevel: OrgWideAccess) {
    await this.deps.identity.requireAdmin(principal, 'change org-wide defaults');
    return this.changeRules(principal, async (manager) => {
      await manager.query(
        `INSERT INTO org_wide_defaults (company_id, object_type, access_level) VALUES ($1, $2, $3)
         ON CONFLICT (company_id, object_type) DO UPDATE SET access_level = EXCLUDED.access_level, updated_at = now()`,
        [principal.companyId, objectType, accessLevel],
      );
      await this.deps.audit.recordChange(
        manager,
        principal,
        'ORG_WIDE_DEFAULT_SET',
        'ORG_WIDE_DEFAULT',
        null,
        {
          objectType,
          accessLevel,
        },
      );
      return { objectType, accessLevel };
    });
  }

  async shareRecord(principal: Principal, command: RecordShareCommand): Promise<RecordShareEntity> {
    const accessLevel = command.accessLevel ?? 'READ';
    assertUuid('input.recordId', command.recordId);
    const visibility = await this.deps.visibility.forWrite(principal, command.objectType);
    const share = await this.deps.dataSource.transaction(async (manager) => {
      await this.assertMayShare(manager, principal, visibility, command);
      await this.deps.directory.assertReference(
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
      await this.deps.audit.recordChange(
        manager,
        principal,
        'RECORD_SHARE',
        command.objectType,
        command.recordId,
        {
          ...command,
          accessLevel,
        },
      );
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
      await this.deps.audit.recordChange(
        manager,
        principal,
        'RECORD_UNSHARE',
        command.objectType,
        command.recordId,
        command,
      );
      return true;
    });
    if (removed) await this.deps.cache.invalidateShares(principal.companyId);
    return removed;
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
    await this.deps.directory.assertReference(
      manager,
      principal,
      command.target.type,
      command.target.id,
      'input.target.id',
    );
    if (command.ruleType === 'OWNER') {
      if (!command.source) throw ValidationError.single('input.source', 'is required for OWNER rules');
      if (command.criteria) throw ValidationError.single('input.criteria', 'must be empty for OWNER rules');
      await this.deps.directory.assertReference(
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
}
