import { createHash } from 'node:crypto';
import { Client } from '@opensearch-project/opensearch';
import type { VectorBackendName, VectorDocument, VectorHit, VectorQuery } from '../vector.model';
import type { StoredVector, VectorStore } from '../vector.store';
import { byScoreThenId } from './fallback.backend';
import type { RebuildProgress, VectorBackend } from './vector-backend';

export type OpenSearchRefresh = 'true' | 'false' | 'wait_for';

export interface OpenSearchOptions {
  url: string;
  index: string;
  dimension: number;
  /** When indexed documents become searchable: at once (`true`), on the next refresh (`false`), or before replying. */
  refresh: OpenSearchRefresh;
  requestTimeoutMs: number;
}

/** The calls this backend makes, typed loosely (the client's own request types lag the k-NN plugin's query DSL). */
interface Response<T> {
  body: T;
}
interface SearchBody {
  hits: { hits: Array<{ _score: number; _source: IndexedSource }> };
}
interface BulkBody {
  errors: boolean;
  items: Array<Record<string, { status: number; error?: { type?: string; reason?: string } }>>;
}
interface IndexedSource {
  company_id: string;
  doc_id: string;
  entity_type: VectorHit['entityType'];
  record_id: string | null;
  metadata: Record<string, unknown>;
  filters: string[];
  embedding?: number[];
}

/**
 * The OpenSearch `_id` of a company's document: a hash, so any docId (255 characters of any script) fits the 512-byte
 * limit, and the company is part of it.
 */
export function openSearchId(companyId: string, docId: string): string {
  return `${companyId}:${createHash('sha256').update(docId).digest('base64url')}`;
}

/** `key=<JSON value>`: one keyword per scalar metadata entry, so filters match by key, type and value. */
export function filterTerms(metadata: Record<string, unknown>): string[] {
  return Object.entries(metadata)
    .filter(([, value]) => ['string', 'number', 'boolean'].includes(typeof value))
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`);
}

/** The index mapping: HNSW (Lucene engine, cosine) so `knn` queries take an efficient `filter`. */
export function indexMapping(dimension: number) {
  return {
    settings: { index: { knn: true, number_of_shards: 1 } },
    mappings: {
      dynamic: 'strict',
      properties: {
        company_id: { type: 'keyword' },
        doc_id: { type: 'keyword' },
        entity_type: { type: 'keyword' },
        record_id: { type: 'keyword' },
        filters: { type: 'keyword' },
        metadata: { type: 'object', enabled: false },
        embedding: {
          type: 'knn_vector',
          dimension,
          method: {
            name: 'hnsw',
            space_type: 'cosinesimil',
            engine: 'lucene',
            parameters: { m: 16, ef_construction: 128 },
          },
        },
      },
    },
  };
}

/**
 * OpenSearch k-NN: one index for the deployment, each company's documents routed to one shard and always filtered by
 * company inside the `knn` query (efficient filtering), never by anything the caller sends.
 */
/** A stored live row as a versioned upsert. */
const upsertOf = (companyId: string) => (row: StoredVector) => ({
  doc: { ...row, companyId, embedding: row.embedding! },
  seq: row.seq,
});

export class OpenSearchBackend implements VectorBackend {
  readonly name: VectorBackendName = 'OPENSEARCH';
  private readonly client: Client;
  private indexReady = false;

  constructor(
    private readonly store: VectorStore,
    private readonly options: OpenSearchOptions,
  ) {
    this.client = new Client({ node: options.url, requestTimeout: options.requestTimeoutMs, maxRetries: 0 });
  }

  async check(): Promise<void> {
    await this.client.info();
    await this.ensureIndex();
  }

  async search(query: VectorQuery): Promise<VectorHit[]> {
    const filter = [
      { term: { company_id: query.companyId } },
      ...(query.entityTypes?.length ? [{ terms: { entity_type: [...query.entityTypes] } }] : []),
      ...query.metadata.map((entry) => ({
        terms: { filters: entry.values.map((value) => `${entry.key}=${JSON.stringify(value)}`) },
      })),
    ];
    const response = (await this.client.search({
      index: this.options.index,
      routing: query.companyId,
      body: {
        size: query.limit,
        _source: { excludes: ['embedding', 'filters'] },
        query: {
          knn: {
            embedding: { vector: Array.from(query.vector), k: query.limit, filter: { bool: { filter } } },
          },
        },
      },
    } as never)) as Response<SearchBody>;
    return byScoreThenId(
      response.body.hits.hits.map((hit) => ({
        docId: hit._source.doc_id,
        // Lucene's cosinesimil score is (1 + cosine) / 2.
        score: 2 * hit._score - 1,
        entityType: hit._source.entity_type,
        recordId: hit._source.record_id,
        metadata: hit._source.metadata ?? {},
      })),
    );
  }

  async applyWrites(
    companyId: string,
    upserts: ReadonlyArray<{ doc: VectorDocument; seq: number }>,
    deletes: ReadonlyArray<{ docId: string; seq: number }>,
  ): Promise<void> {
    if (upserts.length + deletes.length === 0) return;
    // External versions (the write's sequence): a change that arrives late never overwrites a newer one.
    const target = (docId: string, seq: number) => ({
      _index: this.options.index,
      _id: openSearchId(companyId, docId),
      routing: companyId,
      version: seq,
      version_type: 'external_gte',
    });
    const body: object[] = [];
    for (const { doc, seq } of upserts) {
      body.push({ index: target(doc.docId, seq) });
      body.push({
        company_id: companyId,
        doc_id: doc.docId,
        entity_type: doc.entityType,
        record_id: doc.recordId,
        metadata: doc.metadata,
        filters: filterTerms(doc.metadata),
        embedding: Array.from(doc.embedding),
      } satisfies IndexedSource);
    }
    for (const { docId, seq } of deletes) body.push({ delete: target(docId, seq) });
    await this.bulk(body);
  }

  async rebuild(
    companyId: string,
    progress?: RebuildProgress,
  ): Promise<{ documents: number; throughSeq: number }> {
    await this.ensureIndex();
    const total = await this.store.count(companyId);
    const { seq: startSeq } = await this.store.seq(companyId);
    await this.client.deleteByQuery({
      index: this.options.index,
      routing: companyId,
      refresh: true,
      conflicts: 'proceed',
      body: { query: { term: { company_id: companyId } } },
    } as never);
    let documents = 0;
    for await (const batch of this.store.documents(companyId, { batch: 500 })) {
      await this.applyWrites(companyId, batch.map(upsertOf(companyId)), []);
      documents += batch.length;
      progress?.(documents, total);
    }
    // Writes that committed while the copy ran (their own bulk may have reached the index before the copy's older
    // version, or been refused): replay them in sequence order; versions keep whichever is newest.
    const { seq: endSeq } = await this.store.seq(companyId);
    for await (const rows of this.store.changes(companyId, startSeq, endSeq)) {
      await this.applyWrites(
        companyId,
        rows.filter((row) => row.embedding).map(upsertOf(companyId)),
        rows.filter((row) => !row.embedding).map((row) => ({ docId: row.docId, seq: row.seq })),
      );
    }
    return { documents, throughSeq: endSeq };
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private async bulk(body: object[]): Promise<void> {
    const response = (await this.client.bulk({
      body,
      refresh: this.options.refresh,
    })) as Response<BulkBody>;
    if (!response.body.errors) return;
    // 404: deleting what is not there; 409: a newer version is already there. Both leave the index right.
    const failed = response.body.items
      .map((item) => Object.values(item)[0]!)
      .filter((result) => result.status >= 300 && result.status !== 404 && result.status !== 409);
    if (failed.length > 0) {
      const first = failed[0]!.error;
      throw new Error(`OpenSearch bulk: ${failed.length} item(s) failed (${first?.type}: ${first?.reason})`);
    }
  }

  /** Creates the index on first use; companies that already have vectors are marked stale until rebuilt into it. */
  private async ensureIndex(): Promise<void> {
    if (this.indexReady) return;
    const exists = (await this.client.indices.exists({ index: this.options.index })) as Response<boolean>;
    if (!exists.body) {
      // Marked first: from the moment the empty index exists, no process may trust it for a company with vectors.
      await this.store.markAllStale(this.name, 'OpenSearch index created');
      await this.client.indices.create({
        index: this.options.index,
        body: indexMapping(this.options.dimension),
      } as never);
    }
    this.indexReady = true;
  }
}
