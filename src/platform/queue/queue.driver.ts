/** Queue names, declared once; later slices add theirs here. */
export const QueueName = {
  system: 'system',
} as const;
export type QueueName = (typeof QueueName)[keyof typeof QueueName];

export const JOB_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface JobOptions {
  /** Attempts before the job counts as failed. Default 1. */
  attempts?: number;
  /** Deterministic id for de-duplication. Default generated. */
  jobId?: string;
}

export interface QueuedJob<TResult = unknown> {
  id: string;
  /** Resolves with the processor's result, rejects with its error. */
  finished(timeoutMs?: number): Promise<TResult>;
}

export interface JobContext<TData> {
  id: string;
  name: string;
  data: TData;
  attempt: number;
}

export type JobProcessor<TData = unknown, TResult = unknown> = (job: JobContext<TData>) => Promise<TResult>;

export interface ProcessorOptions {
  /** Jobs run at once by this process. Default 1. */
  concurrency?: number;
}

/** BullMQ on Redis, or an in-process runner with the same interface when Redis is not configured. */
export interface QueueDriver {
  readonly driver: 'bullmq' | 'in-process';
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
  /** Jobs per queue and state (waiting, active, delayed, failed), for the queue gauge. */
  counts(): Promise<Array<{ queue: QueueName; state: JobState; count: number }>>;
  /** Stops taking jobs and waits for the running ones. */
  closeWorkers(): Promise<void>;
  /** Closes producer connections. */
  closeQueues(): Promise<void>;
}
