import type { DataSource, EntityManager, EntityMetadata, EntityTarget, ObjectLiteral } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import {
  assertUuid,
  isUuid,
  NotFoundError,
  ForbiddenError,
  ValidationError,
} from '../../platform/errors/app-error';
import { AuditAction, type AuditService } from '../audit';
import { UserEntity, type IdentityService } from '../identity';
import { bindNamed, type Principal } from '../kernel';
import type { VisibilityService, WriteVisibility } from '../sharing';
import type { RecordChangeFeed } from './record-changes';
import { preparedStatement } from '../../platform/db/prepared-statement';
import type { ReadRouting } from '../../platform/db/read-routing';
import type { RecordSelection } from './record-selection';
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

/** A related object a read can embed from the same statement, e.g. a deal's `account`. */
export interface RecordEmbed {
  /** The GraphQL field (and the property the embedded object is put under). */
  field: string;
  entity: EntityTarget<ObjectLiteral>;
  /** The record's property holding the related row's id. */
  foreignKey: string;
  /** The related row shows only when the caller may read it as this record type (null otherwise). */
  readableAs?: RecordType;
}

export interface RecordDefinition<E extends OwnedEntity> {
  objectType: RecordType;
  /** Name used in messages, e.g. `Lead`. */
  label: string;
  entity: EntityTarget<E>;
  /** Related objects besides the owner (which every record embeds on request). */
  embeds?: RecordEmbed[];
}

/** Column types TypeORM's Postgres driver hydrates as node-postgres returns them (no branch of prepareHydratedValue). */
const UNCONVERTED_TYPES = new Set(['uuid', 'text', 'varchar', 'character varying', 'integer', 'int', 'int4']);

/** Every record's owner: any user of the company. */
const OWNER: RecordEmbed = { field: 'owner', entity: UserEntity, foreignKey: 'ownerId' };

/** Columns of `metadata` a selection needs: those it names plus `always`; every column when it names another field. */
function selectedColumns(
  metadata: EntityMetadata,
  fields: ReadonlySet<string> | undefined,
  always: readonly string[],
  handled: ReadonlySet<string> = new Set(),
): ColumnMetadata[] {
  if (!fields) return metadata.columns;
  for (const field of fields)
    if (field !== '__typename' && !handled.has(field) && !metadata.findColumnWithPropertyName(field))
      return metadata.columns;
  return metadata.columns.filter(
    (column) => fields.has(column.propertyName) || always.includes(column.propertyName),
  );
}

/** A read's select list and joins, and how its rows become entities (embedded objects included). */
interface ReadPlan<E> {
  select: string;
  joins: string;
  decode(rows: Array<Record<string, unknown>>): E[];
}

export interface RecordServiceDeps {
  dataSource: DataSource;
  visibility: VisibilityService;
  audit: AuditService;
  identity: IdentityService;
  maxPageSize: number;
  /** Run single reads as named prepared statements (not where connections share one session). */
  preparedStatements: boolean;
  changes: RecordChangeFeed;
  /** Lists and single reads tolerate a replica: they run in `reads.read`, their statements in `reads.query`. */
  reads: ReadRouting;
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

  /**
   * One readable record, with only the `selection`'s columns and its owner or account embedded: one statement, run
   * prepared (a lookup by primary key plans alike whatever the values; Postgres's planning was most of its cost).
   */
  async get(principal: Principal, id: string, selection?: RecordSelection): Promise<E | null> {
    assertUuid('id', id);
    return this.deps.reads.read(principal, () => this.readOne(principal, id, selection));
  }

  private async readOne(principal: Principal, id: string, selection?: RecordSelection): Promise<E | null> {
    const visible = await this.deps.visibility.readPredicate(principal, this.definition.objectType, 'r');
    const params: unknown[] = [];
    const bind = (value: unknown) => `$${params.push(value)}`;
    const where = bindNamed(visible, bind);
    const plan = await this.readPlan(principal, selection, bind);
    const sql = `SELECT ${plan.select} FROM ${this.metadata.tablePath} r ${plan.joins}
      WHERE r.id = ${bind(id)} AND (${where})`;
    const rows = await this.deps.reads.query<Record<string, unknown>>(
      this.deps.preparedStatements ? preparedStatement(sql) : sql,
      params,
    );
    return plan.decode(rows)[0] ?? null;
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

  async list(principal: Principal, options: ListOptions, selection?: RecordSelection): Promise<Page<E>> {
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
    return this.deps.reads.read(principal, () =>
      this.readPage(principal, options, sortField.name, selection),
    );
  }

  private async readPage(
    principal: Principal,
    options: ListOptions,
    sortFieldName: string,
    selection?: RecordSelection,
  ): Promise<Page<E>> {
    const visible = await this.deps.visibility.readPredicate(principal, this.definition.objectType, 'r');
    const params: unknown[] = [];
    const bind = (value: unknown) => `$${params.push(value)}`;
    const where = bindNamed(visible, bind);
    const countParams = [...params];
    const plan = await this.readPlan(principal, selection, bind);
    const sortColumn = this.metadata.findColumnWithPropertyName(sortFieldName)!.databaseName;
    const direction = options.sortDirection === 'ASC' ? 'ASC' : 'DESC';
    const table = this.metadata.tablePath;
    // One table (embeds join on primary keys): LIMIT/OFFSET and COUNT(*) are exact.
    const [rows, counted] = await Promise.all([
      this.deps.reads.query<Record<string, unknown>>(
        `SELECT ${plan.select} FROM ${table} r ${plan.joins} WHERE ${where}
          ORDER BY r.${sortColumn} ${direction}, r.id ${direction}
          LIMIT ${bind(options.pageSize)} OFFSET ${bind((options.page - 1) * options.pageSize)}`,
        params,
      ),
      options.withTotal === false
        ? undefined
        : this.deps.reads.query<{ total: number }>(
            `SELECT COUNT(*)::int AS total FROM ${table} r WHERE ${where}`,
            countParams,
          ),
    ]);
    return {
      items: plan.decode(rows),
      ...(options.withTotal === false ? {} : { total: counted?.[0]?.total ?? 0 }),
      page: options.page,
      pageSize: options.pageSize,
    };
  }

  /**
   * The select list for what `selection` reads (every column without one), and a LEFT JOIN per selected embed under
   * the caller's visibility of it; decoding hydrates values as TypeORM would and shares one object per embedded row.
   */
  private async readPlan(
    principal: Principal,
    selection: RecordSelection | undefined,
    bind: (value: unknown) => string,
  ): Promise<ReadPlan<E>> {
    const embeds = [OWNER, ...(this.definition.embeds ?? [])].filter((embed) =>
      selection?.related.has(embed.field),
    );
    const metadata = this.metadata;
    const columns = selectedColumns(
      metadata,
      selection?.fields,
      ['id', 'companyId', 'ownerId', ...(this.definition.embeds ?? []).map((embed) => embed.foreignKey)],
      new Set(embeds.map((embed) => embed.field)),
    );
    const select = columns.map((column, i) => `r.${column.databaseName} AS r${i}`);
    const joins: string[] = [];
    const embedded: Array<{ embed: RecordEmbed; alias: string; columns: ColumnMetadata[] }> = [];
    for (const [index, embed] of embeds.entries()) {
      const alias = `e${index}`;
      const target = this.deps.dataSource.getMetadata(embed.entity);
      const targetColumns = selectedColumns(target, selection!.related.get(embed.field), ['id']);
      select.push(`${alias}.id AS ${alias}_id`);
      targetColumns.forEach((column, i) => select.push(`${alias}.${column.databaseName} AS ${alias}_${i}`));
      const foreignKey = metadata.findColumnWithPropertyName(embed.foreignKey)!.databaseName;
      const readable = embed.readableAs
        ? ` AND (${bindNamed(await this.deps.visibility.readPredicate(principal, embed.readableAs, alias), bind)})`
        : '';
      joins.push(
        `LEFT JOIN ${target.tablePath} ${alias} ON ${alias}.id = r.${foreignKey} AND ${alias}.company_id = r.company_id${readable}`,
      );
      embedded.push({ embed, alias, columns: targetColumns });
    }
    const driver = this.deps.dataSource.driver;
    // Per column, once per read: the result key and how its value becomes the entity's (TypeORM's own conversion,
    // skipped for the types it returns unchanged).
    const decoder = (prefix: string, of: ColumnMetadata[]) => {
      const fields = of.map((column, i) => ({
        key: `${prefix}${i}`,
        property: column.propertyName,
        convert:
          !column.transformer && !column.isArray && UNCONVERTED_TYPES.has(String(column.type))
            ? undefined
            : (value: unknown) => driver.prepareHydratedValue(value, column) as unknown,
      }));
      return (row: Record<string, unknown>) => {
        const entity: Record<string, unknown> = {};
        for (const { key, property, convert } of fields)
          entity[property] = convert ? convert(row[key]) : row[key];
        return entity;
      };
    };
    const hydrateRecord = decoder('r', columns);
    const hydrateEmbeds = embedded.map(({ alias, columns: of }) => ({
      idKey: `${alias}_id`,
      hydrate: decoder(`${alias}_`, of),
    }));
    return {
      select: select.join(', '),
      joins: joins.join(' '),
      decode: (rows) => {
        const shared = embedded.map(() => new Map<unknown, Record<string, unknown>>());
        return rows.map((row) => {
          const record = hydrateRecord(row);
          embedded.forEach(({ embed }, index) => {
            const { idKey, hydrate } = hydrateEmbeds[index]!;
            const id = row[idKey];
            if (id === null || id === undefined) {
              record[embed.field] = null;
              return;
            }
            let object = shared[index]!.get(id);
            if (!object) shared[index]!.set(id, (object = hydrate(row)));
            record[embed.field] = object;
          });
          return record as E;
        });
      },
    };
  }

  private get metadata(): EntityMetadata {
    return this.deps.dataSource.getMetadata(this.definition.entity);
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
