import type {
  JobContext,
  JobListener,
  JobOptions,
  JobProcessor,
  ProcessorOptions,
  QueueDriver,
  QueuedJob,
  QueueName,
  Schedule,
  ScheduleOptions,
} from '../queue/queue.driver';
import type { TraceCarrier, Tracer } from './tracer.port';

/** The job data key the trace context travels under (taken out again before the processor sees the data). */
export const TRACE_CONTEXT_KEY = '_traceContext';

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A queue driver whose jobs continue the trace that queued them: `add` puts the active W3C trace context into the
 * job's data, and the processor runs in a consumer span whose parent is that context, in whichever process takes the
 * job (a job queued outside any trace starts its own). Everything else is the wrapped driver's.
 */
class TracedQueueDriver implements QueueDriver {
  constructor(
    private readonly inner: QueueDriver,
    private readonly tracer: Tracer,
  ) {}

  get driver(): QueueDriver['driver'] {
    return this.inner.driver;
  }

  add<TData, TResult = unknown>(
    queue: QueueName,
    jobName: string,
    data: TData,
    options?: JobOptions,
  ): Promise<QueuedJob<TResult>> {
    const carrier = this.tracer.carrier();
    const carried =
      isPlainObject(data) && Object.keys(carrier).length > 0
        ? ({ ...data, [TRACE_CONTEXT_KEY]: carrier } as TData)
        : data;
    return this.inner.add<TData, TResult>(queue, jobName, carried, options);
  }

  process<TData, TResult>(
    queue: QueueName,
    processor: JobProcessor<TData, TResult>,
    options?: ProcessorOptions,
  ): void {
    const traced = (job: JobContext<TData>): Promise<TResult> => {
      let data = job.data;
      let parent: TraceCarrier = {};
      if (isPlainObject(data) && TRACE_CONTEXT_KEY in data) {
        const { [TRACE_CONTEXT_KEY]: carried, ...rest } = data;
        if (isPlainObject(carried)) parent = carried as TraceCarrier;
        data = rest as TData;
      }
      return this.tracer.inSpan(
        `${queue} process`,
        {
          kind: 'consumer',
          parent,
          attributes: {
            'messaging.system': this.inner.driver,
            'messaging.operation.type': 'process',
            'messaging.destination.name': queue,
            'messaging.message.id': job.id,
            'crm.job.name': job.name,
            'crm.job.attempt': job.attempt,
          },
        },
        () => processor({ ...job, data }),
      );
    };
    this.inner.process(queue, traced, options);
  }

  declareQueues(names: readonly QueueName[]): void {
    this.inner.declareQueues(names);
  }

  follow(queue: QueueName, jobId: string, listener: JobListener): Promise<() => Promise<void>> {
    return this.inner.follow(queue, jobId, listener);
  }

  schedule(
    name: string,
    schedule: Schedule,
    handler: () => Promise<void>,
    options?: ScheduleOptions,
  ): Promise<void> {
    return this.inner.schedule(name, schedule, handler, options);
  }

  scheduledJobs() {
    return this.inner.scheduledJobs();
  }

  counts() {
    return this.inner.counts();
  }

  closeWorkers(): Promise<void> {
    return this.inner.closeWorkers();
  }

  closeQueues(): Promise<void> {
    return this.inner.closeQueues();
  }
}

/** The driver itself when tracing is off; else the driver with jobs that carry their trace. */
export function tracedQueue(driver: QueueDriver, tracer: Tracer): QueueDriver {
  return tracer.enabled ? new TracedQueueDriver(driver, tracer) : driver;
}
