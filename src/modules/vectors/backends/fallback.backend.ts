import type { DataSource } from 'typeorm';
import { dotAt, TopK } from '../vector.math';
import {
  metadataMatches,
  type VectorBackendName,
  type VectorEntityType,
  type VectorHit,
  type VectorQuery,
} from '../vector.model';
import type { StoredVector, VectorStore } from '../vector.store';
import type { VectorBackend } from './vector-backend';

/**
 * One company's live vectors in one Float32Array (row `slot` at `slot * dimension`), following Postgres by sequence:
 * a query first applies whatever was written since its `seq`, so it never answers from an older state than the
 * sequence it read.
 */
class CompanyMatrix {
  seq = 0;
  vectors: Float32Array;
  readonly docIds: Array<string | undefined> = [];
  readonly entityTypes: VectorEntityType[] = [];
  readonly recordIds: Array<string | null> = [];
  readonly metadata: Array<Record<string, unknown>> = [];
  private readonly slots = new Map<string, number>();
  private readonly free: number[] = [];

  constructor(
    readonly dimension: number,
    capacity: number,
  ) {
    this.vectors = new Float32Array(Math.max(capacity, 16) * dimension);
  }

  get live(): number {
    return this.slots.size;
  }

  get bytes(): number {
    return this.vectors.byteLength;
  }

  apply(rows: readonly StoredVector[]): void {
    for (const row of rows) {
      const slot = this.slots.get(row.docId);
      if (!row.embedding) {
        if (slot !== undefined) {
          this.slots.delete(row.docId);
          this.docIds[slot] = undefined;
          this.metadata[slot] = {};
          this.free.push(slot);
        }
      } else {
        const target = slot ?? this.free.pop() ?? this.docIds.length;
        if ((target + 1) * this.dimension > this.vectors.length) {
          const grown = new Float32Array(this.vectors.length * 2);
          grown.set(this.vectors);
          this.vectors = grown;
        }
        this.vectors.set(row.embedding, target * this.dimension);
        this.docIds[target] = row.docId;
        this.entityTypes[target] = row.entityType;
        this.recordIds[target] = row.recordId;
        this.metadata[target] = row.metadata;
        this.slots.set(row.docId, target);
      }
      this.seq = Math.max(this.seq, row.seq);
    }
  }
}

export interface FallbackOptions {
  dimension: number;
  /** In-process copies of companies' vectors may take this much; a company that does not fit is scanned from Postgres. */
  maxCacheBytes: number;
}

/**
 * Exact top-k cosine, needing nothing but Postgres: always correct, used when no index backend is up. A company's
 * vectors are copied into memory (within a byte budget, least recently used evicted) and kept current by sequence;
 * a company over the budget is streamed from Postgres in batches through the same bounded heap.
 */
export class FallbackBackend implements VectorBackend {
  readonly name: VectorBackendName = 'FALLBACK';
  private readonly matrices = new Map<string, CompanyMatrix>();
  private readonly loading = new Map<string, Promise<CompanyMatrix | undefined>>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly store: VectorStore,
    private readonly options: FallbackOptions,
  ) {}

  async check(): Promise<void> {
    await this.dataSource.query('SELECT 1 FROM vector_documents LIMIT 1');
  }

  async search(query: VectorQuery): Promise<VectorHit[]> {
    const matrix = await this.matrixFor(query.companyId);
    if (!matrix) return this.searchStreamed(query);
    const top = new TopK<number>(query.limit);
    const entityTypes = query.entityTypes?.length ? new Set(query.entityTypes) : undefined;
    const { dimension } = this.options;
    for (let slot = 0; slot < matrix.docIds.length; slot++) {
      if (matrix.docIds[slot] === undefined) continue;
      if (entityTypes && !entityTypes.has(matrix.entityTypes[slot]!)) continue;
      const score = dotAt(query.vector, matrix.vectors, slot * dimension);
      if (score <= top.threshold) continue;
      if (query.metadata.length > 0 && !metadataMatches(matrix.metadata[slot]!, query.metadata)) continue;
      top.push(score, slot);
    }
    return byScoreThenId(
      top.sorted().map(({ score, item: slot }) => ({
        docId: matrix.docIds[slot]!,
        score,
        entityType: matrix.entityTypes[slot]!,
        recordId: matrix.recordIds[slot]!,
        metadata: matrix.metadata[slot]!,
      })),
    );
  }

  /**
   * Exact top-k straight from Postgres, with an extra SQL condition (the caller's record visibility): the last resort
   * that returns k results whenever k readable documents match, however few of the company's documents those are.
   */
  async searchStreamed(
    query: VectorQuery,
    where?: (bind: (value: unknown) => string) => string,
  ): Promise<VectorHit[]> {
    const top = new TopK<StoredVector>(query.limit);
    for await (const batch of this.store.documents(query.companyId, {
      entityTypes: query.entityTypes,
      metadata: query.metadata,
      where,
    })) {
      for (const row of batch) top.push(dotAt(query.vector, row.embedding!, 0), row);
    }
    return byScoreThenId(
      top.sorted().map(({ score, item }) => ({
        docId: item.docId,
        score,
        entityType: item.entityType,
        recordId: item.recordId,
        metadata: item.metadata,
      })),
    );
  }

  /** Nothing to build: the next query reloads the company from Postgres. */
  async rebuild(companyId: string): Promise<{ documents: number; throughSeq: number }> {
    this.matrices.delete(companyId);
    await this.matrixFor(companyId);
    const matrix = this.matrices.get(companyId);
    return {
      documents: matrix?.live ?? (await this.store.count(companyId)),
      throughSeq: matrix?.seq ?? (await this.store.seq(companyId)).seq,
    };
  }

  /** Bytes held by in-process copies. */
  get cachedBytes(): number {
    let total = 0;
    for (const matrix of this.matrices.values()) total += matrix.bytes;
    return total;
  }

  /**
   * The company's copy, brought up to the sequence committed when this call began. Refreshes of one company run one
   * after another, so a query never rides on a refresh that read the sequence before the caller's own write.
   */
  private matrixFor(companyId: string): Promise<CompanyMatrix | undefined> {
    const previous = this.loading.get(companyId) ?? Promise.resolve(undefined);
    const next = previous.catch(() => undefined).then(() => this.refresh(companyId));
    this.loading.set(companyId, next);
    void next
      .catch(() => undefined)
      .finally(() => {
        if (this.loading.get(companyId) === next) this.loading.delete(companyId);
      });
    return next;
  }

  private async refresh(companyId: string): Promise<CompanyMatrix | undefined> {
    const { seq, purgedSeq } = await this.store.seq(companyId);
    let matrix = this.matrices.get(companyId);
    if (matrix && matrix.seq < purgedSeq) matrix = undefined;
    if (!matrix) {
      const live = await this.store.count(companyId);
      const bytes = Math.max(live, 16) * this.options.dimension * 4;
      if (bytes > this.options.maxCacheBytes) return undefined;
      this.evictFor(bytes);
      matrix = new CompanyMatrix(this.options.dimension, live);
    }
    if (matrix.seq < seq) {
      const from = matrix.seq;
      for await (const rows of this.store.changes(companyId, from, seq)) matrix.apply(rows);
      matrix.seq = seq;
      // Tombstones purged while we read may have been skipped: only a reload is sure to drop their vectors.
      if ((await this.store.seq(companyId)).purgedSeq > from) {
        this.matrices.delete(companyId);
        return this.refresh(companyId);
      }
    }
    this.matrices.delete(companyId);
    if (matrix.bytes > this.options.maxCacheBytes) return undefined;
    // Re-inserted last: the map's order is least recently used first.
    this.matrices.set(companyId, matrix);
    return matrix;
  }

  private evictFor(bytes: number): void {
    for (const [companyId] of this.matrices) {
      if (this.cachedBytes + bytes <= this.options.maxCacheBytes) return;
      this.matrices.delete(companyId);
    }
  }
}

/** Best first; equal scores by doc id, so every backend and every run order ties the same way. */
export function byScoreThenId(hits: VectorHit[]): VectorHit[] {
  return hits.sort((a, b) => b.score - a.score || (a.docId < b.docId ? -1 : a.docId > b.docId ? 1 : 0));
}
