import { QueueName, type QueueDriver } from '../../platform/queue/queue.driver';

export const HealthJob = { ping: 'health.ping' } as const;

export interface HealthPingResult {
  pong: true;
  pid: number;
  receivedAt: string;
  echo: string | null;
}

/** A trivial job that proves a worker is consuming the system queue end to end. */
export function registerHealthProcessor(queue: QueueDriver): void {
  queue.process<{ echo?: string }, HealthPingResult>(QueueName.system, async (job) => {
    if (job.name !== HealthJob.ping) throw new Error(`unknown system job ${job.name}`);
    return {
      pong: true,
      pid: process.pid,
      receivedAt: new Date().toISOString(),
      echo: job.data.echo ?? null,
    };
  });
}
