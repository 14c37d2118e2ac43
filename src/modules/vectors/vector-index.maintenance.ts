import { performance } from 'node:perf_hooks';
import type { Logger } from '../../platform/logging/logger';
import type { QueueDriver } from '../../platform/queue/queue.driver';
import type { FallbackBackend } from './backends/fallback.backend';
import type { RebuildProgress, VectorBackend } from './backends/vector-backend';
import type { VectorBackendHealth } from './vector.health';
import { VectorJob, VectorQueue, type RebuildJob } from './vector.jobs';
import type { VectorBackendName } from './vector.model';
import type { VectorStore } from './vector.store';

export interface VectorIndexMaintenanceDeps {
  store: VectorStore;
  /** In priority order; the fallback last. */
  backends: readonly VectorBackend[];
  fallback: FallbackBackend;
  health: VectorBackendHealth;
  queue: QueueDriver;
  logger: Logger;
}

/** Keeps the index backends in line with Postgres: rebuilds on request, and repairs of stale companies. */
export class VectorIndexMaintenance {
  constructor(private readonly deps: VectorIndexMaintenanceDeps) {}

  /**
   * Marks the company stale on the named index backend (every one when none is named) at once, so queries skip it,
   * and queues a job that rebuilds it from Postgres.
   */
  async requestRebuild(companyId: string, backend: VectorBackendName | null): Promise<void> {
    const targets = this.indexBackends().filter((candidate) => !backend || candidate.name === backend);
    const { seq } = await this.deps.store.seq(companyId);
    for (const target of targets) {
      await this.deps.store.markStale(target.name, companyId, 'rebuild requested', seq);
      await this.deps.queue.add<RebuildJob>(VectorQueue.vectors, VectorJob.rebuild, {
        companyId,
        backend: target.name,
      });
    }
  }

  /**
   * Replaces one company's index on a backend with what Postgres holds, then lets queries use it again. The company
   * is marked stale first, so no query reads the half-built index.
   */
  async rebuild(
    companyId: string,
    backendName: VectorBackendName,
    progress?: RebuildProgress,
  ): Promise<number> {
    const backend = this.deps.backends.find((candidate) => candidate.name === backendName);
    if (!backend) throw new Error(`vector backend ${backendName} is not configured`);
    const started = performance.now();
    if (backend !== this.deps.fallback) {
      const { seq } = await this.deps.store.seq(companyId);
      await this.deps.store.markStale(backend.name, companyId, 'rebuilding', seq);
    }
    const { documents, throughSeq } = await backend.rebuild(companyId, progress);
    await this.deps.store.clearStale(backend.name, companyId, throughSeq);
    this.deps.logger.info(
      { companyId, backend: backend.name, documents, ms: Math.round(performance.now() - started) },
      'vector index rebuilt',
    );
    return documents;
  }

  /** Rebuilds every stale company on each healthy index backend and purges old tombstones (scheduled). */
  async repair(): Promise<void> {
    await this.deps.store.abandonPending();
    for (const backend of this.indexBackends()) {
      if (!this.deps.health.isHealthy(backend)) continue;
      for (const companyId of await this.deps.store.staleCompanies(backend.name)) {
        try {
          await this.rebuild(companyId, backend.name);
        } catch (error) {
          // One company that cannot be rebuilt must not hold up the others; it stays stale and is retried next run.
          this.deps.logger.warn(
            { err: error, companyId, backend: backend.name },
            'vector index rebuild failed',
          );
        }
      }
    }
    await this.deps.store.purgeTombstones(60 * 60_000);
  }

  /** Companies to rebuild on a backend: those marked stale, or every company that has vectors. */
  async companiesToRebuild(backend: VectorBackendName, staleOnly: boolean): Promise<string[]> {
    return staleOnly ? this.deps.store.staleCompanies(backend) : this.deps.store.companies();
  }

  /** Backends that hold an index of their own (everything but the fallback). */
  indexBackends(): VectorBackend[] {
    return this.deps.backends.filter((backend) => backend !== this.deps.fallback);
  }
}
