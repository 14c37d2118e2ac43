import { createHash, randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import type { Principal } from '../kernel';
import type { RecordType } from '../kernel';
import { boundCondition, criteriaMatch, criteriaToSql, type CriteriaCondition } from './criteria';
import type { CompiledVisibility } from './sharing.model';
import type { VisibilityCache } from './visibility.cache';
import type { VisibilityCompiler } from './visibility.compiler';

/**
 * A SQL boolean expression with named parameters (TypeORM `:name` syntax), always including the tenant filter. Every
 * parameter carries its cast, so the predicate also runs where values arrive as text (COPY reads them from settings).
 */
export interface SqlPredicate {
  sql: string;
  params: Record<string, unknown>;
}

/** The fields a check needs: tenant, owner, id (for manual shares) and the criteria fields. */
export interface OwnedRecord {
  id: string;
  companyId: string;
  ownerId: string;
}

type Access = 'READ' | 'EDIT';

/** A principal's visibility of one record type, compiled before a write transaction opens. */
export interface WriteVisibility {
  readPredicate(alias: string): SqlPredicate;
  /** EDIT access; manual shares are read on `manager`, the transaction's own connection. */
  canEdit(record: OwnedRecord, manager: EntityManager): Promise<boolean>;
  /** Ownership, hierarchy or admin: who may share a record by hand. */
  canShare(record: OwnedRecord): boolean;
}

/**
 * The single place that decides which records a principal may read or edit (the six clauses, numbered in the
 * README's "Record-level sharing"). Every read path (single fetch, lists, loaders, search, reports, exports, vectors)
 * asks it for a predicate or a check.
 */
export class VisibilityService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly compiler: VisibilityCompiler,
    private readonly cache: VisibilityCache,
  ) {}

  /** Compiled visibility of the principal for a record type, from the in-process tier, Redis, or Postgres. */
  compiled(principal: Principal, objectType: RecordType): Promise<CompiledVisibility> {
    const { companyId, userId } = principal;
    return this.cache.getOrCompute(companyId, userId, objectType, async () => {
      const model = await this.cache.getOrComputeModel(companyId, () => this.compiler.loadModel(companyId));
      return this.compiler.compile(model, companyId, userId, objectType);
    });
  }

  /**
   * A short stable hash of what the principal can read of a record type, for keying cached results (search windows,
   * facets, report rows). Users who see the same records may share a key (every company admin does); any change to
   * their visibility changes it. Manual shares are read live, so a user they name gets a key that also carries the
   * company's sharing version (bumped by every share and unshare); if that version cannot be read, the key is unique
   * and nothing cached is reused.
   */
  async visibilityKey(principal: Principal, recordType: RecordType): Promise<string> {
    return this.keyOf(await this.compiled(principal, recordType), recordType);
  }

  /**
   * The read scope and the visibility key from one compiled visibility, for answers cached under the key: a sharing
   * change between two separate lookups could otherwise cache one scope's answer under the other's key.
   */
  async readScopeWithKey(
    principal: Principal,
    objectType: RecordType,
  ): Promise<{ scope: ReadScope; key: string }> {
    const compiled = await this.compiled(principal, objectType);
    return { scope: toScope(compiled), key: await this.keyOf(compiled, objectType) };
  }

  private async keyOf(compiled: CompiledVisibility, recordType: RecordType): Promise<string> {
    let view: unknown = { readAll: true };
    if (!compiled.readAll) {
      const owners = [
        ...new Set([
          ...compiled.hierarchyOwnerIds,
          ...compiled.ruleEditOwnerIds,
          ...compiled.ruleReadOwnerIds,
        ]),
      ].sort();
      const criteria = compiled.criteria.map((rule) => JSON.stringify(rule.conditions)).sort();
      let shares: unknown = null;
      if (compiled.manualShares) {
        const version = await this.cache.companyVersion(compiled.companyId);
        shares = {
          user: compiled.userId,
          groups: [...compiled.groupIds].sort(),
          version: version ?? `unknown-${randomUUID()}`,
        };
      }
      view = { owners, criteria, shares };
    }
    const digest = createHash('sha256')
      .update(JSON.stringify({ company: compiled.companyId, type: recordType, view }))
      .digest('base64url')
      .slice(0, 16);
    return `${recordType}:${digest}`;
  }

  async readPredicate(principal: Principal, objectType: RecordType, alias: string): Promise<SqlPredicate> {
    return toPredicate(await this.compiled(principal, objectType), alias, 'READ');
  }

  /** Read visibility in parts, for answers built from rows grouped by owner (see `ReadScope`). */
  async readScope(principal: Principal, objectType: RecordType): Promise<ReadScope> {
    return toScope(await this.compiled(principal, objectType));
  }

  /**
   * Every criteria rule of a company for a record type (oldest first), with its conditions as stored and as bound
   * (`boundCondition`), for slices that evaluate rules in their own SQL (report rollups).
   */
  async criteriaRules(
    companyId: string,
    objectType: RecordType,
  ): Promise<
    Array<{ ruleId: string; conditions: CriteriaCondition[]; bound: CriteriaCondition[]; fields: string[] }>
  > {
    const rows = await this.dataSource.query<Array<{ id: string; criteria: CriteriaCondition[] }>>(
      `SELECT id, criteria FROM sharing_rules WHERE company_id = $1 AND object_type = $2 AND rule_type = 'CRITERIA'
        ORDER BY created_at, id`,
      [companyId, objectType],
    );
    return rows.map((row) => ({
      ruleId: row.id,
      conditions: row.criteria,
      bound: row.criteria.map((condition) => boundCondition(objectType, condition)),
      fields: row.criteria.map((condition) => condition.field),
    }));
  }

  async editPredicate(principal: Principal, objectType: RecordType, alias: string): Promise<SqlPredicate> {
    return toPredicate(await this.compiled(principal, objectType), alias, 'EDIT');
  }

  /**
   * Visibility resolved now, for a write transaction: its checks use the given transaction's connection only, so a
   * write never waits for a second pool connection while holding one (which starves the pool under concurrency).
   */
  async forWrite(principal: Principal, objectType: RecordType): Promise<WriteVisibility> {
    const compiled = await this.compiled(principal, objectType);
    return {
      readPredicate: (alias) => toPredicate(compiled, alias, 'READ'),
      canEdit: async (record, manager) =>
        (await this.allowedBy(compiled, principal, [record], 'EDIT', manager)).has(record.id),
      canShare: (record) =>
        record.companyId === principal.companyId &&
        (compiled.isAdmin || compiled.hierarchyOwnerIds.includes(record.ownerId)),
    };
  }

  /** Batched check for lists and loaders: the ids among `records` the principal may read (one share query at most). */
  async readableIds(
    principal: Principal,
    objectType: RecordType,
    records: readonly OwnedRecord[],
  ): Promise<Set<string>> {
    return this.allowed(principal, objectType, records, 'READ');
  }

  /**
   * The ids of every record of a type that manual shares give the scope's principal read access to (clause 6 alone,
   * as ids): for paths that hold the other clauses as bitsets (search's counting index). Empty when no share can
   * apply (`scope.shareGrantees` null).
   */
  async sharedRecordIds(scope: ReadScope, objectType: RecordType): Promise<string[]> {
    if (!scope.shareGrantees) return [];
    const { userId, groupIds } = scope.shareGrantees;
    return this.sharedIds(
      this.dataSource.manager,
      { companyId: scope.companyId, objectType, userId, groupIds },
      { access: 'READ' },
    );
  }

  private async allowed(
    principal: Principal,
    objectType: RecordType,
    records: readonly OwnedRecord[],
    access: Access,
  ): Promise<Set<string>> {
    return this.allowedBy(await this.compiled(principal, objectType), principal, records, access);
  }

  private async allowedBy(
    compiled: CompiledVisibility,
    principal: Principal,
    records: readonly OwnedRecord[],
    access: Access,
    manager?: EntityManager,
  ): Promise<Set<string>> {
    const { objectType } = compiled;
    const allowed = new Set<string>();
    const undecided: OwnedRecord[] = [];
    const owners = new Set([
      ...compiled.hierarchyOwnerIds,
      ...compiled.ruleEditOwnerIds,
      ...(access === 'READ' ? compiled.ruleReadOwnerIds : []),
    ]);
    const everything = access === 'READ' ? compiled.readAll : compiled.editAll;
    for (const record of records) {
      if (record.companyId !== principal.companyId) continue;
      const fields = record as unknown as Record<string, unknown>;
      if (
        everything ||
        owners.has(record.ownerId) ||
        compiled.criteria.some(
          (rule) =>
            (access === 'READ' || rule.access === 'EDIT') &&
            criteriaMatch(objectType, rule.conditions, fields),
        )
      ) {
        allowed.add(record.id);
      } else {
        undecided.push(record);
      }
    }
    if (compiled.manualShares && undecided.length > 0) {
      const shared = await this.sharedIds(
        manager ?? this.dataSource.manager,
        { companyId: principal.companyId, objectType, userId: principal.userId, groupIds: compiled.groupIds },
        { access, recordIds: undecided.map((r) => r.id) },
      );
      for (const id of shared) allowed.add(id);
    }
    return allowed;
  }

  /**
   * The one lookup of manual shares: records of a type shared with the user or one of the groups, at `access` (EDIT
   * needs an EDIT share, READ takes either), among `recordIds` when given. `on` is the connection to ask (a write
   * transaction's own, or the pool's).
   */
  private async sharedIds(
    on: EntityManager,
    grantees: { companyId: string; objectType: RecordType; userId: string; groupIds: readonly string[] },
    { access, recordIds }: { access: Access; recordIds?: readonly string[] },
  ): Promise<string[]> {
    const params: unknown[] = [grantees.companyId, grantees.objectType, grantees.userId, grantees.groupIds];
    const among = recordIds ? ` AND record_id = ANY($${params.push(recordIds)}::uuid[])` : '';
    const level = access === 'EDIT' ? ` AND access_level = 'EDIT'` : '';
    const rows = await on.query<Array<{ id: string }>>(
      `SELECT DISTINCT record_id::text AS id FROM record_shares
        WHERE company_id = $1 AND object_type = $2${among}${level}
          AND ((grantee_type = 'USER' AND grantee_id = $3) OR (grantee_type = 'GROUP' AND grantee_id = ANY($4::uuid[])))`,
      params,
    );
    return rows.map((row) => row.id);
  }
}

/** Which clauses of a read predicate to build (see `ReadScope`). */
export interface ReadClauses {
  /** Ownership, hierarchy and owner-based rules: decided by the record's owner alone. */
  owners: boolean;
  /** Criteria rules (all, or those at these indexes of `ReadScope.criteriaRules`): decided by the record's fields. */
  criteria: boolean | readonly number[];
  /** Manual shares: decided by the record's id. */
  shares: boolean;
}

/**
 * A principal's read visibility taken apart, for paths that answer from data grouped by owner and fields (report
 * rollups): the part they can evaluate on grouped rows, and the rest they must correct for from the records.
 */
export interface ReadScope {
  companyId: string;
  /** Every record of the company (company admin, or a public org-wide default). */
  everything: boolean;
  /** The criteria rules that share records with the principal (read access): id, conditions and the fields read. */
  criteriaRules: ReadonlyArray<{
    ruleId: string;
    conditions: readonly CriteriaCondition[];
    fields: string[];
  }>;
  /** Owners whose records the principal reads (ownership, hierarchy, owner-based rules); empty when `everything`. */
  ownerIds: readonly string[];
  /** Who manual shares must name for the principal to read a shared record, or null when none can apply. */
  shareGrantees: { userId: string; groupIds: readonly string[] } | null;
  /** The chosen clauses OR-ed over `alias`, without the tenant filter; null when none applies. */
  clauses(alias: string, parts: ReadClauses): SqlPredicate | null;
  /** The whole read predicate over `alias`, tenant filter included (as `readPredicate`). */
  predicate(alias: string): SqlPredicate;
}

/** Compiles visibility into one predicate over `alias` with bound parameters (names prefixed by the alias). */
function toPredicate(compiled: CompiledVisibility, alias: string, access: Access): SqlPredicate {
  const p = paramPrefix(alias);
  const params: Record<string, unknown> = { [`${p}company`]: compiled.companyId };
  const tenant = `${alias}.company_id = :${p}company::uuid`;
  if (access === 'READ' ? compiled.readAll : compiled.editAll) return { sql: tenant, params };
  const some = toClauses(compiled, alias, access, { owners: true, criteria: true, shares: true })!;
  return { sql: `(${tenant} AND ${some.sql})`, params: { ...params, ...some.params } };
}

function paramPrefix(alias: string): string {
  return `vis_${alias.replace(/\W/g, '')}_`;
}

function toScope(compiled: CompiledVisibility): ReadScope {
  return {
    companyId: compiled.companyId,
    everything: compiled.readAll,
    criteriaRules: compiled.criteria.map((rule) => ({
      ruleId: rule.ruleId,
      conditions: rule.conditions,
      fields: rule.conditions.map((condition) => condition.field),
    })),
    ownerIds: compiled.readAll
      ? []
      : [
          ...new Set([
            ...compiled.hierarchyOwnerIds,
            ...compiled.ruleEditOwnerIds,
            ...compiled.ruleReadOwnerIds,
          ]),
        ],
    shareGrantees:
      !compiled.readAll && compiled.manualShares
        ? { userId: compiled.userId, groupIds: compiled.groupIds }
        : null,
    clauses: (alias, parts) => (compiled.readAll ? null : toClauses(compiled, alias, 'READ', parts)),
    predicate: (alias) => toPredicate(compiled, alias, 'READ'),
  };
}

function toClauses(
  compiled: CompiledVisibility,
  alias: string,
  access: Access,
  parts: ReadClauses,
): SqlPredicate | null {
  // Each choice of parts names its parameters apart, so two scopes' clauses can meet in one statement.
  const chosen = parts.criteria === true ? 'c' : parts.criteria ? `c${parts.criteria.join('_')}` : '';
  const p = `${paramPrefix(alias)}${parts.owners ? 'o' : ''}${chosen}${parts.shares ? 's' : ''}_`;
  const params: Record<string, unknown> = {};
  const clauses: string[] = [];
  if (parts.owners) {
    params[`${p}owners`] = [
      ...compiled.hierarchyOwnerIds,
      ...compiled.ruleEditOwnerIds,
      ...(access === 'READ' ? compiled.ruleReadOwnerIds : []),
    ];
    clauses.push(`${alias}.owner_id = ANY(:${p}owners::uuid[])`);
  }
  const picked = parts.criteria;
  const criteria =
    picked === true
      ? compiled.criteria
      : picked === false
        ? []
        : compiled.criteria.filter((_, i) => picked.includes(i));
  for (const rule of criteria) {
    if (access === 'EDIT' && rule.access !== 'EDIT') continue;
    clauses.push(criteriaToSql(compiled.objectType, rule.conditions, alias, `${p}c`, params));
  }
  if (parts.shares && compiled.manualShares) {
    params[`${p}company`] = compiled.companyId;
    params[`${p}type`] = compiled.objectType;
    params[`${p}user`] = compiled.userId;
    params[`${p}groups`] = compiled.groupIds;
    clauses.push(
      `EXISTS (SELECT 1 FROM record_shares rs_${alias} WHERE rs_${alias}.company_id = :${p}company::uuid` +
        ` AND rs_${alias}.object_type = :${p}type::text AND rs_${alias}.record_id = ${alias}.id` +
        (access === 'EDIT' ? ` AND rs_${alias}.access_level = 'EDIT'` : '') +
        ` AND ((rs_${alias}.grantee_type = 'USER' AND rs_${alias}.grantee_id = :${p}user::uuid)` +
        ` OR (rs_${alias}.grantee_type = 'GROUP' AND rs_${alias}.grantee_id = ANY(:${p}groups::uuid[]))))`,
    );
  }
  return clauses.length ? { sql: `(${clauses.join(' OR ')})`, params } : null;
}
