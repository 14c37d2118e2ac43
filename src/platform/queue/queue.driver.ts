export const JOB_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** Queue names are declared by the modules that use them (each in one `as const` object); platform owns none. */
export type QueueName = string;

export interface JobOptions {
  /** Attempts before the job counts as failed. Default 1. */
  attempts?: number;
  /** Deterministic id for de-duplication. Default generated. */
  jobId?: string;
  /** Delay before a retry, doubled each attempt. Default 0. */
  backoffMs?: number;
  /** Fraction (0 to 1) of each retry delay drawn at random, so many jobs failing together do not retry together. */
  backoffJitter?: number;
}

export interface QueuedJob<TResult = unknown> {
  id: string;
  /** Resolves with the processor's result, rejects with its error. */
  finished(timeoutMs?: number): Promise<TResult>;
}

/** A processor's progress report: a percentage or any small JSON object. */
export type JobProgress = number | Record<string, unknown>;

export interface JobContext<TData> {
  id: string;
  name: string;
  data: TData;
  attempt: number;
  /** Reports progress; any process following the job hears it. */
  progress(value: JobProgress): Promise<void>;
}

export type JobProcessor<TData = unknown, TResult = unknown> = (job: JobContext<TData>) => Promise<TResult>;

export interface ProcessorOptions {
  /** Jobs run at once by this process. Default 1. */
  concurrency?: number;
  /**
   * How long a worker's claim on a job lasts unless renewed (it renews at half of it while alive). A job whose worker
   * died is retried once its claim lapses. Default 30000 (BullMQ); ignored in-process.
   */
  lockDurationMs?: number;
}

/** What a follower of a job hears, from whichever process runs it. */
export interface JobListener {
  progress?(value: JobProgress): void;
  completed?(result: unknown): void;
  failed?(reason: string): void;
}

/** Either a fixed period or a cron pattern (5 or 6 fields, UTC). */
export type Schedule = { everyMs: number } | { cron: string };

export interface ScheduledJobInfo {
  name: string;
  /** `every 60000 ms` or the cron pattern. */
  pattern: string;
  lastRunAt: Date | null;
  nextRunAt: Date | null;
}

export interface ScheduleOptions {
  /** Run the handler in this process (workers; the gateway when queues are in-process). Default true. */
  run?: boolean;
}

/** BullMQ on Redis, or an in-process runner with the same interface when Redis is not configured. */
export interface QueueDriver {
  readonly driver: 'bullmq' | 'in-process';
  /** Queues to report in `counts()` even while idle. */
  declareQueues(names: readonly QueueName[]): void;
  add<TData, TResult = unknown>(
    queue: QueueName,
    jobName: string,
    data: TData,
    options?: JobOptions,
  ): Promise<QueuedJob<TResult>>;
  /** Starts processing a queue in this process (the worker, or the gateway in embedded mode). */
  process<TData, TResult>(
    queue: QueueName,
    processor: JobProcessor<TData, TResult>,
    options?: ProcessorOptions,
  ): void;
  /** Follows one job's progress and outcome; returns a function that stops following. */
  follow(queue: QueueName, jobId: string, listener: JobListener): Promise<() => Promise<void>>;
  /**
   * Runs `handler` once per period across every process of the deployment (BullMQ job schedulers; timers in process).
   * Every process may declare the schedule; only those with `run` execute it.
   */
  schedule(
    name: string,
    schedule: Schedule,
    handler: () => Promise<void>,
    options?: ScheduleOptions,
  ): Promise<void>;
  /** The declared schedules with their last and next run. */
  scheduledJobs(): Promise<ScheduledJobInfo[]>;
  /** Jobs per queue and state (waiting, active, delayed, failed), for the queue gauge. */
  counts(): Promise<Array<{ queue: QueueName; state: JobState; count: number }>>;
  /** Stops taking jobs and waits for the running ones. */
  closeWorkers(): Promise<void>;
  /** Closes producer connections. */
  closeQueues(): Promise<void>;
}

export function describeSchedule(schedule: Schedule): string {
  return 'cron' in schedule ? schedule.cron : `every ${schedule.everyMs} ms`;
}

/** Rejects a schedule that could not run: a period under 100 ms or a cron pattern that does not parse. */
export function assertSchedule(name: string, schedule: Schedule, nextRun: () => unknown): void {
  if ('everyMs' in schedule) {
    if (!Number.isInteger(schedule.everyMs) || schedule.everyMs < 100)
      throw new Error(`schedule ${name}: everyMs must be an integer of at least 100`);
    return;
  }
  try {
    nextRun();
  } catch (error) {
    throw new Error(`schedule ${name}: cron "${schedule.cron}" does not parse (${(error as Error).message})`);
  }
}
