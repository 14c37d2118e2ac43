import { Field, ObjectType, Query, Resolver } from 'type-graphql';
import type { QueueDriver, ScheduledJobInfo } from '../../platform/queue/queue.driver';
import { CurrentPrincipal, type Principal } from '../kernel';
import { ForbiddenError } from '../../platform/errors/app-error';

@ObjectType({ description: 'A job that runs once per period across all workers' })
export class ScheduledJob {
  @Field(() => String)
  name!: string;

  @Field(() => String, { description: 'A cron pattern (UTC) or "every N ms"' })
  pattern!: string;

  @Field(() => Date, { nullable: true })
  lastRunAt!: Date | null;

  @Field(() => Date, { nullable: true })
  nextRunAt!: Date | null;
}

@Resolver()
export class SystemResolver {
  constructor(private readonly queue: QueueDriver) {}

  @Query(() => [ScheduledJob], { description: 'Scheduled jobs with their last and next run (admins)' })
  async scheduledJobs(@CurrentPrincipal() principal: Principal): Promise<ScheduledJobInfo[]> {
    if (!principal.isAdmin) throw new ForbiddenError('Only company admins may list scheduled jobs');
    return (await this.queue.scheduledJobs()).sort((a, b) => a.name.localeCompare(b.name));
  }
}
