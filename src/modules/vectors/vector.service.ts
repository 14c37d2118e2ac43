import type { ReadRouting } from '../../platform/db/read-routing';
import type { DataSource } from 'typeorm';
import { ForbiddenError, type FieldViolation } from '../../platform/errors/app-error';
import type { Logger } from '../../platform/logging/logger';
import type { QueueDriver } from '../../platform/queue/queue.driver';
import { bindNamed, RECORD_TABLE, RecordType, type Principal, type ServiceRegistry } from '../kernel';
import type { FallbackBackend } from './backends/fallback.backend';
import type { RebuildProgress, VectorBackend } from './backends/vector-backend';
import { RecordVectorIndexer } from './record-vector.indexer';
import { VectorIndexMaintenance } from './vector-index.maintenance';
import { VectorBackendHealth } from './vector.health';
import type { EmbedRecordJob } from './vector.jobs';
import type { Embedder } from './vector.math';
import {
  assertNoViolations,
  classifyDocId,
  normalizedVector,
  validateDocId,
  validateMetadata,
  VectorLimits,
  type VectorBackendName,
  type VectorDocument,
  type VectorEntityType,
} from './vector.model';
import type { SimilarInput } from './vector.query';
import { VectorSearch, type SimilarHit } from './vector.search';
import type { VectorMetrics, VectorSettings } from './vector.options';
import type { VectorStore } from './vector.store';
import { VectorWriter } from './vector.writer';

export interface IndexVectorInput {
  docId: string;
  vector: readonly number[];
  metadata?: Record<string, unknown> | null;
}

export interface IndexedVector {
  docId: string;
  entityType: VectorEntityType;
  recordId: string | null;
  seq: number;
}

export interface BackendHealth {
  name: VectorBackendName;
  healthy: boolean;
  reason: string | null;
  checkedAt: Date | null;
  /** False while the caller's company waits for a rebuild on this backend (queries skip it meanwhile). */
  upToDate: boolean;
}

export interface VectorBackendStatus {
  active: VectorBackendName;
  dimension: number;
  embedder: string;
  backends: BackendHealth[];
}

export interface VectorServiceDeps {
  dataSource: DataSource;
  /** Similarity queries are reads (a replica's when routed to one). */
  reads: ReadRouting;
  store: VectorStore;
  /** In priority order; the fallback last. */
  backends: readonly VectorBackend[];
  fallback: FallbackBackend;
  embedder: Embedder;
  records: ServiceRegistry['records'];
  visibility: ServiceRegistry['visibility'];
  queue: QueueDriver;
  logger: Logger;
  metrics: VectorMetrics;
  settings: VectorSettings;
}

/**
 * Vector similarity behind one API: validates input, writes Postgres (the source of truth) and every index backend,
 * answers from the first healthy backend (moving down the list when one fails), and never returns a hit on a record
 * the caller may not read. The use cases live here; each role is its own file: backend health (`vector.health.ts`),
 * the write path (`vector.writer.ts`), the query path (`vector.search.ts`), record embeddings
 * (`record-vector.indexer.ts`) and index rebuilds (`vector-index.maintenance.ts`).
 */
export class VectorService {
  private readonly health: VectorBackendHealth;
  private readonly writer: VectorWriter;
  private readonly search: VectorSearch;
  private readonly indexer: RecordVectorIndexer;
  private readonly maintenance: VectorIndexMaintenance;

  constructor(private readonly deps: VectorServiceDeps) {
    const { backends, fallback, logger, store } = deps;
    this.health = new VectorBackendHealth({
      backends,
      fallback,
      logger,
      checkTimeoutMs: deps.settings.checkTimeoutMs,
    });
    this.writer = new VectorWriter({ store, backends, health: this.health, logger });
    this.search = new VectorSearch({ ...deps, health: this.health });
    this.indexer = new RecordVectorIndexer({ ...deps, writer: this.writer });
    this.maintenance = new VectorIndexMaintenance({ ...deps, health: this.health });
  }

  get settings(): VectorSettings {
    return this.deps.settings;
  }

  /** Asks every backend whether it can serve; logs each change. */
  checkBackends(): Promise<void> {
    return this.health.check();
  }

  activeBackend(): VectorBackendName {
    return this.health.active().name;
  }

  async status(principal: Principal): Promise<VectorBackendStatus> {
    return {
      active: this.activeBackend(),
      dimension: this.deps.settings.dimension,
      embedder: this.deps.embedder.name,
      backends: await Promise.all(
        this.deps.backends.map(async (backend) => {
          const health = this.health.of(backend);
          return {
            name: backend.name,
            ...health,
            // Failure text can name hosts and internals: company admins see it, everyone else only the state.
            reason: principal.isAdmin ? health.reason : health.reason && 'unavailable',
            upToDate: !(await this.deps.store.isStale(backend.name, principal.companyId)),
          };
        }),
      ),
    };
  }

  async indexVectors(principal: Principal, inputs: readonly IndexVectorInput[]): Promise<IndexedVector[]> {
    const violations: FieldViolation[] = [];
    if (inputs.length === 0 || inputs.length > VectorLimits.maxBatch)
      violations.push({ field: 'inputs', rule: `must hold 1 to ${VectorLimits.maxBatch} documents` });
    const seen = new Set<string>();
    const docs = inputs.map((input, index): VectorDocument => {
      const field = inputs.length === 1 ? 'input' : `inputs[${index}]`;
      validateDocId(`${field}.docId`, input.docId, violations);
      if (seen.has(input.docId))
        violations.push({ field: `${field}.docId`, rule: 'must not repeat in one batch' });
      seen.add(input.docId);
      const metadata = input.metadata ?? {};
      validateMetadata(`${field}.metadata`, metadata, violations);
      const embedding = normalizedVector(
        `${field}.vector`,
        input.vector,
        this.deps.settings.dimension,
        violations,
      );
      return { companyId: principal.companyId, ...classifyDocId(input.docId), embedding, metadata };
    });
    assertNoViolations(violations);
    await this.assertEditable(
      principal,
      docs.map((doc, index) => ({
        doc,
        field: inputs.length === 1 ? 'input.docId' : `inputs[${index}].docId`,
      })),
    );
    const seq = await this.writer.write(principal.companyId, docs, []);
    return docs.map((doc) => ({ docId: doc.docId, entityType: doc.entityType, recordId: doc.recordId, seq }));
  }

  /**
   * True when the document existed. A record's vector needs EDIT access to the record, checked before anything is
   * looked up, so the answer says nothing about records the caller cannot see; admins may also remove the vector of
   * a record that no longer exists.
   */
  async deleteVector(principal: Principal, docIdInput: string): Promise<boolean> {
    const violations: FieldViolation[] = [];
    validateDocId('docId', docIdInput, violations);
    assertNoViolations(violations);
    const { docId, entityType, recordId } = classifyDocId(docIdInput);
    const orphanedForAdmin =
      recordId !== null &&
      principal.isAdmin &&
      !(await this.recordExists(principal.companyId, entityType as RecordType, recordId));
    if (recordId && !orphanedForAdmin) {
      await this.assertEditable(principal, [
        {
          doc: {
            companyId: principal.companyId,
            docId,
            entityType,
            recordId,
            embedding: new Float32Array(0),
            metadata: {},
          },
          field: 'docId',
        },
      ]);
    }
    const [existing] = await this.deps.dataSource.query<Array<{ doc_id: string }>>(
      'SELECT doc_id FROM vector_documents WHERE company_id = $1 AND doc_id = $2 AND embedding IS NOT NULL',
      [principal.companyId, docId],
    );
    if (!existing) return false;
    await this.writer.write(principal.companyId, [], [docId]);
    return true;
  }

  similar(principal: Principal, input: SimilarInput): Promise<SimilarHit[]> {
    return this.search.similar(principal, input);
  }

  /** Embeds a record's current fields (or removes its vector when it is gone); run by the `vectors` queue. */
  embedRecord(job: EmbedRecordJob): Promise<'indexed' | 'deleted'> {
    return this.indexer.embedRecord(job);
  }

  /**
   * Embeds every lead, deal and account of a company that exists now (records written before vectors were enabled,
   * or after the embedder changed), 500 per write. Returns how many vectors were written.
   */
  embedAllRecords(companyId: string, progress?: (type: RecordType, done: number) => void): Promise<number> {
    return this.indexer.embedAllRecords(companyId, progress);
  }

  /** Queues embedding of a record after it changed (the job reads the record as it is when it runs). */
  recordChanged(companyId: string, type: RecordType, id: string): Promise<void> {
    return this.indexer.recordChanged(companyId, type, id);
  }

  /**
   * Company admins rebuild their company's index on one backend (all index backends when none is named): the company
   * is marked stale at once (queries skip the backend) and a job rebuilds it from Postgres.
   */
  async requestReindex(
    principal: Principal,
    backend: VectorBackendName | null,
  ): Promise<VectorBackendStatus> {
    if (!principal.isAdmin) throw new ForbiddenError('Only company admins may rebuild vector indexes');
    await this.maintenance.requestRebuild(principal.companyId, backend);
    return this.status(principal);
  }

  /** Replaces one company's index on a backend with what Postgres holds (see `VectorIndexMaintenance.rebuild`). */
  rebuild(companyId: string, backendName: VectorBackendName, progress?: RebuildProgress): Promise<number> {
    return this.maintenance.rebuild(companyId, backendName, progress);
  }

  /** Rebuilds every stale company on each healthy index backend and purges old tombstones (scheduled). */
  repair(): Promise<void> {
    return this.maintenance.repair();
  }

  /** Companies to rebuild on a backend: those marked stale, or every company that has vectors. */
  companiesToRebuild(backend: VectorBackendName, staleOnly: boolean): Promise<string[]> {
    return this.maintenance.companiesToRebuild(backend, staleOnly);
  }

  /** Backends that hold an index of their own (everything but the fallback). */
  indexBackends(): VectorBackend[] {
    return this.maintenance.indexBackends();
  }

  private async recordExists(companyId: string, type: RecordType, id: string): Promise<boolean> {
    const rows = await this.deps.dataSource.query<unknown[]>(
      `SELECT 1 FROM ${RECORD_TABLE[type]} WHERE company_id = $1 AND id = $2`,
      [companyId, id],
    );
    return rows.length > 0;
  }

  /** A record's vector may be set or removed only by someone who may edit the record. */
  private async assertEditable(
    principal: Principal,
    entries: ReadonlyArray<{ doc: VectorDocument; field: string }>,
  ): Promise<void> {
    const violations: FieldViolation[] = [];
    for (const type of Object.values(RecordType) as RecordType[]) {
      const wanted = entries.filter((entry) => entry.doc.entityType === type);
      if (wanted.length === 0) continue;
      const predicate = await this.deps.visibility.editPredicate(principal, type, 'r');
      const params: unknown[] = [wanted.map((entry) => entry.doc.recordId)];
      const rows = await this.deps.dataSource.query<Array<{ id: string }>>(
        `SELECT r.id FROM ${RECORD_TABLE[type]} r WHERE r.id = ANY($1::uuid[]) AND ${bindNamed(
          predicate,
          (value) => `$${params.push(value)}`,
        )}`,
        params,
      );
      const editable = new Set(rows.map((row) => row.id));
      for (const entry of wanted)
        if (!editable.has(entry.doc.recordId!))
          violations.push({ field: entry.field, rule: `must name a ${type.toLowerCase()} you may edit` });
    }
    assertNoViolations(violations);
  }
}
