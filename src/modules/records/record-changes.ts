import type { Logger } from '../../platform/logging/logger';
import type { RecordType } from '../kernel';

/** A committed write to one record. */
export interface RecordChange {
  companyId: string;
  type: RecordType;
  id: string;
  action: 'CREATE' | 'UPDATE' | 'DELETE';
}

export type RecordChangeListener = (change: RecordChange) => void | Promise<void>;

/**
 * In-process notice of every committed record write, for slices that derive data from records (vector embeddings,
 * search indexes, rollups). Listeners run after the commit and cannot fail the write; a listener that must reach other
 * processes publishes or enqueues from here.
 */
export class RecordChangeFeed {
  private readonly listeners = new Set<RecordChangeListener>();

  constructor(private readonly logger: Logger) {}

  /** Returns a function that removes the listener. */
  subscribe(listener: RecordChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(change: RecordChange): void {
    for (const listener of this.listeners) {
      Promise.resolve()
        .then(() => listener(change))
        .catch((error: unknown) =>
          this.logger.warn({ err: error, ...change }, 'a record change listener failed'),
        );
    }
  }
}
