import { z } from 'zod';
import { defineSettings, isCronPattern } from '../../config/settings';

/** Audit partitions and archives (config.audit). */
export const auditSettings = defineSettings({
  variables: {
    /** Verified gzip archives of audit months past retention. */
    AUDIT_ARCHIVE_DIR: z.string().min(1).default('.data/audit-archive'),
    AUDIT_RETENTION_MONTHS: z.coerce.number().int().min(1).max(240).default(12),
    AUDIT_MONTHS_AHEAD: z.coerce.number().int().min(0).max(24).default(3),
    /** When the worker runs audit maintenance (cron, UTC). */
    AUDIT_MAINTENANCE_CRON: z
      .string()
      .min(1)
      .refine(isCronPattern, { message: 'must be a cron pattern such as "0 2 * * *"' })
      .default('0 2 * * *'),
    AUDIT_ARCHIVE_GZIP_LEVEL: z.coerce.number().int().min(1).max(9).default(6),
  },
  read: (e) => ({
    archiveDirectory: e.AUDIT_ARCHIVE_DIR,
    retentionMonths: e.AUDIT_RETENTION_MONTHS,
    monthsAhead: e.AUDIT_MONTHS_AHEAD,
    maintenanceCron: e.AUDIT_MAINTENANCE_CRON,
    gzipLevel: e.AUDIT_ARCHIVE_GZIP_LEVEL,
  }),
});
