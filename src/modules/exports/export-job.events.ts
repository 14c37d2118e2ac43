import type { EventBus } from '../../platform/pubsub/event-bus';
import type { GraphQLPubSub } from '../../platform/pubsub/graphql-pubsub';
import { toView, type ExportJobRow } from './export-job.repository';
import { ExportChannel, ExportTopic, type ExportJobView } from './export.types';

/** What the pub/sub carries: the job's state now, for its owner's subscriptions on every gateway. */
export interface ExportProgressEvent {
  companyId: string;
  ownerId: string;
  job: ExportJobView;
}

/**
 * What export jobs announce across processes: each change of a job (GraphQL pub/sub, for `exportProgress`) and each
 * cancel (event bus, for the process running the job).
 */
export class ExportJobEvents {
  constructor(
    private readonly pubsub: GraphQLPubSub,
    private readonly bus: EventBus,
  ) {}

  changed(row: ExportJobRow): void {
    const event: ExportProgressEvent = { companyId: row.company_id, ownerId: row.owner_id, job: toView(row) };
    this.pubsub.publish(ExportTopic.progress, event);
  }

  /** Every job change published from now on (subscribers pick their job). */
  changes(): AsyncIterator<ExportProgressEvent> {
    const events = this.pubsub.subscribe(ExportTopic.progress) as AsyncIterable<ExportProgressEvent>;
    return events[Symbol.asyncIterator]();
  }

  cancelled(jobId: string): Promise<void> {
    return this.bus.publish(ExportChannel.cancel, jobId);
  }

  /** Calls `handler` with the id of every job cancelled in any process. */
  async onCancel(handler: (jobId: string) => void): Promise<void> {
    await this.bus.subscribe(ExportChannel.cancel, handler);
  }
}
