import type { QueueDriver } from '../../platform/queue/queue.driver';
import { defineModule } from '../kernel';
import { HealthQueue, runHealthJob } from './health.processor';
import { SystemResolver } from './system.resolver';

export interface SystemServices {
  /** The queue port, for operators' views of jobs. */
  jobs: QueueDriver;
}

declare module '../kernel/registries' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ServiceRegistry extends SystemServices {}
}

/** The worker's health job (proves a worker consumes queues end to end) and the operators' job views. */
export const healthModule = defineModule<SystemServices>({
  name: 'health',
  queues: Object.values(HealthQueue),
  createServices: ({ queue }) => ({ jobs: queue }),
  resolvers: (services) => [
    { resolver: SystemResolver, create: () => new SystemResolver(services.jobs, services.identity) },
  ],
  processors: () => [{ queue: HealthQueue.system, processor: runHealthJob }],
});
