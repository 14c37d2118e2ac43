import { performance } from 'node:perf_hooks';
import type { Counter, Histogram } from 'prom-client';
import type { DataSource } from 'typeorm';
import { AppError, ErrorCode, ForbiddenError, type FieldViolation } from '../../platform/errors/app-error';
import type { Logger } from '../../platform/logging/logger';
import type { QueueDriver } from '../../platform/queue/queue.driver';
import { bindNamed, RECORD_TABLE, RecordType, type Principal, type ServiceRegistry } from '../kernel';
import type { FallbackBackend } from './backends/fallback.backend';
import type { RebuildProgress, VectorBackend } from './backends/vector-backend';
import type { Embedder } from './vector.math';
import {
  assertNoViolations,
  classifyDocId,
  normalizedVector,
  recordDocId,
  validateDocId,
  validateMetadata,
  validateMetadataFilters,
  VectorLimits,
  type VectorBackendName,
  type VectorDocument,
  type VectorEntityType,
  type VectorHit,
  type VectorQuery,
} from './vector.model';
import type { VectorStore } from './vector.store';

export const VectorQueue = { vectors: 'vectors' } as const;
export const VectorJob = { embedRecord: 'embed-record', rebuild: 'rebuild' } as const;

export interface EmbedRecordJob {
  companyId: string;
  type: RecordType;
  id: string;
}
export interface RebuildJob {
  companyId: string;
  backend: VectorBackendName;
}

export interface IndexVectorInput {
  docId: string;
  vector: readonly number[];
  metadata?: Record<string, unknown> | null;
}

export interface SimilarInput {
  vector?: readonly number[] | null;
  text?: string | null;
  k?: number | null;
  minScore?: number | null;
  filters?: {
    entityTypes?: readonly VectorEntityType[] | null;
    metadata?: ReadonlyArray<{ key: string; values: readonly unknown[] }> | null;
  } | null;
}

/** A hit the caller may see; `record` is the readable CRM record it stands for (null for free documents). */
export interface SimilarHit extends VectorHit {
  backend: VectorBackendName;
  record: (object & { id: string }) | null;
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

export interface VectorSettings {
  dimension: number;
  /** Metadata keys `similar` may filter on. */
  filterKeys: readonly string[];
  /** Most candidates asked of an index before switching to an exact scan with the visibility in SQL. */
  maxCandidates: number;
  /** How long a backend's health check may take before it counts as down. */
  checkTimeoutMs: number;
  /** How often each process re-checks the backends. */
  healthCheckMs: number;
  /** How often the worker rebuilds stale indexes and purges tombstones. */
  repairEveryMs: number;
}

export interface VectorMetrics {
  duration: Histogram<'backend'>;
  fallbacks: Counter<'from' | 'to'>;
}

export interface VectorServiceDeps {
  dataSource: DataSource;
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

const RECORD_SERVICE = { LEAD: 'leads', DEAL: 'deals', ACCOUNT: 'accounts' } as const;

/** A backend's own failure (as opposed to Postgres failing while checking visibility): the query moves on. */
class BackendFailure extends Error {
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.name = 'BackendFailure';
  }
}

interface Health {
  healthy: boolean;
  reason: string | null;
  checkedAt: Date | null;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Vector similarity behind one API: validates input, writes Postgres (the source of truth) and every index backend,
 * answers from the first healthy backend (moving down the list when one fails), and never returns a hit on a record
 * the caller may not read.
 */
export class VectorService {
  private readonly health = new Map<VectorBackendName, Health>();

  constructor(private readonly deps: VectorServiceDeps) {
    for (const backend of deps.backends)
      this.health.set(backend.name, { healthy: false, reason: 'not checked yet', checkedAt: null });
  }

  get settings(): VectorSettings {
    return this.deps.settings;
  }

  /** Asks every backend whether it can serve; logs each change. */
  async checkBackends(): Promise<void> {
    await Promise.all(
      this.deps.backends.map(async (backend) => {
        try {
          await withTimeout(backend.check(), this.deps.settings.checkTimeoutMs, backend.name);
          this.setHealth(backend, null);
        } catch (error) {
          this.setHealth(backend, (error as Error).message);
        }
      }),
    );
  }

  activeBackend(): VectorBackendName {
    return (
      this.deps.backends.find((backend) => this.health.get(backend.name)?.healthy) ?? this.deps.fallback
    ).name;
  }

  async status(principal: Principal): Promise<VectorBackendStatus> {
    return {
      active: this.activeBackend(),
      dimension: this.deps.settings.dimension,
      embedder: this.deps.embedder.name,
      backends: await Promise.all(
        this.deps.backends.map(async (backend) => {
          const health = this.health.get(backend.name)!;
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
    const seq = await this.write(principal.companyId, docs, []);
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
    await this.write(principal.companyId, [], [docId]);
    return true;
  }

  async similar(principal: Principal, input: SimilarInput): Promise<SimilarHit[]> {
    const { query, k, minScore } = this.parseSimilar(principal, input);
    const started = performance.now();
    const failures: string[] = [];
    const candidates = this.deps.backends.filter((backend) => this.health.get(backend.name)?.healthy);
    if (!candidates.includes(this.deps.fallback)) candidates.push(this.deps.fallback);
    for (const [index, backend] of candidates.entries()) {
      if (backend !== this.deps.fallback && (await this.deps.store.isStale(backend.name, query.companyId)))
        continue;
      try {
        const { hits, answeredBy } = await this.visibleTopK(backend, principal, query, k, minScore);
        this.deps.metrics.duration.observe(
          { backend: answeredBy.toLowerCase() },
          (performance.now() - started) / 1000,
        );
        return hits.map((hit) => ({ ...hit, backend: answeredBy }));
      } catch (error) {
        // Only the backend's own failure moves the query on; Postgres errors (visibility, records) surface as they are.
        if (!(error instanceof BackendFailure)) throw error;
        const reason = error.message;
        failures.push(`${backend.name}: ${reason}`);
        this.setHealth(backend, reason);
        const next = candidates[index + 1]?.name ?? 'none';
        this.deps.metrics.fallbacks.inc({ from: backend.name.toLowerCase(), to: next.toLowerCase() });
        this.deps.logger.warn(
          { err: error, backend: backend.name, next },
          'vector query failed; trying the next backend',
        );
      }
    }
    this.deps.logger.error({ failures }, 'no vector backend could answer');
    throw new AppError(
      ErrorCode.SERVICE_UNAVAILABLE,
      'No vector backend can answer right now; vectorBackend shows each one’s health',
    );
  }

  /** Embeds a record's current fields (or removes its vector when it is gone); run by the `vectors` queue. */
  async embedRecord(job: EmbedRecordJob): Promise<'indexed' | 'deleted'> {
    const docId = recordDocId(job.type, job.id);
    const [row] = await this.deps.dataSource.query<Array<Record<string, unknown>>>(
      `SELECT * FROM ${RECORD_TABLE[job.type]} WHERE company_id = $1 AND id = $2`,
      [job.companyId, job.id],
    );
    const embedding =
      row && this.deps.embedder.embed(recordText(job.type, row), this.deps.settings.dimension);
    if (!row || !embedding) {
      await this.write(job.companyId, [], [docId]);
      return 'deleted';
    }
    await this.write(
      job.companyId,
      [
        {
          companyId: job.companyId,
          docId,
          entityType: job.type,
          recordId: job.id,
          embedding,
          metadata: recordMetadata(job.type, row),
        },
      ],
      [],
    );
    return 'indexed';
  }

  /**
   * Embeds every lead, deal and account of a company that exists now (records written before vectors were enabled,
   * or after the embedder changed), 500 per write. Returns how many vectors were written.
   */
  async embedAllRecords(
    companyId: string,
    progress?: (type: RecordType, done: number) => void,
  ): Promise<number> {
    let written = 0;
    for (const type of Object.values(RecordType) as RecordType[]) {
      let after = '00000000-0000-0000-0000-000000000000';
      let done = 0;
      for (;;) {
        const rows = await this.deps.dataSource.query<Array<Record<string, unknown> & { id: string }>>(
          `SELECT * FROM ${RECORD_TABLE[type]} WHERE company_id = $1 AND id > $2 ORDER BY id LIMIT 500`,
          [companyId, after],
        );
        if (rows.length === 0) break;
        const docs = rows.flatMap((row): VectorDocument[] => {
          const embedding = this.deps.embedder.embed(recordText(type, row), this.deps.settings.dimension);
          return embedding
            ? [
                {
                  companyId,
                  docId: recordDocId(type, row.id),
                  entityType: type,
                  recordId: row.id,
                  embedding,
                  metadata: recordMetadata(type, row),
                },
              ]
            : [];
        });
        await this.write(companyId, docs, []);
        written += docs.length;
        done += rows.length;
        progress?.(type, done);
        after = rows[rows.length - 1]!.id;
      }
    }
    return written;
  }

  /** Queues embedding of a record after it changed (the job reads the record as it is when it runs). */
  async recordChanged(companyId: string, type: RecordType, id: string): Promise<void> {
    await this.deps.queue.add<EmbedRecordJob>(
      VectorQueue.vectors,
      VectorJob.embedRecord,
      { companyId, type, id },
      {
        attempts: 3,
        backoffMs: 1000,
      },
    );
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
    const targets = this.indexBackends().filter((candidate) => !backend || candidate.name === backend);
    const { seq } = await this.deps.store.seq(principal.companyId);
    for (const target of targets) {
      await this.deps.store.markStale(target.name, principal.companyId, 'rebuild requested', seq);
      await this.deps.queue.add<RebuildJob>(VectorQueue.vectors, VectorJob.rebuild, {
        companyId: principal.companyId,
        backend: target.name,
      });
    }
    return this.status(principal);
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
      if (!this.health.get(backend.name)?.healthy) continue;
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

  private async write(companyId: string, upserts: VectorDocument[], deletes: string[]): Promise<number> {
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
        if (!this.health.get(backend.name)?.healthy) throw new Error('backend unavailable');
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

  private parseSimilar(principal: Principal, input: SimilarInput) {
    const violations: FieldViolation[] = [];
    const k = input.k ?? VectorLimits.defaultK;
    if (!Number.isInteger(k) || k < 1 || k > VectorLimits.maxK)
      violations.push({ field: 'input.k', rule: `must be an integer from 1 to ${VectorLimits.maxK}` });
    const minScore = input.minScore ?? undefined;
    if (minScore !== undefined && !(Number.isFinite(minScore) && minScore >= -1 && minScore <= 1))
      violations.push({ field: 'input.minScore', rule: 'must be a number from -1 to 1 (cosine similarity)' });
    let vector: Float32Array = new Float32Array(0);
    const hasVector = input.vector !== null && input.vector !== undefined;
    const hasText = input.text !== null && input.text !== undefined;
    if (hasVector === hasText) {
      violations.push({ field: 'input', rule: 'must give exactly one of vector and text' });
    } else if (hasVector) {
      vector = normalizedVector('input.vector', input.vector!, this.deps.settings.dimension, violations);
    } else if (input.text!.length > VectorLimits.maxTextLength) {
      violations.push({
        field: 'input.text',
        rule: `must be at most ${VectorLimits.maxTextLength} characters`,
      });
    } else {
      const embedded = this.deps.embedder.embed(input.text!, this.deps.settings.dimension);
      if (embedded) vector = embedded;
      else violations.push({ field: 'input.text', rule: 'must contain at least one letter or digit' });
    }
    const metadata = validateMetadataFilters(
      input.filters?.metadata ?? [],
      this.deps.settings.filterKeys,
      violations,
    );
    assertNoViolations(violations);
    const entityTypes = input.filters?.entityTypes?.length
      ? [...new Set(input.filters.entityTypes)]
      : undefined;
    const query: VectorQuery = { companyId: principal.companyId, vector, limit: k, entityTypes, metadata };
    return { query, k, minScore };
  }

  /**
   * The k best hits the principal may read. Asks the backend for more candidates each round while visibility filters
   * too many out; past `maxCandidates` it ranks exactly in Postgres with the visibility inside the SQL, so k readable
   * hits come back whenever k exist.
   */
  private async visibleTopK(
    backend: VectorBackend,
    principal: Principal,
    query: VectorQuery,
    k: number,
    minScore: number | undefined,
  ): Promise<{ hits: Array<Omit<SimilarHit, 'backend'>>; answeredBy: VectorBackendName }> {
    const types = this.recordTypesOf(query);
    const seesAll = (
      await Promise.all(
        types.map(async (type) => (await this.deps.visibility.compiled(principal, type)).readAll),
      )
    ).every(Boolean);
    const cap = this.deps.settings.maxCandidates;
    let limit = seesAll ? k : Math.min(k * 4, cap);
    for (;;) {
      const candidates = await backend.search({ ...query, limit }).catch((error: unknown) => {
        throw new BackendFailure(error);
      });
      let exhausted = candidates.length < limit;
      const scored = candidates.filter((hit) => minScore === undefined || hit.score >= minScore);
      if (scored.length < candidates.length) exhausted = true;
      const readable = await this.readable(principal, scored);
      if (readable.length >= k || exhausted) return { hits: readable.slice(0, k), answeredBy: backend.name };
      if (limit >= cap) break;
      limit = Math.min(limit * 4, cap);
    }
    const where = await this.visibilitySql(principal, types);
    const exact = await this.deps.fallback
      .searchStreamed({ ...query, limit: k }, where)
      .catch((error: unknown) => {
        throw new BackendFailure(error);
      });
    const readable = await this.readable(
      principal,
      exact.filter((hit) => minScore === undefined || hit.score >= minScore),
    );
    return { hits: readable.slice(0, k), answeredBy: this.deps.fallback.name };
  }

  /** The hits the principal may read, in order, each with its record loaded (one query per record type). */
  private async readable(
    principal: Principal,
    hits: readonly VectorHit[],
  ): Promise<Array<Omit<SimilarHit, 'backend'>>> {
    const loaded = new Map<string, object & { id: string }>();
    await Promise.all(
      Object.values(RecordType).map(async (type) => {
        const ids = hits.filter((hit) => hit.entityType === type && hit.recordId).map((hit) => hit.recordId!);
        if (ids.length === 0) return;
        const rows = await this.deps.records[RECORD_SERVICE[type]].byIds(principal, ids);
        for (const row of rows) {
          // The GraphQL union tells Lead, Deal and Account apart by this tag (rows are fresh from this query).
          Object.defineProperty(row, '__recordType', { value: type });
          loaded.set(`${type}:${row.id}`, row);
        }
      }),
    );
    return hits.flatMap((hit): Array<Omit<SimilarHit, 'backend'>> => {
      if (!hit.recordId) return [{ ...hit, record: null }];
      const record = loaded.get(`${hit.entityType}:${hit.recordId}`);
      return record ? [{ ...hit, record }] : [];
    });
  }

  /** `v` rows the principal may read: free documents, and record documents whose record they can read. */
  private async visibilitySql(
    principal: Principal,
    types: readonly RecordType[],
  ): Promise<(bind: (value: unknown) => string) => string> {
    const predicates = await Promise.all(
      types.map(async (type, index) => ({
        type,
        alias: `vr${index}`,
        predicate: await this.deps.visibility.readPredicate(principal, type, `vr${index}`),
      })),
    );
    return (bind) =>
      `(v.record_id IS NULL${predicates
        .map(
          ({ type, alias, predicate }) =>
            ` OR (v.entity_type = ${bind(type)}::text AND EXISTS (SELECT 1 FROM ${RECORD_TABLE[type]} ${alias}` +
            ` WHERE ${alias}.id = v.record_id AND ${bindNamed(predicate, bind)}))`,
        )
        .join('')})`;
  }

  private recordTypesOf(query: VectorQuery): RecordType[] {
    const all = Object.values(RecordType) as RecordType[];
    return query.entityTypes ? all.filter((type) => query.entityTypes!.includes(type)) : all;
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

  private setHealth(backend: VectorBackend, problem: string | null): void {
    const before = this.health.get(backend.name);
    const healthy = problem === null;
    if (before?.healthy !== healthy || (before.reason !== problem && before.checkedAt === null))
      this.deps.logger[healthy ? 'info' : 'warn'](
        { backend: backend.name, reason: problem },
        healthy ? 'vector backend up' : 'vector backend down',
      );
    this.health.set(backend.name, { healthy, reason: problem, checkedAt: new Date() });
  }
}

const RECORD_TEXT: Record<RecordType, readonly string[]> = {
  LEAD: ['first_name', 'last_name', 'email', 'company_name', 'industry', 'source', 'status', 'description'],
  DEAL: ['name', 'stage'],
  ACCOUNT: ['name', 'industry', 'country'],
};
const RECORD_METADATA: Record<RecordType, Readonly<Record<string, string>>> = {
  LEAD: { status: 'status', source: 'source', industry: 'industry' },
  DEAL: { stage: 'stage' },
  ACCOUNT: { industry: 'industry', country: 'country' },
};

function recordText(type: RecordType, row: Record<string, unknown>): string {
  return RECORD_TEXT[type]
    .map((column) => row[column])
    .filter((value): value is string | number => typeof value === 'string' || typeof value === 'number')
    .join(' ');
}

function recordMetadata(type: RecordType, row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(RECORD_METADATA[type]).flatMap(([key, column]) =>
      row[column] === null || row[column] === undefined ? [] : [[key, row[column]]],
    ),
  );
}
