import { randomUUID } from 'node:crypto';
import { ValidationError } from '../../src/platform/errors/app-error';
import { createTenant, insertLead, type TestTenant } from '../helpers/fixtures';
import { startTestApp, type TestApp } from '../helpers/test-app';
import { clusteredVectors, exactTopK } from '../helpers/vectors';

const DIM = 16;
const ENV = { VECTOR_DIMENSION: String(DIM) };

const SIMILAR = `query ($input: SimilarInput!) {
  similar(input: $input) { docId score entityType metadata backend record { __typename ... on Lead { id lastName } } }
}`;
const INDEX_MANY = `mutation ($inputs: [IndexVectorInput!]!) { indexVectors(inputs: $inputs) { docId entityType recordId } }`;
const INDEX_ONE = `mutation ($input: IndexVectorInput!) { indexVector(input: $input) { docId entityType recordId } }`;

interface Hit {
  docId: string;
  score: number;
  entityType: string;
  metadata: Record<string, unknown>;
  backend: string;
  record: { __typename: string; id: string; lastName: string } | null;
}

async function storedCount(t: TestApp, companyId: string): Promise<number> {
  const [{ n }] = await t.app.dataSource.query<[{ n: number }]>(
    'SELECT count(*)::int AS n FROM vector_documents WHERE company_id = $1',
    [companyId],
  );
  return n;
}

async function indexAll(
  t: TestApp,
  token: string,
  docs: Array<{ docId: string; vector: number[]; metadata?: object }>,
) {
  for (let i = 0; i < docs.length; i += 200) {
    const res = await t.gql(INDEX_MANY, { inputs: docs.slice(i, i + 200) }, token);
    expect(res.errors).toBeUndefined();
  }
}

async function similar(t: TestApp, token: string, input: Record<string, unknown>): Promise<Hit[]> {
  const res = await t.gql<{ similar: Hit[] }>(SIMILAR, { input }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.similar;
}

async function eventually<T>(
  probe: () => Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('vectors on Postgres 15 without pgvector (fallback backend)', () => {
  let t: TestApp;
  let second: TestApp;
  let worker: TestApp;
  let tenant: TestTenant;
  let other: TestTenant;

  beforeAll(async () => {
    const queuePrefix = `test-${randomUUID().slice(0, 8)}`;
    t = await startTestApp({ ...ENV, VECTOR_MAX_CANDIDATES: '50' }, 'gateway', { queuePrefix });
    second = await startTestApp(ENV, 'gateway', { queuePrefix });
    worker = await startTestApp(ENV, 'worker', { queuePrefix });
    tenant = await createTenant(t.app);
    other = await createTenant(t.app);
  });

  afterAll(async () => {
    await Promise.all([t?.stop(), second?.stop(), worker?.stop()]);
  });

  it('reports the fallback as active and says why pgvector is not (the reason to admins only)', async () => {
    const query = '{ vectorBackend { active dimension embedder backends { name healthy reason upToDate } } }';
    const asRep = await t.gql(query, {}, tenant.rep.token);
    expect(asRep.data!.vectorBackend.backends[0]).toMatchObject({ healthy: false, reason: 'unavailable' });
    const res = await t.gql(query, {}, tenant.admin.token);
    expect(res.errors).toBeUndefined();
    const status = res.data!.vectorBackend;
    expect(status.active).toBe('FALLBACK');
    expect(status.dimension).toBe(DIM);
    expect(status.backends.map((b: { name: string }) => b.name)).toEqual(['PGVECTOR', 'FALLBACK']);
    expect(status.backends[0]).toMatchObject({
      healthy: false,
      reason: expect.stringMatching(/vector extension/),
    });
    expect(status.backends[1]).toMatchObject({ healthy: true, reason: null });
  });

  it('rejects bad input naming the field and the rule, and writes nothing', async () => {
    const company = await createTenant(t.app);
    const adminLead = await insertLead(t.app, company, company.admin.id);
    const good = Array.from({ length: DIM }, (_, i) => i + 1);
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      [INDEX_ONE, { input: { docId: 'a', vector: [1, 2, 3] } }, /input\.vector must have exactly 16 numbers/],
      [
        INDEX_ONE,
        { input: { docId: 'a', vector: good.map(() => 0) } },
        /input\.vector must not be all zeros/,
      ],
      [INDEX_ONE, { input: { docId: 'x'.repeat(256), vector: good } }, /input\.docId must be at most 255/],
      [INDEX_ONE, { input: { docId: '', vector: good } }, /input\.docId must be a non-empty string/],
      [INDEX_ONE, { input: { docId: 'a\u0000b', vector: good } }, /input\.docId must not contain NUL/],
      [
        INDEX_ONE,
        { input: { docId: 'a', vector: good, metadata: { note: 'broken \ud800 pair' } } },
        /input\.metadata\.note must be valid Unicode text/,
      ],
      [
        INDEX_ONE,
        { input: { docId: 'a', vector: good, metadata: { note: 'nul \u0000 here' } } },
        /input\.metadata.* NUL/,
      ],
      [
        INDEX_ONE,
        { input: { docId: 'lead:not-a-uuid', vector: good } },
        /input\.docId must be "<lead\|deal\|account>:<record uuid>"/,
      ],
      [
        INDEX_ONE,
        { input: { docId: 'a', vector: good, metadata: { blob: 'x'.repeat(17_000) } } },
        /input\.metadata must be at most 16384 bytes/,
      ],
      // The rep may not edit the admin's lead under the PRIVATE default.
      [
        INDEX_ONE,
        { input: { docId: `lead:${adminLead}`, vector: good } },
        /input\.docId must name a lead you may edit/,
      ],
      [
        INDEX_MANY,
        {
          inputs: [
            { docId: 'a', vector: good },
            { docId: 'a', vector: good },
          ],
        },
        /inputs\[1\]\.docId must not repeat/,
      ],
      [SIMILAR, { input: { vector: good, k: 0 } }, /input\.k must be an integer from 1 to 100/],
      [SIMILAR, { input: { vector: good, k: 101 } }, /input\.k must be an integer from 1 to 100/],
      [SIMILAR, { input: { vector: good, text: 'both' } }, /input must give exactly one of vector and text/],
      [SIMILAR, { input: { text: '?! ...' } }, /input\.text must contain at least one letter or digit/],
      [SIMILAR, { input: { vector: good, minScore: 2 } }, /input\.minScore must be a number from -1 to 1/],
      [
        SIMILAR,
        { input: { vector: good, filters: { metadata: [{ key: 'owner_email', values: ['x'] }] } } },
        /input\.filters\.metadata\[0\]\.key must be one of status, stage/,
      ],
      [
        SIMILAR,
        { input: { vector: good, filters: { metadata: [{ key: 'status', values: [{ nested: 1 }] }] } } },
        /input\.filters\.metadata\[0\]\.values\[0\] must be a string, a finite number or a boolean/,
      ],
    ];
    for (const [query, variables, message] of cases) {
      const res = await t.gql(query, variables, company.rep.token);
      expect({ message: res.errors?.[0]?.message, code: res.errors?.[0]?.extensions?.code }).toEqual({
        message: expect.stringMatching(message),
        code: 'BAD_USER_INPUT',
      });
    }
    // JSON cannot carry NaN or Infinity, so the service's own check is exercised directly.
    const principal = {
      userId: company.rep.id,
      companyId: company.companyId,
      roleId: null,
      isAdmin: false,
      tokenExpiresAt: 2e9,
    };
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const vector = [...good];
      vector[3] = bad;
      await expect(t.app.services.vectors.indexVectors(principal, [{ docId: 'n', vector }])).rejects.toThrow(
        /input\.vector\[3\] must be a finite number/,
      );
      await expect(t.app.services.vectors.similar(principal, { vector })).rejects.toBeInstanceOf(
        ValidationError,
      );
    }
    expect(await storedCount(t, company.companyId)).toBe(0);
  });

  it('returns the exact top k by cosine, with entity-type and metadata filters', async () => {
    const vectors = clusteredVectors(300, DIM, 7);
    const docs = vectors.map((vector, i) => ({
      docId: `doc-${String(i).padStart(3, '0')}`,
      vector,
      metadata: { category: i % 50 === 0 ? 'rare' : 'common', language: i % 2 === 0 ? 'en' : 'de', rank: i },
    }));
    await indexAll(t, tenant.admin.token, docs);
    for (const query of clusteredVectors(5, DIM, 99)) {
      const hits = await similar(t, tenant.rep.token, { vector: query, k: 10 });
      const expected = exactTopK(query, docs, 10);
      expect(hits.map((hit) => hit.docId)).toEqual(expected.map((hit) => hit.docId));
      hits.forEach((hit, i) => expect(hit.score).toBeCloseTo(expected[i]!.score, 4));
      expect(new Set(hits.map((hit) => hit.backend))).toEqual(new Set(['FALLBACK']));
      expect(hits[0]!.entityType).toBe('DOCUMENT');
      expect(hits[0]!.record).toBeNull();
    }
    // A selective filter still fills k when k match, and returns all of them when fewer do.
    const query = vectors[1]!;
    const rare = docs.filter((doc) => doc.metadata.category === 'rare');
    const five = await similar(t, tenant.rep.token, {
      vector: query,
      k: 5,
      filters: { metadata: [{ key: 'category', values: ['rare'] }] },
    });
    expect(five.map((hit) => hit.docId)).toEqual(exactTopK(query, rare, 5).map((hit) => hit.docId));
    const all = await similar(t, tenant.rep.token, {
      vector: query,
      k: 10,
      filters: { metadata: [{ key: 'category', values: ['rare'] }] },
    });
    expect(all).toHaveLength(rare.length);
    // Two keys: both must match; values of one key: any.
    const both = await similar(t, tenant.rep.token, {
      vector: query,
      k: 100,
      filters: {
        entityTypes: ['DOCUMENT'],
        metadata: [
          { key: 'category', values: ['rare', 'none'] },
          { key: 'language', values: ['en'] },
        ],
      },
    });
    expect(both.map((hit) => hit.docId).sort()).toEqual(
      rare.filter((doc) => doc.metadata.language === 'en').map((doc) => doc.docId),
    );
    // minScore cuts the tail.
    // Midway between the 13th and 14th scores (the server ranks in float32, the reference in float64).
    const ranked = exactTopK(query, docs, 20);
    const floor = (ranked[12]!.score + ranked[13]!.score) / 2;
    const above = await similar(t, tenant.rep.token, { vector: query, k: 20, minScore: floor });
    expect(above.map((hit) => hit.docId)).toEqual(exactTopK(query, docs, 13).map((hit) => hit.docId));
    // Text queries embed with the same deterministic embedder the documents could use.
    expect(await similar(t, tenant.rep.token, { text: 'renewal for acme', k: 3 })).toHaveLength(3);
  });

  it('never returns a record the caller may not read, and still returns k when k are readable', async () => {
    const company = await createTenant(t.app);
    const base = clusteredVectors(1, DIM, 3, 1)[0]!;
    const towards = (scale: number) => base.map((value, i) => value * scale + (i === 0 ? 1 - scale : 0));
    const adminLeads: string[] = [];
    for (let i = 0; i < 120; i++)
      adminLeads.push(await insertLead(t.app, company, company.admin.id, `Admin ${i}`));
    const repLeads: string[] = [];
    for (let i = 0; i < 4; i++) repLeads.push(await insertLead(t.app, company, company.rep.id, `Rep ${i}`));
    await t.app.dataSource.query(
      `INSERT INTO record_shares (company_id, object_type, record_id, grantee_type, grantee_id, access_level)
       VALUES ($1, 'LEAD', $2, 'USER', $3, 'READ')`,
      [company.companyId, adminLeads[119], company.rep.id],
    );
    // The admin's leads sit closest to the query, the rep's far away: the rep's hits come only after overfetching.
    const docs = [
      ...adminLeads.map((id, i) => ({ docId: `lead:${id}`, vector: towards(1 - i / 1000) })),
      ...repLeads.map((id, i) => ({ docId: `lead:${id}`, vector: towards(0.2 - i / 100) })),
      { docId: 'handbook', vector: towards(0.1) },
    ];
    await indexAll(t, company.admin.token, docs);
    const readableByRep = new Set([
      ...repLeads.map((id) => `lead:${id}`),
      `lead:${adminLeads[119]}`,
      'handbook',
    ]);

    const repHits = await similar(t, company.rep.token, { vector: base, k: 5 });
    const repExpected = exactTopK(
      base,
      docs.filter((doc) => readableByRep.has(doc.docId)),
      5,
    );
    expect(repHits.map((hit) => hit.docId)).toEqual(repExpected.map((hit) => hit.docId));
    for (const hit of repHits.filter((h) => h.entityType === 'LEAD')) {
      expect(hit.record).toMatchObject({ __typename: 'Lead', id: hit.docId.slice(5) });
    }
    const everything = await similar(t, company.rep.token, { vector: base, k: 100 });
    expect(new Set(everything.map((hit) => hit.docId))).toEqual(readableByRep);

    const adminHits = await similar(t, company.admin.token, { vector: base, k: 10 });
    expect(adminHits.map((hit) => hit.docId)).toEqual(exactTopK(base, docs, 10).map((hit) => hit.docId));

    // The rep may not remove the vector of a lead they cannot edit, and the answer is the same whether or not a
    // vector (or the lead) exists.
    for (const docId of [`lead:${adminLeads[3]}`, `lead:${randomUUID()}`]) {
      const denied = await t.gql(
        'mutation ($d: String!) { deleteVector(docId: $d) }',
        { d: docId },
        company.rep.token,
      );
      expect(denied.errors?.[0]?.message).toBe('docId must name a lead you may edit');
    }
    // Another company sees none of it, and cannot delete it.
    expect(await similar(t, other.admin.token, { vector: base, k: 100 })).toEqual([]);
    const del = await t.gql(
      'mutation ($d: String!) { deleteVector(docId: $d) }',
      { d: 'handbook' },
      other.admin.token,
    );
    expect(del.data).toEqual({ deleteVector: false });
    expect(await storedCount(t, company.companyId)).toBe(docs.length);

    // A deleted record drops out of results at once (its vector's record no longer resolves).
    await t.app.dataSource.query('DELETE FROM leads WHERE id = $1', [repLeads[0]]);
    const afterDelete = await similar(t, company.rep.token, { vector: base, k: 100 });
    expect(afterDelete.map((hit) => hit.docId)).not.toContain(`lead:${repLeads[0]}`);
    expect(afterDelete).toHaveLength(readableByRep.size - 1);
  });

  it('a second gateway answers from its own copy and still sees every write at once', async () => {
    const company = await createTenant(t.app);
    const docs = clusteredVectors(40, DIM, 11).map((vector, i) => ({ docId: `d${i}`, vector }));
    await indexAll(t, company.admin.token, docs);
    const query = clusteredVectors(1, DIM, 12)[0]!;
    expect((await similar(second, company.rep.token, { vector: query, k: 3 })).map((h) => h.docId)).toEqual(
      exactTopK(query, docs, 3).map((h) => h.docId),
    );
    const index = await t.gql(
      INDEX_ONE,
      { input: { docId: 'closest', vector: query, metadata: { category: 'new' } } },
      company.rep.token,
    );
    expect(index.errors).toBeUndefined();
    const [top] = await similar(second, company.rep.token, { vector: query, k: 1 });
    expect(top).toMatchObject({ docId: 'closest', metadata: { category: 'new' } });
    expect(top!.score).toBeCloseTo(1, 5);
    // Replacing moves it; deleting removes it.
    const away = query.map((value) => -value);
    await t.gql(INDEX_ONE, { input: { docId: 'closest', vector: away } }, company.rep.token);
    expect((await similar(second, company.rep.token, { vector: query, k: 1 }))[0]!.docId).not.toBe('closest');
    const del = await t.gql('mutation { deleteVector(docId: "closest") }', {}, company.rep.token);
    expect(del.data).toEqual({ deleteVector: true });
    const hits = await similar(second, company.rep.token, { vector: away, k: 40 });
    expect(hits.map((h) => h.docId)).not.toContain('closest');
    expect(hits).toHaveLength(40);
  });

  it('embeds records on create and update through the queue worker, and drops them on delete', async () => {
    const company = await createTenant(t.app, { extraUsers: 1 });
    const created = await t.gql(
      `mutation { createLead(input: { firstName: "Quintessa", lastName: "Blackwood", companyName: "Zephyr Robotics",
                  industry: TECHNOLOGY, description: "wants a warehouse automation pilot" }) { id } }`,
      {},
      company.rep.token,
    );
    expect(created.errors).toBeUndefined();
    const id = created.data!.createLead.id as string;
    const found = await eventually(
      () => similar(t, company.rep.token, { text: 'Quintessa Blackwood warehouse automation', k: 1 }),
      (hits) => hits.length === 1,
    );
    expect(found[0]).toMatchObject({
      docId: `lead:${id}`,
      entityType: 'LEAD',
      metadata: { status: 'NEW', industry: 'TECHNOLOGY' },
      record: { __typename: 'Lead', id, lastName: 'Blackwood' },
    });
    // The admin finds it too; a fellow rep under the PRIVATE default does not, nor does another company.
    expect((await similar(t, company.admin.token, { text: 'Quintessa Blackwood', k: 1 }))[0]!.docId).toBe(
      `lead:${id}`,
    );
    expect(await similar(t, company.others[0]!.token, { text: 'Quintessa Blackwood', k: 5 })).toEqual([]);
    expect(await similar(t, other.admin.token, { text: 'Quintessa Blackwood', k: 5 })).toEqual([]);

    await t.gql(
      `mutation ($id: ID!) { updateLead(id: $id, input: { lastName: "Okonkwo-Marsh" }) { id } }`,
      { id },
      company.rep.token,
    );
    const renamed = await eventually(
      () => similar(t, company.rep.token, { text: 'Okonkwo-Marsh', k: 1 }),
      (hits) => hits[0]?.record?.lastName === 'Okonkwo-Marsh' && hits[0].score > 0.3,
    );
    expect(renamed[0]!.record!.lastName).toBe('Okonkwo-Marsh');
    const stored = await t.app.dataSource.query<Array<{ embedding: number[] }>>(
      'SELECT embedding FROM vector_documents WHERE company_id = $1 AND doc_id = $2',
      [company.companyId, `lead:${id}`],
    );
    const expected = t.app.services.vectors.settings.dimension;
    expect(stored[0]!.embedding).toHaveLength(expected);
    // Stored at unit length (cosine is then a plain dot product).
    expect(Math.hypot(...stored[0]!.embedding)).toBeCloseTo(1, 5);

    await t.gql(`mutation ($id: ID!) { deleteLead(id: $id) }`, { id }, company.rep.token);
    const gone = await eventually(
      () =>
        t.app.dataSource.query(
          'SELECT 1 FROM vector_documents WHERE company_id = $1 AND doc_id = $2 AND embedding IS NOT NULL',
          [company.companyId, `lead:${id}`],
        ),
      (rows: unknown[]) => rows.length === 0,
    );
    expect(gone).toHaveLength(0);
  });
});
