export { AuditService, AuditAction, type AuditEntry } from './audit.service';
export { AuditLogEntity } from './audit-log.entity';
export { auditModule, type AuditServices } from './audit.module';
