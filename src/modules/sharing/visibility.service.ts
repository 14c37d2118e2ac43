import type { Principal } from '../identity';
import type { ObjectType } from '../records/record.enums';

/** A SQL boolean expression with named parameters (TypeORM `:name` syntax), always including the tenant filter. */
export interface SqlPredicate {
  sql: string;
  params: Record<string, unknown>;
}

export interface OwnedRecord {
  companyId: string;
  ownerId: string;
}

/**
 * The single place that decides which records a principal may read or edit. Every read path (single fetch, lists,
 * loaders, and later search, reports, exports, vectors) asks it for a predicate or a check.
 *
 * Foundation rule set: tenant isolation, then company admins see and edit everything, others their own records.
 * The sharing issue replaces the body with the full rules engine; callers do not change.
 */
export class VisibilityService {
  async readPredicate(principal: Principal, _objectType: ObjectType, alias: string): Promise<SqlPredicate> {
    return this.predicate(principal, alias);
  }

  async editPredicate(principal: Principal, _objectType: ObjectType, alias: string): Promise<SqlPredicate> {
    return this.predicate(principal, alias);
  }

  async canRead(principal: Principal, _objectType: ObjectType, record: OwnedRecord): Promise<boolean> {
    return this.allows(principal, record);
  }

  async canEdit(principal: Principal, _objectType: ObjectType, record: OwnedRecord): Promise<boolean> {
    return this.allows(principal, record);
  }

  private predicate(principal: Principal, alias: string): SqlPredicate {
    const tenant = `${alias}.company_id = :visibilityCompanyId`;
    if (principal.isAdmin) return { sql: tenant, params: { visibilityCompanyId: principal.companyId } };
    return {
      sql: `(${tenant} AND ${alias}.owner_id = :visibilityUserId)`,
      params: { visibilityCompanyId: principal.companyId, visibilityUserId: principal.userId },
    };
  }

  private allows(principal: Principal, record: OwnedRecord): boolean {
    if (record.companyId !== principal.companyId) return false;
    return principal.isAdmin || record.ownerId === principal.userId;
  }
}
