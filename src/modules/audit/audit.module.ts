import { defineModule } from '../kernel';
import { AuditLogEntity } from './audit-log.entity';
import { AuditService } from './audit.service';

export interface AuditServices {
  audit: AuditService;
}

declare module '../kernel/registries' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ServiceRegistry extends AuditServices {}
}

/** Metric families of this slice, declared once. */
export const AuditMetric = { partitions: 'crm_audit_partitions' } as const;

/** Scrape-time gauges read the database at most this often. */
const PARTITION_GAUGE_MAX_AGE_MS = 30_000;

/** The audit trail every mutation writes in its own transaction; monthly partitions. */
export const auditModule = defineModule<AuditServices>({
  name: 'audit',
  entities: [AuditLogEntity],
  createServices: ({ dataSource, metrics }) => {
    metrics.declare({
      type: 'gauge',
      name: AuditMetric.partitions,
      help: 'Partitions of audit_logs, read at scrape time',
      collect: cachedFor(PARTITION_GAUGE_MAX_AGE_MS, async () => {
        const [row] = await dataSource.query<Array<{ count: number }>>(
          "SELECT count(*)::int AS count FROM pg_inherits WHERE inhparent = to_regclass('audit_logs')",
        );
        return row?.count ?? 0;
      }),
    });
    return { audit: new AuditService() };
  },
});

/** Memoises an async value for `ms`, so a scrape-time gauge does not hit the database on every scrape. */
function cachedFor<T>(ms: number, load: () => Promise<T>): () => Promise<T> {
  let value: { at: number; promise: Promise<T> } | undefined;
  return () => {
    if (!value || Date.now() - value.at > ms) value = { at: Date.now(), promise: load() };
    return value.promise;
  };
}
