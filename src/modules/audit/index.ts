// Audit's public face: its module, its service's type and the shared action verbs.
export { auditModule, type AuditServices } from './audit.module';
export { AuditAction, type AuditService, type AuditEntry } from './audit.service';
