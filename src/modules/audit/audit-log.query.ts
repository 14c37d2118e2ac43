import type { ReadRouting } from '../../platform/db/read-routing';
import type { DataSource } from 'typeorm';
import { isUuid, ValidationError, type FieldViolation } from '../../platform/errors/app-error';
import type { ServiceRegistry } from '../kernel/registries';
import { bindNamed, RECORD_TABLE, RecordType, type Principal } from '../kernel';
import type { AuditService } from './audit.service';
import { monthStart } from './audit-partition.model';

// Sharing's service, named through the registry: sharing records its changes here, so audit must not import it.
type VisibilityService = ServiceRegistry['visibility'];

export interface AuditLogQueryInput {
  from?: Date | null;
  to?: Date | null;
  objectType?: string | null;
  objectId?: string | null;
  actorId?: string | null;
  action?: string | null;
  first?: number | null;
  after?: string | null;
}

export interface AuditLogEntry {
  id: string;
  occurredAt: Date;
  actorId: string | null;
  action: string;
  objectType: string;
  objectId: string | null;
  changes: unknown;
}

export interface AuditLogPage {
  entries: AuditLogEntry[];
  /** Pass as `after` for the next page; null on the last one. */
  endCursor: string | null;
  hasNextPage: boolean;
  /** The range actually searched, [from, to). */
  from: Date;
  to: Date;
}

/** Without an objectId, a query may span at most this many months (a longer one reads archive-sized data). */
export const MAX_RANGE_MONTHS = 13;
const DEFAULT_PAGE = 50;

/** occurred_at as Postgres prints it (microseconds; a Date would keep milliseconds and skip rows) and the id. */
interface Cursor {
  occurredAt: string;
  id: string;
}

/**
 * The company's audit trail, newest first, with keyset pages on (occurred_at, id). Admins read every entry; anyone
 * else reads only entries about records they may read now (so a record shared with them brings its history along),
 * and nothing about users, roles or rules. The range always bounds the scan, so Postgres prunes to its months.
 */
export class AuditLogQuery {
  constructor(
    private readonly deps: {
      dataSource: DataSource;
      /** The log is read where the caller's reads run (a replica that holds their writes). */
      reads: ReadRouting;
      audit: AuditService;
      visibility: () => VisibilityService;
      maxPageSize: number;
    },
  ) {}

  async list(principal: Principal, input: AuditLogQueryInput): Promise<AuditLogPage> {
    const { sql, params, query } = await this.statement(principal, input);
    const rows = await this.deps.reads.read(principal, () => this.deps.reads.query<AuditRow>(sql, params));
    const hasNextPage = rows.length > query.first;
    const page = rows.slice(0, query.first);
    const entries = page.map(toEntry);
    const last = page.at(-1);
    return {
      entries,
      hasNextPage,
      endCursor: hasNextPage && last ? encodeCursor({ occurredAt: last.cursor_at, id: last.id }) : null,
      from: query.from,
      to: query.to,
    };
  }

  /** The validated query's SQL and parameters (what `list` runs; tests EXPLAIN it). */
  async statement(principal: Principal, input: AuditLogQueryInput) {
    const query = this.validate(input);
    const params: unknown[] = [principal.companyId, query.from, query.to];
    const bind = (value: unknown) => `$${params.push(value)}`;
    const where = ['a.company_id = $1', 'a.occurred_at >= $2', 'a.occurred_at < $3'];
    if (query.objectType) where.push(`a.object_type = ${bind(query.objectType)}`);
    if (query.objectId) where.push(`a.object_id = ${bind(query.objectId)}`);
    if (query.actorId) where.push(`a.actor_id = ${bind(query.actorId)}`);
    if (query.action) where.push(`a.action = ${bind(query.action)}`);
    if (query.after)
      where.push(
        `(a.occurred_at, a.id) < (${bind(query.after.occurredAt)}::timestamptz, ${bind(query.after.id)}::uuid)`,
      );
    const scope = await this.scope(principal, query.objectType, bind);
    if (scope) where.push(scope);
    const sql = `SELECT a.id, a.occurred_at, a.occurred_at::text AS cursor_at, a.actor_id, a.action, a.object_type,
         a.object_id, a.changes
         FROM audit_logs a
        WHERE ${where.join(' AND ')}
        ORDER BY a.occurred_at DESC, a.id DESC
        LIMIT ${query.first + 1}`;
    return { sql, params, query };
  }

  /**
   * What a non-admin may see: entries about records they can read, one EXISTS per record type against that type's
   * visibility predicate. Admins (as the sharing model sees them) get no extra condition. Undefined means unrestricted.
   */
  private async scope(
    principal: Principal,
    objectType: string | undefined,
    bind: (value: unknown) => string,
  ): Promise<string | undefined> {
    const recordTypes = Object.values(RecordType).filter((type) => !objectType || type === objectType);
    const visibility = this.deps.visibility();
    const compiled = await visibility.compiled(principal, RecordType.LEAD);
    if (compiled.isAdmin) return undefined;
    if (recordTypes.length === 0) return 'false';
    const clauses: string[] = [];
    for (const type of recordTypes) {
      const predicate = await visibility.readPredicate(principal, type, 'r');
      clauses.push(
        `(a.object_type = ${bind(type)} AND EXISTS (SELECT 1 FROM ${RECORD_TABLE[type]} r` +
          ` WHERE r.id = a.object_id AND ${bindNamed(predicate, bind)}))`,
      );
    }
    return `(${clauses.join(' OR ')})`;
  }

  private validate(input: AuditLogQueryInput) {
    const violations: FieldViolation[] = [];
    const { knownActions, knownObjectTypes } = this.deps.audit;
    if (input.action != null && !knownActions.has(input.action))
      violations.push({
        field: 'input.action',
        rule: `must be one of ${[...knownActions].sort().join(', ')}`,
      });
    if (input.objectType != null && !knownObjectTypes.has(input.objectType))
      violations.push({
        field: 'input.objectType',
        rule: `must be one of ${[...knownObjectTypes].sort().join(', ')}`,
      });
    for (const field of ['objectId', 'actorId'] as const) {
      const value = input[field];
      if (value != null && !isUuid(value))
        violations.push({ field: `input.${field}`, rule: 'must be a UUID' });
    }
    const first = input.first ?? DEFAULT_PAGE;
    if (!Number.isInteger(first) || first < 1 || first > this.deps.maxPageSize)
      violations.push({
        field: 'input.first',
        rule: `must be an integer between 1 and ${this.deps.maxPageSize}`,
      });
    let after: Cursor | undefined;
    if (input.after != null) {
      after = decodeCursor(input.after);
      if (!after) violations.push({ field: 'input.after', rule: 'must be an endCursor of an earlier page' });
    }
    for (const field of ['from', 'to'] as const) {
      const value = input[field];
      if (value != null && Number.isNaN(value.getTime()))
        violations.push({ field: `input.${field}`, rule: 'must be a valid date-time' });
    }
    if (violations.length > 0) throw new ValidationError(violations);

    const now = new Date();
    const nextMonth = monthStart(now, 1);
    const to = input.to ?? (input.from && input.from >= nextMonth ? monthStart(input.from, 1) : nextMonth);
    const from = input.from ?? (input.to ? monthStart(new Date(input.to.getTime() - 1)) : monthStart(now));
    if (from > to) throw ValidationError.single('input.from', 'must not be after input.to');
    if (input.objectId == null && monthStart(from, MAX_RANGE_MONTHS) < to)
      throw input.to == null
        ? ValidationError.single(
            'input.from',
            `must be within ${MAX_RANGE_MONTHS} months of the current month unless input.objectId is given`,
          )
        : ValidationError.single(
            'input.to',
            `must be within ${MAX_RANGE_MONTHS} months of input.from unless input.objectId is given`,
          );
    return {
      from,
      to,
      first,
      after,
      objectType: input.objectType ?? undefined,
      objectId: input.objectId ?? undefined,
      actorId: input.actorId ?? undefined,
      action: input.action ?? undefined,
    };
  }
}

interface AuditRow {
  id: string;
  occurred_at: Date;
  cursor_at: string;
  actor_id: string | null;
  action: string;
  object_type: string;
  object_id: string | null;
  changes: unknown;
}

function toEntry(row: AuditRow): AuditLogEntry {
  return {
    id: row.id,
    occurredAt: row.occurred_at,
    actorId: row.actor_id,
    action: row.action,
    objectType: row.object_type,
    objectId: row.object_id,
    changes: row.changes,
  };
}

function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.occurredAt, cursor.id])).toString('base64url');
}

function decodeCursor(value: string): Cursor | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
    if (!Array.isArray(parsed) || parsed.length !== 2) return undefined;
    const [at, id] = parsed as [unknown, unknown];
    if (typeof at !== 'string' || typeof id !== 'string' || !isUuid(id)) return undefined;
    const timestamp = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:[+-]\d{2}(?::?\d{2})?|Z)$/;
    return timestamp.test(at) ? { occurredAt: at, id } : undefined;
  } catch {
    return undefined;
  }
}
