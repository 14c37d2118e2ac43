export { AuditService, AuditAction, type AuditEntry } from './audit.service';
export { AuditLogEntity } from './audit-log.entity';
