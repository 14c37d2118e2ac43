import type { Counter, Histogram } from 'prom-client';
import type { Logger } from '../../platform/logging/logger';
import type { Schedule } from '../../platform/queue/queue.driver';
import type { AuditPartitionManager } from './audit-partition.manager';
import type { ArchiveRecord, MaintenanceReport } from './audit-partition.model';

export interface AuditMaintenanceMetrics {
  archiveOperations: Counter<'operation' | 'status'>;
  maintenanceDuration: Histogram<'status'>;
}

/** Maintenance as the scheduler, the admin mutation and the CLI run it: configured, measured and logged. */
export class AuditMaintenance {
  constructor(
    readonly partitions: AuditPartitionManager,
    private readonly options: {
      /** User ids of platform operators, who may run it through GraphQL. */
      operators: ReadonlySet<string>;
      schedule: Schedule;
      monthsAhead: number;
      retentionMonths: number;
      logger: Logger;
      metrics: AuditMaintenanceMetrics;
    },
  ) {}

  get operators(): ReadonlySet<string> {
    return this.options.operators;
  }

  get schedule(): Schedule {
    return this.options.schedule;
  }

  async run(): Promise<MaintenanceReport> {
    const { metrics, logger } = this.options;
    const stop = metrics.maintenanceDuration.startTimer();
    try {
      const report = await this.partitions.runMaintenance(
        this.options.monthsAhead,
        this.options.retentionMonths,
      );
      for (const _ of report.archive.archived)
        metrics.archiveOperations.inc({ operation: 'archive', status: 'success' });
      for (const _ of report.archive.failed)
        metrics.archiveOperations.inc({ operation: 'archive', status: 'failure' });
      stop({ status: report.archive.failed.length > 0 ? 'failure' : 'success' });
      logger.info(
        {
          created: report.ensure.created.map((c) => c.name),
          archived: report.archive.archived.map((a) => a.partitionName),
          failed: report.archive.failed.map((f) => `${f.partitionName}@${f.step}`),
          defaultRows: report.ensure.defaultRows,
          durationMs: report.durationMs,
        },
        'audit maintenance done',
      );
      return report;
    } catch (error) {
      stop({ status: 'failure' });
      throw error;
    }
  }

  async restore(month: Date): Promise<ArchiveRecord> {
    try {
      const restored = await this.partitions.restoreArchive(month);
      this.options.metrics.archiveOperations.inc({ operation: 'restore', status: 'success' });
      return restored;
    } catch (error) {
      this.options.metrics.archiveOperations.inc({ operation: 'restore', status: 'failure' });
      throw error;
    }
  }
}
