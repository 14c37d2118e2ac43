import { Arg, Ctx, ID, Int, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import type { SubscribeResolverData } from 'type-graphql';
import { CurrentPrincipal, authFailure, type Principal, type RequestContext } from '../kernel';
import type { ExportService } from './export.service';
import { ExportJob, ExportStatus, StartExportInput, type ExportJobView } from './export.types';

@Resolver()
export class ExportResolver {
  constructor(private readonly exports: ExportService) {}

  @Mutation(() => ExportJob, { description: 'Queues an export of the records you may read' })
  startExport(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => StartExportInput) input: StartExportInput,
  ): Promise<ExportJobView> {
    return this.exports.startExport(principal, { ...input, compression: input.compression ?? 'NONE' });
  }

  @Query(() => ExportJob, { description: 'One of your exports' })
  exportJob(
    @CurrentPrincipal() principal: Principal,
    @Arg('id', () => ID) id: string,
  ): Promise<ExportJobView> {
    return this.exports.exportJob(principal, id);
  }

  @Query(() => [ExportJob], { description: 'Your exports, newest first' })
  exportJobs(
    @CurrentPrincipal() principal: Principal,
    @Arg('first', () => Int, { nullable: true }) first: number | null,
    @Arg('status', () => ExportStatus, { nullable: true }) status: ExportStatus | null,
  ): Promise<ExportJobView[]> {
    return this.exports.exportJobs(principal, { first, status });
  }

  @Mutation(() => ExportJob, {
    description: 'Stops a queued or running export of yours and deletes its file',
  })
  cancelExport(
    @CurrentPrincipal() principal: Principal,
    @Arg('id', () => ID) id: string,
  ): Promise<ExportJobView> {
    return this.exports.cancelExport(principal, id);
  }

  /** First the job as it is, then each change, ending with its final status; only its owner may follow it. */
  @Subscription(() => ExportJob, {
    subscribe: ({ args, context }: SubscribeResolverData<unknown, { jobId: string }, RequestContext>) => {
      const principal = context.principal;
      if (!principal) throw authFailure('MISSING_TOKEN');
      return context.services.exports.follow(principal, args.jobId);
    },
  })
  exportProgress(
    @Root() job: ExportJobView,
    @Arg('jobId', () => ID) _jobId: string,
    @Ctx() _context: RequestContext,
  ): ExportJobView {
    return job;
  }
}
