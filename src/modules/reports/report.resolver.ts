import { Arg, Query, Resolver } from 'type-graphql';
import { CurrentPrincipal, type Principal } from '../kernel';
import type { ReportService, ReportView } from './report.service';
import { Report, ReportInput } from './report.types';

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
}
