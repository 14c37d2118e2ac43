import type { EntityManager } from 'typeorm';
import { authFailure, type Principal } from '../kernel';
import { AuditLogEntity } from './audit-log.entity';

export const AuditAction = { CREATE: 'CREATE', UPDATE: 'UPDATE', DELETE: 'DELETE' } as const;
export type AuditAction = (typeof AuditAction)[keyof typeof AuditAction];

export interface AuditEntry {
  /** One of AuditAction, or a module's own verb. */
  action: string;
  objectType: string;
  objectId: string | null;
  /** For updates `{ field: { from, to } }`; for creates and deletes the record. */
  changes?: unknown;
}

/**
 * Writes audit rows inside the caller's transaction, so a mutation and its audit row commit or fail together. Every
 * audited write first confirms, on the transaction's own connection, that its actor is still an active user.
 */
export class AuditService {
  private readonly actions = new Set<string>(Object.values(AuditAction));
  private readonly objectTypes = new Set<string>();
  private readonly inactiveActorHandlers: Array<(principal: Principal) => Promise<void>> = [];
  /** Actors confirmed active per transaction (a transaction's manager lives as long as the transaction). */
  private readonly activeInTransaction = new WeakMap<EntityManager, Set<string>>();

  /**
   * Each slice names the verbs and object types it audits, at composition: the audit log query accepts only these,
   * and recording an undeclared verb is a programming error caught by the first test that writes it.
   */
  declare(vocabulary: { actions?: readonly string[]; objectTypes?: readonly string[] }): void {
    for (const action of vocabulary.actions ?? []) this.actions.add(action);
    for (const objectType of vocabulary.objectTypes ?? []) this.objectTypes.add(objectType);
  }

  get knownActions(): ReadonlySet<string> {
    return this.actions;
  }

  get knownObjectTypes(): ReadonlySet<string> {
    return this.objectTypes;
  }

  /** Called when a write's actor turns out to be gone or deactivated (identity drops them from shared caches). */
  onInactiveActor(handler: (principal: Principal) => Promise<void>): void {
    this.inactiveActorHandlers.push(handler);
  }

  /**
   * Refuses (401) a write whose actor was deleted or deactivated after their token was cached. FOR SHARE makes a
   * concurrent deactivation wait for this transaction, and this transaction see a committed one.
   */
  async assertActiveActor(manager: EntityManager, principal: Principal): Promise<void> {
    // Once per transaction: a write that checks before its insert need not check again when it records the audit row.
    const checked = this.activeInTransaction.get(manager);
    if (checked?.has(principal.userId)) return;
    const rows = await manager.query<unknown[]>(
      'SELECT 1 FROM users WHERE id = $1 AND company_id = $2 AND deactivated_at IS NULL FOR SHARE',
      [principal.userId, principal.companyId],
    );
    if (rows.length > 0) {
      this.activeInTransaction.set(manager, (checked ?? new Set()).add(principal.userId));
      return;
    }
    for (const handler of this.inactiveActorHandlers) await handler(principal);
    throw authFailure('UNKNOWN_USER');
  }

  /** `record` with the entry's parts as arguments, for services that audit many kinds of change. */
  recordChange(
    manager: EntityManager,
    principal: Principal,
    action: string,
    objectType: string,
    objectId: string | null,
    changes: unknown,
  ): Promise<void> {
    return this.record(manager, principal, { action, objectType, objectId, changes });
  }

  async record(manager: EntityManager, principal: Principal, entry: AuditEntry): Promise<void> {
    if (!this.actions.has(entry.action) || !this.objectTypes.has(entry.objectType))
      throw new Error(`audit entry ${entry.action} ${entry.objectType} is not declared by its module`);
    await this.assertActiveActor(manager, principal);
    await manager.insert(AuditLogEntity, {
      companyId: principal.companyId,
      actorId: principal.userId,
      action: entry.action,
      objectType: entry.objectType,
      objectId: entry.objectId,
      changes: (entry.changes ?? null) as object,
    });
  }
}
