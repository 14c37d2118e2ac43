import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { CronExpressionParser } from 'cron-parser';
import {
  assertSchedule,
  describeSchedule,
  type JobContext,
  type JobListener,
  type JobOptions,
  type JobProcessor,
  type ProcessorOptions,
  type QueueDriver,
  type QueuedJob,
  type QueueName,
  type Schedule,
  type ScheduledJobInfo,
  type ScheduleOptions,
} from './queue.driver';

interface TimerSchedule {
  info: ScheduledJobInfo;
  timer?: NodeJS.Timeout;
}

/** The next time a schedule fires after `from`. */
export function nextRunAfter(schedule: Schedule, from: Date): Date {
  if ('everyMs' in schedule) return new Date(from.getTime() + schedule.everyMs);
  return CronExpressionParser.parse(schedule.cron, { currentDate: from, tz: 'UTC' }).next().toDate();
}

interface PendingJob {
  context: JobContext<unknown>;
  maxAttempts: number;
  backoffMs: number;
  backoffJitter: number;
}

interface Lane {
  processor?: JobProcessor<unknown, unknown>;
  concurrency: number;
  running: number;
  pending: PendingJob[];
}

/** Runs jobs in this process, with per-queue concurrency and retries; for first runs without Redis. */
export class InProcessQueueDriver implements QueueDriver {
  readonly driver = 'in-process' as const;
  private readonly lanes = new Map<QueueName, Lane>();
  private readonly results = new EventEmitter().setMaxListeners(0);
  private readonly outcomes = new Map<string, { ok: boolean; value: unknown }>();
  private readonly inFlight = new Set<Promise<void>>();
  private accepting = true;
  private readonly failedCount = new Map<QueueName, number>();
  private readonly progress = new EventEmitter().setMaxListeners(0);
  private readonly schedules = new Map<string, TimerSchedule>();
  /** Ids of jobs queued, waiting for a retry or running: adding one of them again is a no-op (as in BullMQ). */
  private readonly live = new Set<string>();

  declareQueues(names: readonly QueueName[]): void {
    for (const name of names) this.lane(name);
  }

  /** Follows a job until its outcome, then stops by itself; a finished job is answered at once. */
  async follow(_queue: QueueName, jobId: string, listener: JobListener): Promise<() => Promise<void>> {
    const stop = async () => {
      this.progress.off(jobId, onProgress);
      this.results.off(jobId, onOutcome);
    };
    const onProgress = (value: Parameters<NonNullable<JobListener['progress']>>[0]) =>
      listener.progress?.(value);
    const onOutcome = () => {
      const outcome = this.outcomes.get(jobId);
      if (!outcome) return;
      void stop();
      if (outcome.ok) listener.completed?.(outcome.value);
      else listener.failed?.(outcome.value instanceof Error ? outcome.value.message : String(outcome.value));
    };
    this.progress.on(jobId, onProgress);
    this.results.on(jobId, onOutcome);
    onOutcome(); // already finished
    return stop;
  }

  async schedule(
    name: string,
    schedule: Schedule,
    handler: () => Promise<void>,
    options: ScheduleOptions = {},
  ): Promise<void> {
    assertSchedule(name, schedule, () => nextRunAfter(schedule, new Date()));
    clearTimeout(this.schedules.get(name)?.timer);
    const entry: TimerSchedule = {
      info: { name, pattern: describeSchedule(schedule), lastRunAt: null, nextRunAt: null },
    };
    this.schedules.set(name, entry);
    if (options.run === false) return;
    let running = false;
    const arm = (after: Date) => {
      if (!this.accepting) return;
      const next = nextRunAfter(schedule, after);
      entry.info.nextRunAt = next;
      entry.timer = setTimeout(
        () => {
          // The next slot counts from this one (a timer may fire a little early: never the same cron slot twice).
          arm(new Date(Math.max(Date.now(), next.getTime()) + 1));
          if (running) return; // a run slower than its period skips the overlapping tick
          running = true;
          entry.info.lastRunAt = new Date();
          const run = handler()
            .catch(() => {
              // A failed run waits for the next period, as a failed BullMQ scheduler job does.
            })
            .finally(() => {
              running = false;
            });
          this.inFlight.add(run);
          void run.finally(() => this.inFlight.delete(run));
        },
        Math.max(0, next.getTime() - Date.now()),
      );
      entry.timer.unref();
    };
    arm(new Date());
  }

  async scheduledJobs(): Promise<ScheduledJobInfo[]> {
    return [...this.schedules.values()].map((entry) => ({ ...entry.info }));
  }

  async add<TData, TResult>(
    queue: QueueName,
    jobName: string,
    data: TData,
    options: JobOptions = {},
  ): Promise<QueuedJob<TResult>> {
    if (!this.accepting) throw new Error(`queue ${queue} is closed`);
    const id = options.jobId ?? randomUUID();
    const handle = { id, finished: (timeoutMs?: number) => this.waitFor<TResult>(id, timeoutMs) };
    if (this.live.has(id)) return handle;
    this.live.add(id);
    this.lane(queue).pending.push({
      context: {
        id,
        name: jobName,
        data,
        attempt: 1,
        progress: async (value) => void this.progress.emit(id, value),
      },
      maxAttempts: options.attempts ?? 1,
      backoffMs: options.backoffMs ?? 0,
      backoffJitter: options.backoffJitter ?? 0,
    });
    this.drain(queue);
    return handle;
  }

  process<TData, TResult>(
    queue: QueueName,
    processor: JobProcessor<TData, TResult>,
    options: ProcessorOptions = {},
  ): void {
    const lane = this.lane(queue);
    lane.processor = processor as JobProcessor<unknown, unknown>;
    lane.concurrency = options.concurrency ?? 1;
    this.drain(queue);
  }

  async counts() {
    return [...this.lanes].flatMap(([queue, lane]) => [
      { queue, state: 'waiting' as const, count: lane.pending.length },
      { queue, state: 'active' as const, count: lane.running },
      { queue, state: 'delayed' as const, count: 0 },
      { queue, state: 'failed' as const, count: this.failedCount.get(queue) ?? 0 },
    ]);
  }

  async closeWorkers(): Promise<void> {
    this.accepting = false;
    for (const entry of this.schedules.values()) clearTimeout(entry.timer);
    for (const lane of this.lanes.values()) lane.pending.length = 0;
    await Promise.allSettled([...this.inFlight]);
  }

  async closeQueues(): Promise<void> {
    this.accepting = false;
  }

  private lane(queue: QueueName): Lane {
    let lane = this.lanes.get(queue);
    if (!lane) {
      lane = { concurrency: 1, running: 0, pending: [] };
      this.lanes.set(queue, lane);
    }
    return lane;
  }

  private drain(queue: QueueName): void {
    const lane = this.lane(queue);
    const processor = lane.processor;
    if (!processor) return;
    while (lane.running < lane.concurrency && lane.pending.length > 0) {
      const job = lane.pending.shift()!;
      lane.running++;
      const run = (async () => {
        try {
          const value = await processor(job.context);
          this.settle(job.context.id, true, value);
        } catch (error) {
          if (job.context.attempt < job.maxAttempts && this.accepting) {
            const retry = { ...job, context: { ...job.context, attempt: job.context.attempt + 1 } };
            const delay =
              job.backoffMs * 2 ** (job.context.attempt - 1) * (1 - job.backoffJitter * Math.random());
            if (delay <= 0) lane.pending.push(retry);
            else {
              setTimeout(() => {
                if (!this.accepting) return;
                lane.pending.push(retry);
                this.drain(queue);
              }, delay).unref();
            }
          } else {
            this.failedCount.set(queue, (this.failedCount.get(queue) ?? 0) + 1);
            this.settle(job.context.id, false, error);
          }
        } finally {
          lane.running--;
        }
      })();
      this.inFlight.add(run);
      void run.finally(() => {
        this.inFlight.delete(run);
        this.drain(queue);
      });
    }
  }

  private settle(id: string, ok: boolean, value: unknown): void {
    this.live.delete(id);
    this.outcomes.set(id, { ok, value });
    this.results.emit(id);
    // Keep outcomes briefly for late `finished()` callers, then let them go.
    setTimeout(() => this.outcomes.delete(id), 60_000).unref();
  }

  private waitFor<TResult>(id: string, timeoutMs = 30_000): Promise<TResult> {
    return new Promise<TResult>((resolve, reject) => {
      const deliver = () => {
        clearTimeout(timer);
        const outcome = this.outcomes.get(id)!;
        if (outcome.ok) resolve(outcome.value as TResult);
        else reject(outcome.value instanceof Error ? outcome.value : new Error(String(outcome.value)));
      };
      const timer = setTimeout(() => {
        this.results.off(id, deliver);
        reject(new Error(`job ${id} did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      if (this.outcomes.has(id)) deliver();
      else this.results.once(id, deliver);
    });
  }
}
