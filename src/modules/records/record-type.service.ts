import type { DataSource, EntityManager, EntityTarget, ObjectLiteral } from 'typeorm';
import {
  assertUuid,
  isUuid,
  NotFoundError,
  ForbiddenError,
  ValidationError,
} from '../../platform/errors/app-error';
import { AuditAction, type AuditService } from '../audit';
import type { IdentityService } from '../identity';
import type { Principal } from '../kernel';
import type { VisibilityService, WriteVisibility } from '../sharing';
import type { RecordChangeFeed } from './record-changes';
import { fieldsFor, findField, type RecordType, type SortDirection } from '../kernel';

export interface OwnedEntity extends ObjectLiteral {
  id: string;
  companyId: string;
  ownerId: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface ListOptions {
  page: number;
  pageSize: number;
  sortBy: string;
  sortDirection: SortDirection;
  /** Count every visible record (a second statement, often costlier than the page). Default true. */
  withTotal?: boolean;
}

export interface Page<T> {
  items: T[];
  /** Absent when the caller did not ask for it. */
  total?: number;
  page: number;
  pageSize: number;
}

export interface RecordDefinition<E extends OwnedEntity> {
  objectType: RecordType;
  /** Name used in messages, e.g. `Lead`. */
  label: string;
  entity: EntityTarget<E>;
}

export interface RecordServiceDeps {
  dataSource: DataSource;
  visibility: VisibilityService;
  audit: AuditService;
  identity: IdentityService;
  maxPageSize: number;
  changes: RecordChangeFeed;
}

/**
 * Check of the fields a create or update sets, run before the write transaction opens (so it may read through the
 * pool and the caches); throws ValidationError to reject.
 */
export type WriteCheck<E> = (principal: Principal, changes: Partial<E>, existingId?: string) => Promise<void>;

/**
 * Reads and writes one record type under tenant isolation and the visibility rules; every mutation writes its
 * audit row in the same transaction.
 */
export class RecordService<E extends OwnedEntity> {
  constructor(
    protected readonly definition: RecordDefinition<E>,
    protected readonly deps: RecordServiceDeps,
    private readonly beforeWrite: WriteCheck<E> = async () => {},
    private readonly afterWrite: (principal: Principal, id: string) => Promise<void> = async () => {},
  ) {}

  async get(principal: Principal, id: string): Promise<E | null> {
    assertUuid('id', id);
    const [row] = await this.byIds(principal, [id]);
    return row ?? null;
  }

  /**
   * Readable rows among `ids`, in no particular order; unknown or hidden ids are simply absent. Pass the
   * transaction's manager when called inside one (the embedded database serialises connections).
   */
  async byIds(principal: Principal, ids: readonly string[], manager?: EntityManager): Promise<E[]> {
    const valid = ids.filter(isUuid);
    if (valid.length === 0) return [];
    const visible = await this.deps.visibility.readPredicate(principal, this.definition.objectType, 'r');
    return (manager ?? this.deps.dataSource.manager)
      .getRepository(this.definition.entity)
      .createQueryBuilder('r')
      .where('r.id = ANY(:ids)', { ids: valid })
      .andWhere(visible.sql, visible.params)
      .getMany();
  }

  async list(principal: Principal, options: ListOptions): Promise<Page<E>> {
    if (!Number.isInteger(options.page) || options.page < 1)
      throw ValidationError.single('page', 'must be an integer >= 1');
    if (
      !Number.isInteger(options.pageSize) ||
      options.pageSize < 1 ||
      options.pageSize > this.deps.maxPageSize
    ) {
      throw ValidationError.single('pageSize', `must be an integer between 1 and ${this.deps.maxPageSize}`);
    }
    // The field catalog is the allow-list: a sortable field's name is also its entity property.
    const sortField = findField(this.definition.objectType, options.sortBy, 'sort');
    if (!sortField) {
      const sortable = Object.keys(fieldsFor(this.definition.objectType, 'sort'));
      throw ValidationError.single('sortBy', `must be one of ${sortable.join(', ')}`);
    }
    const visible = await this.deps.visibility.readPredicate(principal, this.definition.objectType, 'r');
    const visibleRows = this.repository().createQueryBuilder('r').where(visible.sql, visible.params);
    // One table, no joins: LIMIT/OFFSET and COUNT(*) are exact (getManyAndCount's COUNT(DISTINCT id) costs ~3x).
    const [items, counted] = await Promise.all([
      visibleRows
        .clone()
        .orderBy(`r.${sortField.name}`, options.sortDirection)
        .addOrderBy('r.id', options.sortDirection)
        .offset((options.page - 1) * options.pageSize)
        .limit(options.pageSize)
        .getMany(),
      options.withTotal === false
        ? undefined
        : visibleRows.clone().select('COUNT(*)::int', 'total').getRawOne<{ total: number }>(),
    ]);
    return {
      items,
      ...(options.withTotal === false ? {} : { total: counted?.total ?? 0 }),
      page: options.page,
      pageSize: options.pageSize,
    };
  }

  async create(principal: Principal, values: Partial<E>): Promise<E> {
    const ownerId = values.ownerId ?? principal.userId;
    await this.assertOwnerInCompany(principal, ownerId, values.ownerId !== undefined);
    await this.beforeWrite(principal, values);
    const created = await this.deps.dataSource.transaction(async (manager) => {
      // Before the insert: the owner may default to the caller, whose row must still exist.
      await this.deps.audit.assertActiveActor(manager, principal);
      const candidate = manager.create(this.definition.entity, {
        ...values,
        companyId: principal.companyId,
        ownerId,
      } as unknown as E);
      const saved = await manager.save(this.definition.entity, candidate);
      await this.deps.audit.record(manager, principal, {
        action: AuditAction.CREATE,
        objectType: this.definition.objectType,
        objectId: saved.id,
        changes: snapshot(saved),
      });
      return saved;
    });
    this.changed(principal, created.id, 'CREATE');
    return created;
  }

  async update(principal: Principal, id: string, patch: Partial<E>): Promise<E> {
    assertUuid('id', id);
    if (patch.ownerId !== undefined) await this.assertOwnerInCompany(principal, patch.ownerId, true);
    await this.beforeWrite(principal, patch, id);
    const visibility = await this.deps.visibility.forWrite(principal, this.definition.objectType);
    const updated = await this.deps.dataSource.transaction(async (manager) => {
      const current = await this.lockForWrite(manager, visibility, id);
      const changes: Record<string, { from: unknown; to: unknown }> = {};
      for (const [field, value] of Object.entries(patch)) {
        if (value === undefined) continue;
        const before = (current as Record<string, unknown>)[field];
        if (!sameValue(before, value)) changes[field] = { from: before ?? null, to: value };
      }
      const candidate = manager.merge(this.definition.entity, current, patch as E);
      if (Object.keys(changes).length === 0) return current;
      const saved = await manager.save(this.definition.entity, candidate);
      await this.deps.audit.record(manager, principal, {
        action: AuditAction.UPDATE,
        objectType: this.definition.objectType,
        objectId: id,
        changes,
      });
      return saved;
    });
    await this.afterWrite(principal, id);
    this.changed(principal, id, 'UPDATE');
    return updated;
  }

  async delete(principal: Principal, id: string): Promise<boolean> {
    assertUuid('id', id);
    const visibility = await this.deps.visibility.forWrite(principal, this.definition.objectType);
    await this.deps.dataSource.transaction(async (manager) => {
      const current = await this.lockForWrite(manager, visibility, id);
      await manager.delete(this.definition.entity, { id, companyId: principal.companyId });
      await this.deps.audit.record(manager, principal, {
        action: AuditAction.DELETE,
        objectType: this.definition.objectType,
        objectId: id,
        changes: snapshot(current),
      });
    });
    await this.afterWrite(principal, id);
    this.changed(principal, id, 'DELETE');
    return true;
  }

  private changed(principal: Principal, id: string, action: 'CREATE' | 'UPDATE' | 'DELETE'): void {
    this.deps.changes.emit({ companyId: principal.companyId, type: this.definition.objectType, id, action });
  }

  protected repository() {
    return this.deps.dataSource.getRepository(this.definition.entity);
  }

  /** Row-locks the record; NOT_FOUND when hidden (existence is not revealed), FORBIDDEN when read-only. */
  private async lockForWrite(manager: EntityManager, visibility: WriteVisibility, id: string): Promise<E> {
    const visible = visibility.readPredicate('r');
    const current = await manager
      .getRepository(this.definition.entity)
      .createQueryBuilder('r')
      .setLock('pessimistic_write')
      .where('r.id = :id', { id })
      .andWhere(visible.sql, visible.params)
      .getOne();
    if (!current) throw new NotFoundError(this.definition.label, id);
    if (!(await visibility.canEdit(current, manager))) {
      throw new ForbiddenError(`You may read but not edit ${this.definition.label} ${id}`);
    }
    return current;
  }

  private async assertOwnerInCompany(
    principal: Principal,
    ownerId: string,
    explicit: boolean,
  ): Promise<void> {
    if (!explicit) return;
    assertUuid('input.ownerId', ownerId);
    if (!(await this.deps.identity.userExists(principal.companyId, ownerId))) {
      throw ValidationError.single('input.ownerId', 'must be the id of a user in your company');
    }
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  return a === b;
}

function snapshot(entity: ObjectLiteral): Record<string, unknown> {
  const { companyId: _companyId, ...rest } = entity;
  return rest;
}
