import { defineModule } from '../kernel';
import { HealthQueue, runHealthJob } from './health.processor';

/** The worker's health job: proves a worker consumes queues end to end. */
export const healthModule = defineModule({
  name: 'health',
  queues: Object.values(HealthQueue),
  processors: () => [{ queue: HealthQueue.system, processor: runHealthJob }],
});
