import { Arg, Mutation, Query, Resolver } from 'type-graphql';
import { ForbiddenError } from '../../platform/errors/app-error';
import { CurrentPrincipal, type Principal } from '../kernel';
import type { ServiceRegistry } from '../kernel/registries';
import type { AuditLogPage, AuditLogQuery } from './audit-log.query';
import type { AuditMaintenance } from './audit-maintenance';
import {
  monthLabel,
  parseMonth,
  type ArchiveFailure,
  type ArchiveRecord,
  type MaintenanceReport,
  type PartitionInfo,
} from './audit-partition.model';
import {
  AuditArchive,
  AuditLogInput,
  AuditLogPage as AuditLogPageType,
  AuditMaintenanceReport,
  AuditPartition,
} from './audit.types';

@Resolver()
export class AuditResolver {
  constructor(
    private readonly query: AuditLogQuery,
    private readonly maintenance: AuditMaintenance,
    private readonly identity: ServiceRegistry['identity'],
    private readonly operators: ReadonlySet<string>,
  ) {}

  /**
   * Partitions and archives hold every tenant's rows, and maintenance takes locks every mutation waits on: only the
   * platform's operators (company admins whose user ids are in PLATFORM_OPERATOR_USER_IDS) may use them.
   */
  private async requireOperator(principal: Principal, what: string): Promise<void> {
    await this.identity.requireAdmin(principal, what);
    if (!this.operators.has(principal.userId.toLowerCase()))
      throw new ForbiddenError(`Only platform operators (PLATFORM_OPERATOR_USER_IDS) may ${what}`);
  }

  @Query(() => AuditLogPageType, {
    description: "The company's audit trail (admins); others see entries about records they may read",
  })
  auditLog(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => AuditLogInput, { nullable: true }) input: AuditLogInput | null,
  ): Promise<AuditLogPage> {
    return this.query.list(principal, input ?? {});
  }

  @Query(() => [AuditPartition], { description: 'Monthly partitions of the audit log (platform operators)' })
  async auditPartitions(@CurrentPrincipal() principal: Principal): Promise<AuditPartition[]> {
    await this.requireOperator(principal, 'list audit partitions');
    return (await this.maintenance.partitions.listPartitions()).map(presentPartition);
  }

  @Query(() => [AuditArchive], { description: 'Archived audit months (platform operators)' })
  async auditArchives(@CurrentPrincipal() principal: Principal): Promise<AuditArchive[]> {
    await this.requireOperator(principal, 'list audit archives');
    return (await this.maintenance.partitions.listArchives()).map(presentArchive);
  }

  @Mutation(() => AuditMaintenanceReport, {
    description:
      'Creates months ahead and archives months past retention now (platform operators; the worker runs it daily)',
  })
  async runAuditMaintenance(@CurrentPrincipal() principal: Principal): Promise<AuditMaintenanceReport> {
    await this.requireOperator(principal, 'run audit maintenance');
    return presentReport(await this.maintenance.run());
  }

  @Mutation(() => AuditArchive, {
    description: 'Loads an archived month back into the audit log (platform operators)',
  })
  async restoreAuditArchive(
    @CurrentPrincipal() principal: Principal,
    @Arg('month', () => String, { description: 'YYYY-MM' }) month: string,
  ): Promise<AuditArchive> {
    await this.requireOperator(principal, 'restore audit archives');
    return presentArchive(await this.maintenance.restore(parseMonth('month', month)));
  }
}

function presentPartition(partition: PartitionInfo): AuditPartition {
  return {
    ...partition,
    month: partition.month ? monthLabel(partition.month) : null,
    rows: partition.estimatedRows,
  };
}

function presentArchive(archive: ArchiveRecord): AuditArchive {
  return { ...archive, month: monthLabel(archive.month) };
}

function presentFailure(failure: ArchiveFailure) {
  return { ...failure, month: monthLabel(failure.month) };
}

export function presentReport(report: MaintenanceReport): AuditMaintenanceReport {
  return {
    created: report.ensure.created,
    skipped: report.ensure.skipped,
    defaultRows: report.ensure.defaultRows,
    archived: report.archive.archived.map(presentArchive),
    failed: report.archive.failed.map(presentFailure),
    keptRestored: report.archive.keptRestored,
    partitions: report.partitions.map(presentPartition),
    durationMs: report.durationMs,
  };
}
