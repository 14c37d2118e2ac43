import type { VectorBackendName, VectorDocument, VectorHit, VectorQuery } from '../vector.model';
import type { MirrorWrite } from '../vector.store';

/** Reports rebuild progress: documents written so far of `total`. */
export type RebuildProgress = (done: number, total: number) => void;

/**
 * One place vector queries can run. Postgres (`VectorStore`) stays the source of truth; a backend holds an index of
 * it. The service picks the first healthy backend in priority order and moves to the next when one fails.
 */
export interface VectorBackend {
  readonly name: VectorBackendName;
  /** Resolves when the backend can serve, or throws saying why not (extension missing, cluster down, ...). */
  check(): Promise<void>;
  /** The best `query.limit` candidates of the company, best first; fewer only when fewer match. */
  search(query: VectorQuery): Promise<VectorHit[]>;
  /** Same-database index: written inside the write's transaction, so it can never miss a committed write. */
  readonly mirror?: MirrorWrite;
  /**
   * Separate system: applied after the Postgres commit, each change carrying its sequence so that writes arriving out
   * of order cannot overwrite newer ones; a failure marks the company stale on this backend.
   */
  applyWrites?(
    companyId: string,
    upserts: ReadonlyArray<{ doc: VectorDocument; seq: number }>,
    deletes: ReadonlyArray<{ docId: string; seq: number }>,
  ): Promise<void>;
  /**
   * Replaces the company's index with what Postgres holds; says how many documents it wrote and the sequence the
   * index is now complete through (every write at or below it is in).
   */
  rebuild(companyId: string, progress?: RebuildProgress): Promise<{ documents: number; throughSeq: number }>;
  close?(): Promise<void>;
}
