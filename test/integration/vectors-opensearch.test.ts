import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { indexMapping, openSearchId } from '../../src/modules/vectors/backends/opensearch.backend';
import { createTenant, insertLead, type TestTenant } from '../helpers/fixtures';
import { startTestApp, type TestApp } from '../helpers/test-app';
import { clusteredVectors, cosine, exactTopK } from '../helpers/vectors';

const DIM = 8;
const INDEX = 'crm-vectors-test';

interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  body: string;
}

interface StoredSource {
  company_id: string;
  doc_id: string;
  entity_type: string;
  record_id: string | null;
  filters: string[];
  metadata: Record<string, unknown>;
  embedding: number[];
}

type Clause = { term?: Record<string, string>; terms?: Record<string, string[]> };

/**
 * Stands in for an OpenSearch 2.x node (none can run on this machine): answers the calls the backend makes with the
 * response shapes OpenSearch documents, records every request for the contract assertions, and ranks `knn` queries
 * exactly (cosine, Lucene's (1 + cos) / 2 score) after applying the query's filter.
 */
class OpenSearchStandIn {
  readonly requests: Recorded[] = [];
  readonly docs = new Map<string, StoredSource>();
  /** External versions, kept after a delete as OpenSearch keeps tombstones (index.gc_deletes). */
  readonly versions = new Map<string, number>();
  indexExists = false;
  down = false;
  private server!: Server;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      void this.handle(req).then(({ status, body }) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body === undefined ? undefined : JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage): Promise<{ status: number; body?: unknown }> {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push({ method: req.method ?? '', path: url.pathname, query: url.searchParams, body });
    if (this.down) return { status: 503, body: { error: { type: 'unavailable' }, status: 503 } };
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /')
      return {
        status: 200,
        body: {
          name: 'node-1',
          cluster_name: 'crm',
          version: { distribution: 'opensearch', number: '2.17.0' },
        },
      };
    if (route === `HEAD /${INDEX}`) return { status: this.indexExists ? 200 : 404 };
    if (route === `PUT /${INDEX}`) {
      this.indexExists = true;
      return { status: 200, body: { acknowledged: true, shards_acknowledged: true, index: INDEX } };
    }
    if (route === 'POST /_bulk') {
      const lines = body
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      const items: unknown[] = [];
      for (let i = 0; i < lines.length; i++) {
        const action = lines[i]!;
        const [kind, meta] = Object.entries(action)[0] as [
          'index' | 'delete',
          { _id: string; version: number },
        ];
        const source = kind === 'index' ? (lines[++i] as unknown as StoredSource) : undefined;
        if (meta.version < (this.versions.get(meta._id) ?? 0)) {
          items.push({
            [kind]: {
              _index: INDEX,
              _id: meta._id,
              status: 409,
              error: { type: 'version_conflict_engine_exception' },
            },
          });
          continue;
        }
        this.versions.set(meta._id, meta.version);
        if (source) {
          this.docs.set(meta._id, source);
          items.push({ index: { _index: INDEX, _id: meta._id, status: 201, result: 'created' } });
        } else {
          const existed = this.docs.delete(meta._id);
          items.push({
            delete: {
              _index: INDEX,
              _id: meta._id,
              status: existed ? 200 : 404,
              result: existed ? 'deleted' : 'not_found',
            },
          });
        }
      }
      return {
        status: 200,
        body: { took: 1, errors: items.some((item) => JSON.stringify(item).includes('"status":404')), items },
      };
    }
    if (route === `POST /${INDEX}/_delete_by_query`) {
      const company = (JSON.parse(body) as { query: { term: { company_id: string } } }).query.term.company_id;
      let deleted = 0;
      for (const [id, doc] of this.docs) if (doc.company_id === company && this.docs.delete(id)) deleted++;
      return { status: 200, body: { took: 1, deleted, failures: [] } };
    }
    if (route === `POST /${INDEX}/_search`) {
      const search = JSON.parse(body) as {
        size: number;
        query: {
          knn: { embedding: { vector: number[]; k: number; filter: { bool: { filter: Clause[] } } } };
        };
      };
      const { vector, k, filter } = search.query.knn.embedding;
      const matches = (doc: StoredSource) =>
        filter.bool.filter.every((clause) => {
          const [field, wanted] = Object.entries(clause.term ?? clause.terms!)[0]!;
          const value = doc[field as keyof StoredSource];
          const accepted = Array.isArray(wanted) ? wanted : [wanted];
          return Array.isArray(value) ? value.some((v) => accepted.includes(v)) : accepted.includes(value);
        });
      const hits = [...this.docs.values()]
        .filter(matches)
        .map((doc) => ({ doc, score: (1 + cosine(vector, doc.embedding)) / 2 }))
        .sort((a, b) => b.score - a.score)
        .slice(0, Math.min(k, search.size))
        .map(({ doc, score }) => {
          const { embedding: _e, filters: _f, ...source } = doc;
          return { _index: INDEX, _id: `${doc.company_id}:${doc.doc_id}`, _score: score, _source: source };
        });
      return {
        status: 200,
        body: {
          took: 2,
          timed_out: false,
          hits: { total: { value: hits.length, relation: 'eq' }, max_score: hits[0]?._score ?? null, hits },
        },
      };
    }
    return {
      status: 400,
      body: { error: { type: 'illegal_argument_exception', reason: `unexpected ${route}` } },
    };
  }
}

describe('vectors on OpenSearch k-NN (contract: a recorded-shape stand-in, no OpenSearch server can run here)', () => {
  const standIn = new OpenSearchStandIn();
  let t: TestApp;
  let tenant: TestTenant;
  const docs = clusteredVectors(120, DIM, 31).map((vector, i) => ({
    docId: `doc-${i}`,
    vector,
    metadata: { category: i % 10 === 0 ? 'rare' : 'common', rank: i },
  }));

  const similar = async (token: string, input: Record<string, unknown>) => {
    const res = await t.gql<{ similar: Array<{ docId: string; score: number; backend: string }> }>(
      'query ($input: SimilarInput!) { similar(input: $input) { docId score backend } }',
      { input },
      token,
    );
    expect(res.errors).toBeUndefined();
    return res.data!.similar;
  };

  beforeAll(async () => {
    const url = await standIn.start();
    t = await startTestApp({
      OPENSEARCH_URL: url,
      OPENSEARCH_INDEX: INDEX,
      OPENSEARCH_REFRESH: 'true',
      VECTOR_DIMENSION: String(DIM),
    });
    tenant = await createTenant(t.app);
    const res = await t.gql(
      'mutation ($inputs: [IndexVectorInput!]!) { indexVectors(inputs: $inputs) { docId } }',
      { inputs: docs },
      tenant.admin.token,
    );
    expect(res.errors).toBeUndefined();
  });

  afterAll(async () => {
    await t?.stop();
    await standIn.stop();
  });

  it('creates the index with a cosine HNSW knn_vector mapping and bulk-indexes every write, routed by company', () => {
    const create = standIn.requests.find((r) => r.method === 'PUT' && r.path === `/${INDEX}`)!;
    const mapping = JSON.parse(create.body);
    expect(mapping).toEqual(indexMapping(DIM));
    expect(mapping.settings.index.knn).toBe(true);
    expect(mapping.mappings.properties.embedding).toMatchObject({
      type: 'knn_vector',
      dimension: DIM,
      method: { name: 'hnsw', space_type: 'cosinesimil' },
    });
    const bulk = standIn.requests.find((r) => r.path === '/_bulk')!;
    expect(bulk.query.get('refresh')).toBe('true');
    const [action, source] = bulk.body
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(action).toEqual({
      index: {
        _index: INDEX,
        _id: openSearchId(tenant.companyId, 'doc-0'),
        routing: tenant.companyId,
        // The write's sequence as an external version: a late bulk never overwrites a newer one.
        version: expect.any(Number),
        version_type: 'external_gte',
      },
    });
    expect(source).toMatchObject({
      company_id: tenant.companyId,
      doc_id: 'doc-0',
      entity_type: 'DOCUMENT',
      record_id: null,
      filters: ['category="rare"', 'rank=0'],
      metadata: { category: 'rare', rank: 0 },
    });
    expect(source!.embedding).toHaveLength(DIM);
    expect(standIn.docs.size).toBe(docs.length);
  });

  it('queries knn with the tenant and metadata filters inside the knn clause, and answers from OpenSearch', async () => {
    const query = clusteredVectors(1, DIM, 32)[0]!;
    const before = standIn.requests.length;
    const hits = await similar(tenant.rep.token, {
      vector: query,
      k: 5,
      filters: { metadata: [{ key: 'category', values: ['rare'] }] },
    });
    const rare = docs.filter((doc) => doc.metadata.category === 'rare');
    expect(hits.map((hit) => hit.docId)).toEqual(exactTopK(query, rare, 5).map((hit) => hit.docId));
    hits.forEach((hit, i) => expect(hit.score).toBeCloseTo(exactTopK(query, rare, 5)[i]!.score, 5));
    expect(hits.every((hit) => hit.backend === 'OPENSEARCH')).toBe(true);
    const search = standIn.requests.slice(before).find((r) => r.path === `/${INDEX}/_search`)!;
    expect(search.query.get('routing')).toBe(tenant.companyId);
    const body = JSON.parse(search.body);
    expect(body.query.knn.embedding).toMatchObject({
      k: body.size,
      filter: {
        bool: {
          filter: [{ term: { company_id: tenant.companyId } }, { terms: { filters: ['category="rare"'] } }],
        },
      },
    });
    expect(body.query.knn.embedding.vector).toHaveLength(DIM);
    expect(body._source).toEqual({ excludes: ['embedding', 'filters'] });
  });

  it('filters hits by record visibility after asking OpenSearch for more', async () => {
    const company = await createTenant(t.app);
    const [base] = clusteredVectors(1, DIM, 40, 1);
    const adminLeads = [];
    for (let i = 0; i < 30; i++) adminLeads.push(await insertLead(t.app, company, company.admin.id));
    const mine = await insertLead(t.app, company, company.rep.id);
    const inputs = [
      ...adminLeads.map((id, i) => ({
        docId: `lead:${id}`,
        vector: base!.map((v, j) => v + (j === i % DIM ? 0.01 * i : 0)),
      })),
      { docId: `lead:${mine}`, vector: base!.map((v) => -v) },
    ];
    expect(
      (
        await t.gql(
          'mutation ($inputs: [IndexVectorInput!]!) { indexVectors(inputs: $inputs) { docId } }',
          { inputs },
          company.admin.token,
        )
      ).errors,
    ).toBeUndefined();
    expect((await similar(company.rep.token, { vector: base, k: 3 })).map((hit) => hit.docId)).toEqual([
      `lead:${mine}`,
    ]);
    expect(await similar(company.admin.token, { vector: base, k: 3 })).toHaveLength(3);
    // The tenant filter is OpenSearch's own (free documents pass no record check): the other tenant never sees it.
    await t.gql(
      'mutation ($input: IndexVectorInput!) { indexVector(input: $input) { docId } }',
      { input: { docId: 'their-notes', vector: base } },
      company.rep.token,
    );
    expect((await similar(company.rep.token, { vector: base, k: 1 }))[0]!.docId).toBe('their-notes');
    expect((await similar(tenant.rep.token, { vector: base, k: 100 })).map((hit) => hit.docId)).not.toContain(
      'their-notes',
    );
  });

  it('a late write never overwrites a newer one (external versions), and is not taken for a failure', async () => {
    const backend = t.app.services.vectors.indexBackends()[0]!;
    expect(backend.name).toBe('OPENSEARCH');
    const [newer, older] = clusteredVectors(2, DIM, 55);
    const doc = (vector: number[], category: string) => ({
      companyId: tenant.companyId,
      docId: 'raced',
      entityType: 'DOCUMENT' as const,
      recordId: null,
      embedding: Float32Array.from(vector),
      metadata: { category },
    });
    const id = openSearchId(tenant.companyId, 'raced');
    await backend.applyWrites!(tenant.companyId, [{ doc: doc(newer!, 'new'), seq: 1_000_000 }], []);
    await backend.applyWrites!(tenant.companyId, [{ doc: doc(older!, 'old'), seq: 999_999 }], []);
    expect(standIn.docs.get(id)!.metadata).toEqual({ category: 'new' });
    await backend.applyWrites!(tenant.companyId, [], [{ docId: 'raced', seq: 999_998 }]);
    expect(standIn.docs.has(id)).toBe(true);
    await backend.applyWrites!(tenant.companyId, [], [{ docId: 'raced', seq: 1_000_001 }]);
    expect(standIn.docs.has(id)).toBe(false);
  });

  it('a write whose process died before OpenSearch confirmed it makes the company stale there until rebuilt', async () => {
    const pending = async () =>
      (
        await t.app.dataSource.query<[{ n: number }]>(
          'SELECT count(*)::int AS n FROM vector_pending_writes WHERE company_id = $1',
          [tenant.companyId],
        )
      )[0].n;
    // Confirmed writes leave nothing pending.
    expect(await pending()).toBe(0);
    // What a write leaves behind when its process dies between the Postgres commit and the bulk request.
    const [{ seq }] = await t.app.dataSource.query<[{ seq: string }]>(
      'SELECT seq FROM vector_companies WHERE company_id = $1',
      [tenant.companyId],
    );
    await t.app.dataSource.query(
      `INSERT INTO vector_pending_writes (backend, company_id, seq, since) VALUES ('OPENSEARCH', $1, $2, now() - interval '1 minute')`,
      [tenant.companyId, seq],
    );
    const status = await t.gql('{ vectorBackend { backends { name upToDate } } }', {}, tenant.rep.token);
    expect(status.data!.vectorBackend.backends[0]).toEqual({ name: 'OPENSEARCH', upToDate: false });
    const query = docs[7]!.vector;
    expect((await similar(tenant.rep.token, { vector: query, k: 1 }))[0]!.backend).toBe('FALLBACK');
    await t.app.services.vectors.repair();
    expect(await pending()).toBe(0);
    expect((await similar(tenant.rep.token, { vector: query, k: 1 }))[0]).toMatchObject({
      docId: 'doc-7',
      backend: 'OPENSEARCH',
    });
  });

  it('fails over when OpenSearch stops answering, rebuilds what it missed, and comes back', async () => {
    const vectors = t.app.services.vectors;
    const fallbacks = async () =>
      ((await t.app.metrics.registry.getSingleMetric('crm_vector_fallbacks_total')?.get())?.values ?? [])
        .filter((v) => v.labels.from === 'opensearch')
        .reduce((sum, v) => sum + v.value, 0);
    const before = await fallbacks();
    const query = docs[5]!.vector;
    standIn.down = true;
    const during = await similar(tenant.rep.token, { vector: query, k: 4 });
    expect(during.map((hit) => hit.docId)).toEqual(exactTopK(query, docs, 4).map((hit) => hit.docId));
    expect(during.every((hit) => hit.backend === 'FALLBACK')).toBe(true);
    expect(await fallbacks()).toBe(before + 1);

    const fresh = clusteredVectors(1, DIM, 999)[0]!;
    const write = await t.gql(
      'mutation ($input: IndexVectorInput!) { indexVector(input: $input) { docId } }',
      { input: { docId: 'while-down', vector: fresh } },
      tenant.admin.token,
    );
    expect(write.errors).toBeUndefined();
    expect(standIn.docs.has(openSearchId(tenant.companyId, 'while-down'))).toBe(false);

    standIn.down = false;
    await vectors.checkBackends();
    const status = await t.gql(
      '{ vectorBackend { active backends { name healthy upToDate } } }',
      {},
      tenant.rep.token,
    );
    expect(status.data!.vectorBackend.active).toBe('OPENSEARCH');
    expect(status.data!.vectorBackend.backends[0]).toMatchObject({
      name: 'OPENSEARCH',
      healthy: true,
      upToDate: false,
    });
    expect((await similar(tenant.rep.token, { vector: fresh, k: 1 }))[0]).toMatchObject({
      docId: 'while-down',
      backend: 'FALLBACK',
    });

    await vectors.repair();
    expect(standIn.requests.some((r) => r.path === `/${INDEX}/_delete_by_query`)).toBe(true);
    expect(standIn.docs.has(openSearchId(tenant.companyId, 'while-down'))).toBe(true);
    expect((await similar(tenant.rep.token, { vector: fresh, k: 1 }))[0]).toMatchObject({
      docId: 'while-down',
      backend: 'OPENSEARCH',
    });

    // Deletes reach OpenSearch too.
    await t.gql('mutation { deleteVector(docId: "while-down") }', {}, tenant.admin.token);
    expect(standIn.docs.has(openSearchId(tenant.companyId, 'while-down'))).toBe(false);
  });
});
