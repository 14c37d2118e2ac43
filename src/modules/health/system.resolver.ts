import { Field, ObjectType, Query, Resolver } from 'type-graphql';
import type { QueueDriver, ScheduledJobInfo } from '../../platform/queue/queue.driver';
import type { IdentityService } from '../identity';
import { CurrentPrincipal, type Principal } from '../kernel';

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
  constructor(
    private readonly queue: QueueDriver,
    private readonly identity: IdentityService,
  ) {}

  /** Schedules are the deployment's, not a tenant's: their names must never carry tenant data. */
  @Query(() => [ScheduledJob], { description: 'Scheduled jobs with their last and next run (admins)' })
  async scheduledJobs(@CurrentPrincipal() principal: Principal): Promise<ScheduledJobInfo[]> {
    await this.identity.requireAdmin(principal, 'list scheduled jobs');
    return (await this.queue.scheduledJobs()).sort((a, b) => a.name.localeCompare(b.name));
  }
}
