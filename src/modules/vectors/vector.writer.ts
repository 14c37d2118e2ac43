import type { Logger } from '../../platform/logging/logger';
import type { VectorBackend } from './backends/vector-backend';
import type { VectorBackendHealth } from './vector.health';
import type { VectorDocument } from './vector.model';
import type { VectorStore } from './vector.store';

export interface VectorWriterDeps {
  store: VectorStore;
  /** In priority order; the fallback last. */
  backends: readonly VectorBackend[];
  health: VectorBackendHealth;
  logger: Logger;
}

/**
 * The write path: Postgres first (the source of truth, with same-database mirrors in its transaction), then every
 * separate index backend; a backend that misses a write is marked stale for the company until it is rebuilt.
 */
export class VectorWriter {
  constructor(private readonly deps: VectorWriterDeps) {}

  /** Upserts then deletes one company's documents; returns the sequence the last change got. */
  async write(companyId: string, upserts: VectorDocument[], deletes: string[]): Promise<number> {
    const mirrors = this.deps.backends.filter((backend) => backend.mirror);
    const external = this.deps.backends
      .filter((backend) => backend.applyWrites !== undefined)
      .map((backend) => backend.name);
    const seq = await this.deps.store.write(
      companyId,
      upserts,
      deletes,
      async (manager, ...rest) => {
        for (const backend of mirrors) await backend.mirror!(manager, ...rest);
      },
      external,
    );
    // The store numbered the changes in order: upserts first, then deletes, ending at `seq`.
    const first = seq - upserts.length - deletes.length + 1;
    const versionedUpserts = upserts.map((doc, i) => ({ doc, seq: first + i }));
    const versionedDeletes = deletes.map((docId, i) => ({ docId, seq: first + upserts.length + i }));
    for (const backend of this.deps.backends) {
      if (!backend.applyWrites) continue;
      try {
        if (!this.deps.health.isHealthy(backend)) throw new Error('backend unavailable');
        await backend.applyWrites(companyId, versionedUpserts, versionedDeletes);
      } catch (error) {
        this.deps.logger.warn({ err: error, backend: backend.name, companyId }, 'vector index write missed');
        await this.deps.store.markStale(
          backend.name,
          companyId,
          `write missed: ${(error as Error).message}`,
          seq,
        );
      }
      await this.deps.store.settlePending(backend.name, companyId, seq);
    }
    return seq;
  }
}
