import type { EntityManager } from 'typeorm';
import type { Principal } from '../identity';
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

/** Writes audit rows inside the caller's transaction, so a mutation and its audit row commit or fail together. */
export class AuditService {
  async record(manager: EntityManager, principal: Principal, entry: AuditEntry): Promise<void> {
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
