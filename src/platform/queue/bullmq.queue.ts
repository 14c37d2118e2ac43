import { hostname } from 'node:os';
import { Job, Queue, QueueEvents, Worker } from 'bullmq';
import { Cluster } from 'ioredis';
import type { Logger } from '../logging/logger';
import { closeRedis, type RedisClient } from '../redis/redis.connection';
import { nextRunAfter } from './in-process.queue';
import {
  assertSchedule,
  describeSchedule,
  JOB_STATES,
  type JobListener,
  type JobOptions,
  type JobProcessor,
  type JobProgress,
  type ProcessorOptions,
  type QueueDriver,
  type QueuedJob,
  type QueueName,
  type Schedule,
  type ScheduledJobInfo,
  type ScheduleOptions,
} from './queue.driver';

/** The queue scheduled jobs run on: one BullMQ job scheduler per schedule name. */
const SCHEDULER_QUEUE = 'scheduler';

export interface BullMqDriverOptions {
  /** A connection made with `failFast: false` (BullMQ needs `maxRetriesPerRequest: null`). */
  connection: RedisClient;
  /** Key prefix of every queue. Default `crm`. On a Redis Cluster each queue's keys are hash-tagged (`keyPrefix`). */
  prefix?: string;
  logger: Logger;
}

/** BullMQ queues and workers on Redis; workers run in `npm run worker` processes. */
export class BullMqQueueDriver implements QueueDriver {
  readonly driver = 'bullmq' as const;
  private readonly queues = new Map<QueueName, Queue>();
  private readonly events = new Map<QueueName, QueueEvents>();
  private readonly workers: Worker[] = [];
  private readonly ownedConnections: RedisClient[] = [];
  private readonly prefix: string;
  private readonly clustered: boolean;
  private readonly declared = new Set<QueueName>();
  private readonly scheduleHandlers = new Map<string, () => Promise<void>>();
  private readonly schedules = new Map<string, Schedule>();
  private schedulerWorkerStarted = false;

  constructor(private readonly options: BullMqDriverOptions) {
    this.prefix = options.prefix ?? 'crm';
    this.clustered = options.connection instanceof Cluster;
  }

  /**
   * The key prefix BullMQ gets for one queue. Its Lua scripts touch several keys of a queue at once, which a Redis
   * Cluster runs only when they share a hash slot: there each queue's keys carry the hash tag `{<prefix>:<queue>}`,
   * so a queue lives in one slot and different queues spread over the masters. No flow (parent and children in one
   * script) crosses queues here, so nothing needs two queues in one slot.
   */
  keyPrefix(queue: QueueName): string {
    return this.clustered ? `{${this.prefix}:${queue}}` : this.prefix;
  }

  declareQueues(names: readonly QueueName[]): void {
    for (const name of names) this.declared.add(name);
  }

  /**
   * Follows a job until its outcome, then stops by itself. A job that already finished is answered from its stored
   * state at once; events of other jobs (or of an earlier job that reused the id) are ignored.
   */
  async follow(queueName: QueueName, jobId: string, listener: JobListener): Promise<() => Promise<void>> {
    const events = await this.queueEvents(queueName);
    let done = false;
    const stop = async () => {
      done = true;
      events.off('progress', onProgress);
      events.off('completed', onCompleted);
      events.off('failed', onFailed);
    };
    const onProgress = (event: { jobId: string; data: unknown }) => {
      if (event.jobId === jobId && !done) listener.progress?.(event.data as JobProgress);
    };
    const onCompleted = (event: { jobId: string; returnvalue: unknown }) => {
      if (event.jobId !== jobId || done) return;
      void stop();
      listener.completed?.(event.returnvalue);
    };
    const onFailed = (event: { jobId: string; failedReason: string }) => {
      if (event.jobId !== jobId || done) return;
      void stop();
      listener.failed?.(event.failedReason);
    };
    events.on('progress', onProgress);
    events.on('completed', onCompleted);
    events.on('failed', onFailed);
    // Finished before we listened (or events were trimmed): its stored state says how it ended.
    const job = await Job.fromId(this.queue(queueName), jobId);
    const state = job ? await job.getState() : 'unknown';
    if (job && state === 'completed') onCompleted({ jobId, returnvalue: job.returnvalue });
    else if (job && state === 'failed') onFailed({ jobId, failedReason: job.failedReason });
    return stop;
  }

  async schedule(
    name: string,
    schedule: Schedule,
    handler: () => Promise<void>,
    options: ScheduleOptions = {},
  ): Promise<void> {
    assertSchedule(name, schedule, () => nextRunAfter(schedule, new Date()));
    this.schedules.set(name, schedule);
    // Only processes that run schedules write them to Redis (so a gateway never waits on Redis at boot for this).
    if (options.run === false) return;
    // The handler is known before any job of it can arrive; callers declaring several schedules at once (Promise.all)
    // register every handler before the worker below takes its first job.
    this.scheduleHandlers.set(name, handler);
    // Idempotent: BullMQ keeps one scheduler per name and adds one job per period, taken by one worker.
    await this.queue(SCHEDULER_QUEUE).upsertJobScheduler(
      name,
      'cron' in schedule ? { pattern: schedule.cron, tz: 'UTC' } : { every: schedule.everyMs },
      { name, data: {}, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
    );
    if (this.schedulerWorkerStarted) return;
    this.schedulerWorkerStarted = true;
    this.process(SCHEDULER_QUEUE, async (job) => {
      const run = this.scheduleHandlers.get(job.name);
      if (!run) throw new Error(`no handler for scheduled job ${job.name} in this process`);
      await run();
      await this.options.connection.hset(this.lastRunKey(), job.name, new Date().toISOString());
    });
  }

  async scheduledJobs(): Promise<ScheduledJobInfo[]> {
    const [schedulers, lastRuns] = await Promise.all([
      this.queue(SCHEDULER_QUEUE).getJobSchedulers(0, -1, true),
      this.options.connection.hgetall(this.lastRunKey()),
    ]);
    return schedulers.map((scheduler) => {
      const known = this.schedules.get(scheduler.key);
      const last = lastRuns[scheduler.key];
      return {
        name: scheduler.key,
        pattern: known
          ? describeSchedule(known)
          : (scheduler.pattern ?? `every ${scheduler.every ?? '?'} ms`),
        lastRunAt: last ? new Date(last) : null,
        nextRunAt: scheduler.next ? new Date(scheduler.next) : null,
      };
    });
  }

  /** Beside the scheduler queue's keys (in its slot on a cluster). */
  private lastRunKey(): string {
    return `${this.keyPrefix(SCHEDULER_QUEUE)}:${SCHEDULER_QUEUE}:last-run`;
  }

  async add<TData, TResult>(
    queueName: QueueName,
    jobName: string,
    data: TData,
    options: JobOptions = {},
  ): Promise<QueuedJob<TResult>> {
    const job = await this.queue(queueName).add(jobName, data, {
      attempts: options.attempts ?? 1,
      jobId: options.jobId,
      ...(options.backoffMs
        ? { backoff: { type: 'exponential', delay: options.backoffMs, jitter: options.backoffJitter ?? 0 } }
        : {}),
      removeOnComplete: { age: 3600, count: 1000 },
      removeOnFail: { age: 24 * 3600 },
    });
    const id = job.id!;
    return {
      id,
      finished: async (timeoutMs = 30_000) => {
        const events = await this.queueEvents(queueName);
        try {
          return (await job.waitUntilFinished(events, timeoutMs)) as TResult;
        } catch (error) {
          // Say where the job is: a timeout on a job still "waiting" means no worker took it.
          const state = await job.getState().catch(() => 'unknown');
          (error as Error).message += ` (job ${id} of ${queueName} is ${state})`;
          throw error;
        }
      },
    };
  }

  process<TData, TResult>(
    queueName: QueueName,
    processor: JobProcessor<TData, TResult>,
    options: ProcessorOptions = {},
  ): void {
    // Each worker owns its connection (BullMQ blocks on it); producers share the one passed in.
    const connection = this.options.connection.duplicate();
    this.ownedConnections.push(connection);
    const worker = new Worker<TData, TResult>(
      queueName,
      (job) =>
        processor({
          id: job.id!,
          name: job.name,
          data: job.data,
          attempt: job.attemptsMade + 1,
          progress: (value) => job.updateProgress(value),
        }),
      {
        connection,
        prefix: this.keyPrefix(queueName),
        // Names the process in the job (`processedBy`) and in CLIENT LIST: which worker holds a job.
        name: `${hostname()}:${process.pid}`,
        concurrency: options.concurrency ?? 1,
        ...(options.lockDurationMs
          ? { lockDuration: options.lockDurationMs, stalledInterval: options.lockDurationMs }
          : {}),
      },
    );
    worker.on('failed', (job, error) => {
      this.options.logger.warn({ queue: queueName, jobId: job?.id, err: error.message }, 'job failed');
    });
    worker.on('error', (error) =>
      this.options.logger.error({ queue: queueName, err: error.message }, 'worker error'),
    );
    this.workers.push(worker);
  }

  /** Counts every declared queue, so an idle queue still reports zeros. */
  async counts() {
    const all = await Promise.all(
      [...this.declared].map(async (queue) => {
        const counts = await this.queue(queue).getJobCounts(...JOB_STATES);
        return JOB_STATES.map((state) => ({ queue, state, count: counts[state] ?? 0 }));
      }),
    );
    return all.flat();
  }

  async closeWorkers(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.close()));
    this.workers.length = 0;
  }

  async closeQueues(): Promise<void> {
    await Promise.all([...this.events.values()].map((events) => events.close()));
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
    await Promise.all(this.ownedConnections.map(closeRedis));
    this.ownedConnections.length = 0;
    this.events.clear();
    this.queues.clear();
  }

  private queue(name: QueueName): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.options.connection, prefix: this.keyPrefix(name) });
      this.queues.set(name, queue);
    }
    return queue;
  }

  private async queueEvents(name: QueueName): Promise<QueueEvents> {
    let events = this.events.get(name);
    if (!events) {
      const connection = this.options.connection.duplicate();
      this.ownedConnections.push(connection);
      // Read the event stream from its start: with the default ("new events only") an event emitted between
      // "ready" and the first read is lost, and a job finishing in that gap looked like it never finished.
      events = new QueueEvents(name, { connection, prefix: this.keyPrefix(name), lastEventId: '0-0' });
      this.events.set(name, events);
      await events.waitUntilReady();
    }
    return events;
  }
}
