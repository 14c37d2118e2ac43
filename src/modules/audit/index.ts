// Audit's public face: its module, its services' types and the shared action verbs.
export { auditModule, type AuditServices } from './audit.module';
export { AuditAction, type AuditService, type AuditEntry } from './audit.service';
export type { AuditMaintenance } from './audit-maintenance';
export {
  parseMonth,
  type MaintenanceReport,
  type ArchiveRecord,
  type PartitionInfo,
} from './audit-partition.model';
export type { AuditLogQuery, AuditLogPage, AuditLogEntry } from './audit-log.query';
