import { ValidationError } from '../../platform/errors/app-error';

/** Monthly partitions are named by their UTC month; anything else under audit_logs is the default partition. */
export const PARTITION_NAME = /^audit_logs_y(\d{4})m(\d{2})$/;
export const DEFAULT_PARTITION = 'audit_logs_default';
/** The archive's columns, in the order COPY writes and reads them. */
export const COLUMNS = 'id, occurred_at, company_id, actor_id, action, object_type, object_id, changes';

export function monthStart(date: Date, offsetMonths = 0): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + offsetMonths, 1));
}

export function partitionNameOf(month: Date): string {
  return `audit_logs_y${month.getUTCFullYear()}m${String(month.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** The month a monthly partition's name holds (its first instant); null for any other name. */
export function monthOfPartition(name: string): Date | null {
  const match = PARTITION_NAME.exec(name);
  return match ? new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, 1)) : null;
}

/** `2025-03` for a month's first instant. */
export function monthLabel(month: Date): string {
  return month.toISOString().slice(0, 7);
}

/** Parses `YYYY-MM` (or any date inside the month) into the month's first instant, naming `field` when it cannot. */
export function parseMonth(field: string, value: string): Date {
  const match = /^(\d{4})-(\d{2})$/.exec(value);
  const month = match ? Number(match[2]) : 0;
  if (!match || month < 1 || month > 12) throw ValidationError.single(field, 'must be a month like 2025-03');
  return new Date(Date.UTC(Number(match[1]), month - 1, 1));
}

/** `date` columns take `YYYY-MM-DD`; a Date would shift with the session time zone. */
export function dayOf(month: Date): string {
  return month.toISOString().slice(0, 10);
}

export function assertRetention(retentionMonths: number): void {
  if (!Number.isInteger(retentionMonths) || retentionMonths < 1 || retentionMonths > 240)
    throw ValidationError.single('retentionMonths', 'must be an integer from 1 to 240');
}

export interface PartitionInfo {
  name: string;
  /** The month's first instant; null for the default partition. */
  month: Date | null;
  /** False for a month detached by an archive run that did not finish (the next run picks it up). */
  attached: boolean;
  /**
   * The planner's estimate (pg_class.reltuples, refreshed by ANALYZE and autovacuum; 0 before the first), so listing
   * never scans a month of rows; exact for the default partition, which maintenance counts anyway.
   */
  estimatedRows: number;
  bytes: number;
}

export interface EnsureReport {
  created: Array<{ name: string; movedFromDefault: number }>;
  /** Months whose table is detached and waiting to be archived: not re-created. */
  skipped: string[];
  defaultRows: number;
}

export type ArchiveStep = 'detach' | 'write' | 'verify' | 'drop';

export interface ArchiveRecord {
  month: Date;
  partitionName: string;
  rowCount: number;
  bytes: number;
  sha256: string;
  location: string;
  status: 'ARCHIVED' | 'RESTORED';
  archivedAt: Date;
  restoredAt: Date | null;
}

export interface ArchiveFailure {
  month: Date;
  partitionName: string;
  step: ArchiveStep;
  error: string;
  /** Where the rows are now: attached again, or kept as a detached table. Never lost. */
  rowsKept: 'attached' | 'detached';
}

export interface ArchiveReport {
  archived: ArchiveRecord[];
  failed: ArchiveFailure[];
  /** Months past retention that an operator restored: kept until they are archived on purpose. */
  keptRestored: string[];
}

export interface MaintenanceReport {
  ensure: EnsureReport;
  archive: ArchiveReport;
  partitions: PartitionInfo[];
  durationMs: number;
}
