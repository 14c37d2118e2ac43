import { Arg, Mutation, Query, Resolver } from 'type-graphql';
import { CurrentPrincipal, RecordType, type Principal } from '../kernel';
import type { RollupStateView } from './report.rollup-state';
import type { ReportService, ReportView } from './report.service';
import { Report, ReportInput, ReportRollup } from './report.types';

@Resolver()
export class ReportResolver {
  constructor(private readonly reports: ReportService) {}

  @Query(() => Report, { description: 'Aggregates of the records you may read' })
  report(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => ReportInput) input: ReportInput,
  ): Promise<ReportView> {
    return this.reports.report(principal, input);
  }

  @Query(() => [ReportRollup], {
    description:
      "Company admins: your company's report rollups as their last rebuild left them (those never rebuilt are not listed)",
  })
  reportRollups(@CurrentPrincipal() principal: Principal): Promise<RollupStateView[]> {
    return this.reports.rollupStatesFor(principal);
  }

  @Mutation(() => [ReportRollup], {
    description:
      "Company admins: rebuilds your company's report rollups of a record type (all types when left out) from the records, and reports their sizes",
  })
  precomputeCommonReports(
    @CurrentPrincipal() principal: Principal,
    @Arg('entityType', () => RecordType, { nullable: true }) entityType: RecordType | null,
  ): Promise<RollupStateView[]> {
    return this.reports.precomputeFor(principal, entityType);
  }
}
