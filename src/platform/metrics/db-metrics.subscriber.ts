import type { AfterQueryEvent, EntitySubscriberInterface } from 'typeorm';
import type { DbOperation, Metrics } from './metrics';

const OPERATIONS = new Set<DbOperation>(['select', 'insert', 'update', 'delete']);

/**
 * Times every statement TypeORM sends (its afterQuery event), labelled by operation and by the table it names,
 * bounded to the known tables (anything else is "other"); values and query text never become labels.
 */
export class DbMetricsSubscriber implements EntitySubscriberInterface {
  constructor(
    private readonly metrics: Metrics,
    private readonly knownTables: ReadonlySet<string>,
  ) {}

  afterQuery(event: AfterQueryEvent): void {
    const sql = event.query.trimStart();
    const keyword = (/^\w+/.exec(sql)?.[0] ?? '').toLowerCase() as DbOperation;
    const operation: DbOperation = OPERATIONS.has(keyword) ? keyword : 'other';
    const table = /\b(?:from|into|update|join)\s+"?(\w+)"?/i.exec(sql)?.[1]?.toLowerCase();
    const model = table && this.knownTables.has(table) ? table : 'other';
    this.metrics.recordDbQuery(operation, model, (event.executionTime ?? 0) / 1000);
  }
}
