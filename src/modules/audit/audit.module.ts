import { AuditArchives1764600000000 } from '../../../migrations/1764600000000-audit-archives';
import { MetricBuckets } from '../../platform/metrics/metrics';
import { defineModule, requireService } from '../kernel';
import { AuditLogQuery } from './audit-log.query';
import { auditArchive, auditQueries } from './audit.bench';
import { AuditLogEntity } from './audit-log.entity';
import { AuditMaintenance } from './audit-maintenance';
import { AuditPartitionManager } from './audit-partition.manager';
import { AuditResolver } from './audit.resolver';
import { AuditService } from './audit.service';

export interface AuditServices {
  audit: AuditService;
  /** Partitions ahead, archives past retention; run daily by the worker, on demand by admins and the CLI. */
  auditMaintenance: AuditMaintenance;
  auditLog: AuditLogQuery;
}

declare module '../kernel/registries' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ServiceRegistry extends AuditServices {}
}

/** Metric families of this slice, declared once. */
export const AuditMetric = {
  partitions: 'crm_audit_partitions',
  defaultPartitionRows: 'crm_audit_default_partition_rows',
  archiveOperations: 'crm_audit_archive_operations_total',
  maintenanceDuration: 'crm_audit_maintenance_duration_seconds',
} as const;

/** Scrape-time gauges read the database at most this often. */
const GAUGE_MAX_AGE_MS = 30_000;

/** The audit trail every mutation writes in its own transaction; monthly partitions, archives, the audit log query. */
export const auditModule = defineModule<AuditServices>({
  name: 'audit',
  entities: [AuditLogEntity],
  migrations: [AuditArchives1764600000000],
  createServices: ({ dataSource, metrics, config, logger, reads, services, storage }) => {
    const partitions = new AuditPartitionManager({
      dataSource,
      archives: storage.scoped('audit-archive', { localDirectory: config.audit.archiveDirectory }),
      logger,
      compressionLevel: config.audit.gzipLevel,
      lockTimeoutMs: 2_000,
      detachAttempts: 5,
      bulkLoad: config.database.driver === 'embedded' ? 'insert' : 'copy',
    });
    metrics.declare({
      type: 'gauge',
      name: AuditMetric.partitions,
      help: 'Partitions of audit_logs, read at scrape time',
      collect: cachedFor(GAUGE_MAX_AGE_MS, async () => {
        const [row] = await dataSource.query<Array<{ count: number }>>(
          "SELECT count(*)::int AS count FROM pg_inherits WHERE inhparent = to_regclass('audit_logs')",
        );
        return row?.count ?? 0;
      }),
    });
    metrics.declare({
      type: 'gauge',
      name: AuditMetric.defaultPartitionRows,
      help: 'Rows in the audit default partition (a month without its partition); above 0 needs maintenance',
      collect: cachedFor(GAUGE_MAX_AGE_MS, () => partitions.defaultPartitionRows()),
    });
    const auditMaintenance = new AuditMaintenance(partitions, {
      operators: new Set(config.platformOperators),
      schedule: { cron: config.audit.maintenanceCron },
      monthsAhead: config.audit.monthsAhead,
      retentionMonths: config.audit.retentionMonths,
      logger,
      metrics: {
        archiveOperations: metrics.counter(
          AuditMetric.archiveOperations,
          'Audit month archives and restores by outcome',
          ['operation', 'status'],
        ),
        maintenanceDuration: metrics.histogram(
          AuditMetric.maintenanceDuration,
          'Audit maintenance runs (ensure + archive)',
          ['status'],
          MetricBuckets.long,
        ),
      },
    });
    const audit = new AuditService();
    const auditLog = new AuditLogQuery({
      dataSource,
      reads,
      audit,
      // Sharing is composed after audit (whose writes it records); the query needs it only once requests arrive.
      visibility: () => requireService(services, 'visibility', 'audit'),
      maxPageSize: config.graphql.maxPageSize,
    });
    return { audit, auditMaintenance, auditLog };
  },
  resolvers: (services) => [
    {
      resolver: AuditResolver,
      create: () =>
        new AuditResolver(
          services.auditLog,
          services.auditMaintenance,
          requireService(services, 'identity', 'audit'),
          services.auditMaintenance.operators,
        ),
    },
  ],
  bench: [auditQueries, auditArchive],
  scheduledJobs: (services) => [
    {
      name: 'audit.maintenance',
      schedule: services.auditMaintenance.schedule,
      run: async () => {
        await services.auditMaintenance.run();
      },
    },
  ],
});

/** Memoises an async value for `ms`, so a scrape-time gauge does not hit the database on every scrape. */
function cachedFor<T>(ms: number, load: () => Promise<T>): () => Promise<T> {
  let value: { at: number; promise: Promise<T> } | undefined;
  return () => {
    if (!value || Date.now() - value.at > ms) value = { at: Date.now(), promise: load() };
    return value.promise;
  };
}
