import { createTenant, insertLead, type TestTenant } from '../helpers/fixtures';
import { spawnBuilt, type SpawnedProcess } from '../helpers/spawn-gateway';
import { startTestApp, type TestApp } from '../helpers/test-app';
import { clusteredVectors, exactTopK } from '../helpers/vectors';

const DIM = 16;
const SIMILAR = `query ($input: SimilarInput!) { similar(input: $input) { docId score backend } }`;

interface Hit {
  docId: string;
  score: number;
  backend: string;
}

/** pgvector runs only in the embedded PGlite here (the machine's Postgres 15 has no extension). */
describe('vectors on pgvector (embedded PGlite with pgvector 0.8)', () => {
  let pg: SpawnedProcess;
  let t: TestApp;
  let tenant: TestTenant;
  // Queries are held-out rows of the same topics as the documents.
  const generated = clusteredVectors(1530, DIM, 21);
  const heldOut = generated.slice(1500);
  const docs = generated.slice(0, 1500).map((vector, i) => ({
    docId: `doc-${i}`,
    vector,
    metadata: { category: i % 125 === 7 ? 'rare' : 'common' },
  }));

  async function similar(token: string, input: Record<string, unknown>): Promise<Hit[]> {
    const res = await t.gql<{ similar: Hit[] }>(SIMILAR, { input }, token);
    expect(res.errors).toBeUndefined();
    return res.data!.similar;
  }

  async function fallbacksCounted(): Promise<number> {
    const metric = await t.app.metrics.registry.getSingleMetric('crm_vector_fallbacks_total')?.get();
    return (metric?.values ?? [])
      .filter((v) => v.labels.from === 'pgvector' && v.labels.to === 'fallback')
      .reduce((sum, v) => sum + v.value, 0);
  }

  beforeAll(async () => {
    // PGlite loads its WebAssembly through dynamic import, which jest's sandbox lacks: it runs as its own process,
    // reached over the wire protocol like any Postgres server.
    pg = spawnBuilt('cli/embedded-postgres.cli', { LOG_LEVEL: 'warn' }, ['--data-dir', 'memory://']);
    pg.child.stdin.end();
    const [, url] = await pg.waitFor(/listening at (\S+)/, 60_000);
    // No Redis: in-process queue, cache and pub/sub, as in the embedded quick start.
    t = await startTestApp(
      { DATABASE_URL: url!, REDIS_URL: '', VECTOR_DIMENSION: String(DIM), DATABASE_POOL_SIZE: '5' },
      'gateway',
      { migrate: true },
    );
    tenant = await createTenant(t.app);
    for (let i = 0; i < docs.length; i += 250) {
      const res = await t.gql(
        'mutation ($inputs: [IndexVectorInput!]!) { indexVectors(inputs: $inputs) { docId } }',
        { inputs: docs.slice(i, i + 250) },
        tenant.admin.token,
      );
      expect(res.errors).toBeUndefined();
    }
  }, 120_000);

  afterAll(async () => {
    await t?.stop();
    pg?.child.kill('SIGTERM');
    await pg?.exited;
  });

  it('is the active backend, with an HNSW index holding every vector', async () => {
    const res = await t.gql(
      '{ vectorBackend { active backends { name healthy upToDate } } }',
      {},
      tenant.rep.token,
    );
    expect(res.data!.vectorBackend.active).toBe('PGVECTOR');
    const [{ n }] = await t.app.dataSource.query<[{ n: number }]>(
      'SELECT count(*)::int AS n FROM vector_search_index WHERE company_id = $1',
      [tenant.companyId],
    );
    expect(n).toBe(docs.length);
    // At test scale a sequential scan is cheaper; with it priced out, the HNSW index must serve the ordering.
    const plan = await t.app.dataSource.transaction(async (manager) => {
      await manager.query('SET LOCAL enable_seqscan = off');
      return manager.query<Array<{ 'QUERY PLAN': string }>>(
        `EXPLAIN SELECT doc_id FROM vector_search_index ORDER BY embedding <=> $1::vector LIMIT 10`,
        [`[${docs[0]!.vector.join(',')}]`],
      );
    });
    expect(plan.map((row) => row['QUERY PLAN']).join('\n')).toMatch(/vector_search_index_hnsw/);
  });

  it('agrees with the exact fallback: recall@10 >= 0.95, and k results under a selective filter', async () => {
    const queries = heldOut;
    let found = 0;
    for (const query of queries) {
      const hits = await similar(tenant.rep.token, { vector: query, k: 10 });
      expect(hits.every((hit) => hit.backend === 'PGVECTOR')).toBe(true);
      const exact = new Set(exactTopK(query, docs, 10).map((hit) => hit.docId));
      found += hits.filter((hit) => exact.has(hit.docId)).length;
    }
    expect(found / (queries.length * 10)).toBeGreaterThanOrEqual(0.95);

    const rare = docs.filter((doc) => doc.metadata.category === 'rare');
    expect(rare.length).toBe(12);
    const filtered = await similar(tenant.rep.token, {
      vector: queries[0],
      k: 10,
      filters: { metadata: [{ key: 'category', values: ['rare'] }] },
    });
    expect(filtered.map((hit) => hit.docId)).toEqual(
      exactTopK(queries[0]!, rare, 10).map((hit) => hit.docId),
    );
  });

  it('keeps record visibility on pgvector', async () => {
    const company = await createTenant(t.app);
    const mine = await insertLead(t.app, company, company.rep.id, 'Mine');
    const theirs = await insertLead(t.app, company, company.admin.id, 'Theirs');
    const [a, b] = clusteredVectors(2, DIM, 5, 1);
    const res = await t.gql(
      'mutation ($inputs: [IndexVectorInput!]!) { indexVectors(inputs: $inputs) { docId } }',
      {
        inputs: [
          { docId: `lead:${theirs}`, vector: a },
          { docId: `lead:${mine}`, vector: b },
        ],
      },
      company.admin.token,
    );
    expect(res.errors).toBeUndefined();
    expect((await similar(company.rep.token, { vector: a, k: 10 })).map((hit) => hit.docId)).toEqual([
      `lead:${mine}`,
    ]);
    // A free document of this company never reaches the other tenant, even as its exact nearest neighbour.
    await t.gql(
      'mutation ($input: IndexVectorInput!) { indexVector(input: $input) { docId } }',
      { input: { docId: 'their-handbook', vector: a } },
      company.rep.token,
    );
    expect((await similar(company.rep.token, { vector: a, k: 1 }))[0]!.docId).toBe('their-handbook');
    expect((await similar(tenant.rep.token, { vector: a, k: 100 })).map((hit) => hit.docId)).not.toContain(
      'their-handbook',
    );
    expect(await similar(company.admin.token, { vector: a, k: 10 })).toHaveLength(3);
    expect(
      await similar(tenant.admin.token, { vector: a, k: 10, filters: { entityTypes: ['LEAD'] } }),
    ).toEqual([]);
  });

  it('fails over to the fallback mid-run, rebuilds what pgvector missed, and comes back', async () => {
    const vectors = t.app.services.vectors;
    const query = docs[3]!.vector;
    const before = await fallbacksCounted();
    await t.app.dataSource.query('ALTER TABLE vector_search_index RENAME TO vector_search_index_away');

    const during = await similar(tenant.rep.token, { vector: query, k: 10 });
    expect(during.every((hit) => hit.backend === 'FALLBACK')).toBe(true);
    expect(during.map((hit) => hit.docId)).toEqual(exactTopK(query, docs, 10).map((hit) => hit.docId));
    expect(await fallbacksCounted()).toBe(before + 1);
    const status = await t.gql(
      '{ vectorBackend { active backends { name healthy reason } } }',
      {},
      tenant.rep.token,
    );
    expect(status.data!.vectorBackend.active).toBe('FALLBACK');
    expect(status.data!.vectorBackend.backends[0]).toMatchObject({ name: 'PGVECTOR', healthy: false });

    // A write while pgvector is broken still lands in Postgres; the company is marked stale on pgvector.
    const newcomer = clusteredVectors(1, DIM, 4242)[0]!;
    const write = await t.gql(
      'mutation ($input: IndexVectorInput!) { indexVector(input: $input) { docId } }',
      { input: { docId: 'written-during-outage', vector: newcomer } },
      tenant.admin.token,
    );
    expect(write.errors).toBeUndefined();
    expect((await similar(tenant.rep.token, { vector: newcomer, k: 1 }))[0]).toMatchObject({
      docId: 'written-during-outage',
      backend: 'FALLBACK',
    });

    await t.app.dataSource.query('ALTER TABLE vector_search_index_away RENAME TO vector_search_index');
    await vectors.checkBackends();
    const healed = await t.gql(
      '{ vectorBackend { active backends { name healthy upToDate } } }',
      {},
      tenant.rep.token,
    );
    expect(healed.data!.vectorBackend.active).toBe('PGVECTOR');
    // Healthy again, but it missed a write for this company: queries keep to the fallback until it is rebuilt.
    expect(healed.data!.vectorBackend.backends[0]).toMatchObject({ healthy: true, upToDate: false });
    expect((await similar(tenant.rep.token, { vector: newcomer, k: 1 }))[0]!.backend).toBe('FALLBACK');

    await vectors.repair();
    const [top] = await similar(tenant.rep.token, { vector: newcomer, k: 1 });
    expect(top).toMatchObject({ docId: 'written-during-outage', backend: 'PGVECTOR' });
  });

  it('lets company admins rebuild their index on demand, through the queue', async () => {
    const reindex = 'mutation { reindexVectors(backend: PGVECTOR) { active backends { name upToDate } } }';
    const denied = await t.gql(reindex, {}, tenant.rep.token);
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    // Lose a row behind the backend's back: only a rebuild brings it back.
    await t.app.dataSource.query('DELETE FROM vector_search_index WHERE company_id = $1 AND doc_id = $2', [
      tenant.companyId,
      'doc-9',
    ]);
    expect(await t.gql(reindex, {}, tenant.admin.token)).not.toHaveProperty('errors');
    const deadline = Date.now() + 20_000;
    let rows: Array<{ n: number }> = [];
    while (Date.now() < deadline) {
      rows = await t.app.dataSource.query(
        'SELECT count(*)::int AS n FROM vector_search_index WHERE company_id = $1 AND doc_id = $2',
        [tenant.companyId, 'doc-9'],
      );
      const status = await t.gql('{ vectorBackend { backends { name upToDate } } }', {}, tenant.rep.token);
      if (rows[0]!.n === 1 && status.data!.vectorBackend.backends[0].upToDate) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(rows[0]!.n).toBe(1);
    const [hit] = await similar(tenant.rep.token, { vector: docs[9]!.vector, k: 1 });
    expect(hit).toMatchObject({ docId: 'doc-9', backend: 'PGVECTOR' });
  });
});
