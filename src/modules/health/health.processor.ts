import type { JobContext } from '../../platform/queue/queue.driver';

/** Queues of this slice, declared once. */
export const HealthQueue = { system: 'system' } as const;

export const HealthJob = { ping: 'health.ping' } as const;

export interface HealthPingResult {
  pong: true;
  pid: number;
  receivedAt: string;
  echo: string | null;
}

/** A trivial job that proves a worker is consuming the system queue end to end. */
export async function runHealthJob(job: JobContext<{ echo?: string }>): Promise<HealthPingResult> {
  if (job.name !== HealthJob.ping) throw new Error(`unknown system job ${job.name}`);
  return { pong: true, pid: process.pid, receivedAt: new Date().toISOString(), echo: job.data.echo ?? null };
}
