import { randomUUID } from 'node:crypto';
import {
  HealthJob,
  HealthQueue,
  runHealthJob,
  type HealthPingResult,
} from '../../src/modules/health/health.processor';
import { BullMqQueueDriver } from '../../src/platform/queue/bullmq.queue';
import { closeRedis, createRedisConnection } from '../../src/platform/redis/redis.connection';
import { InProcessQueueDriver } from '../../src/platform/queue/in-process.queue';
import { spawnBuilt, testProcessEnv, type SpawnedProcess } from '../helpers/spawn-gateway';
import { startTestApp, type TestApp } from '../helpers/test-app';

describe('queues', () => {
  let producer: TestApp;
  let worker: SpawnedProcess | undefined;

  beforeAll(async () => {
    producer = await startTestApp({}, 'cli');
  });
  afterAll(async () => {
    worker?.child.kill('SIGKILL');
    await producer.stop();
  });

  it('a real `npm run worker` process consumes BullMQ jobs that another process enqueued', async () => {
    worker = spawnBuilt('worker', testProcessEnv());
    await worker.waitFor(/worker started/);
    expect(worker.output()).toContain(`"queue":"bullmq (${process.env.TEST_REDIS_URL})"`);

    // The spawned worker uses the default prefix; enqueue under the same one.
    const connection = createRedisConnection({
      url: process.env.REDIS_URL,
      name: 'test-producer',
      logger: producer.app.logger,
      failFast: false,
    });
    const queue = new BullMqQueueDriver({ connection, logger: producer.app.logger });
    try {
      const echo = randomUUID();
      const job = await queue.add<{ echo: string }, HealthPingResult>(HealthQueue.system, HealthJob.ping, {
        echo,
      });
      const result = await job.finished(20_000);
      expect(result.echo).toBe(echo);
      expect(result.pid).toBe(worker.child.pid);
      expect(result.pid).not.toBe(process.pid);
    } finally {
      await queue.closeQueues();
      await closeRedis(connection);
    }

    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
  });

  it('BullMQ driver in-process: a failing job reports its error to the producer', async () => {
    const queue = producer.app.queue;
    queue.process(HealthQueue.system, async (job) => {
      if (job.name === 'boom') throw new Error('exploded as asked');
      return 'fine';
    });
    const ok = await queue.add(HealthQueue.system, 'calm', {});
    expect(await ok.finished(10_000)).toBe('fine');
    const bad = await queue.add(HealthQueue.system, 'boom', {});
    await expect(bad.finished(10_000)).rejects.toThrow('exploded as asked');
    await queue.closeWorkers();
  });

  it('the in-process driver runs jobs with the same interface, retries, and bounded concurrency', async () => {
    const queue = new InProcessQueueDriver();
    let running = 0;
    let peak = 0;
    let attemptsSeen = 0;
    queue.process<{ n: number; flaky?: boolean }, number>(
      HealthQueue.system,
      async (job) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setTimeout(resolve, 10));
        running--;
        if (job.data.flaky && job.attempt < 3) {
          attemptsSeen = job.attempt;
          throw new Error('try again');
        }
        return job.data.n * 2;
      },
      { concurrency: 2 },
    );
    const jobs = await Promise.all(
      [1, 2, 3, 4, 5].map((n) => queue.add<{ n: number }, number>(HealthQueue.system, 'double', { n })),
    );
    expect(await Promise.all(jobs.map((job) => job.finished()))).toEqual([2, 4, 6, 8, 10]);
    expect(peak).toBe(2);
    const flaky = await queue.add<{ n: number; flaky: boolean }, number>(
      HealthQueue.system,
      'double',
      { n: 7, flaky: true },
      { attempts: 3 },
    );
    expect(await flaky.finished()).toBe(14);
    expect(attemptsSeen).toBe(2);
    await queue.closeWorkers();

    const health = new InProcessQueueDriver();
    health.process(HealthQueue.system, runHealthJob);
    const pong = await (
      await health.add<object, HealthPingResult>(HealthQueue.system, HealthJob.ping, {})
    ).finished();
    expect(pong).toMatchObject({ pong: true, pid: process.pid });
  });
});
