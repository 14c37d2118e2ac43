import { createHash } from 'node:crypto';
import { GraphQLError, parse, type DocumentNode } from 'graphql';
import type { Principal } from '../../modules/kernel';
import { OperationManifest } from '../operation-manifest';
import { PersistedOperations, type OperationsMode, type ResolvedOperation } from '../persisted-operations';
import { MemoryPersistedQueryStore } from '../persisted-query.store';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const persisted = (hash: string) => ({ persistedQuery: { version: 1, sha256Hash: hash } });
const principal = { userId: 'u', companyId: 'c' } as unknown as Principal;
const listed = 'query Me { me { id } }';
const other = '{ me { email } }';
const mutation = 'mutation { deleteLead(id: "1") }';

/** The core's parse-and-validate, as a stand-in: a document that does not parse is invalid, `{ nope }` too. */
function prepare(query: string): { document: DocumentNode } | { errors: readonly GraphQLError[] } {
  try {
    const document = parse(query);
    return query.includes('nope')
      ? { errors: [new GraphQLError('Cannot query field "nope"')] }
      : { document };
  } catch (error) {
    return { errors: [error as GraphQLError] };
  }
}

function operations(mode: OperationsMode) {
  const store = new MemoryPersistedQueryStore({ ttlSeconds: 60 });
  const manifest = new OperationManifest('test', [
    { id: sha256(listed), name: 'Me', type: 'query', body: listed },
  ]);
  return { store, ops: new PersistedOperations({ mode, manifest, store, prepare, parse: (q) => parse(q) }) };
}

const codeOf = (resolved: ResolvedOperation) =>
  'error' in resolved ? resolved.error.extensions.code : undefined;
const post = { principal, method: 'POST' as const };

describe('PersistedOperations', () => {
  it('any: runs every document, registers a valid one sent with its hash, finds it by hash', async () => {
    const { ops, store } = operations('any');
    expect(await ops.resolve({ query: other }, post)).toEqual({ query: other });
    expect(codeOf(await ops.resolve({ extensions: persisted(sha256(other)) }, post))).toBe(
      'PERSISTED_QUERY_NOT_FOUND',
    );
    expect(await ops.resolve({ query: other, extensions: persisted(sha256(other)) }, post)).toEqual({
      query: other,
    });
    expect(await store.get(sha256(other))).toBe(other);
    expect(
      await ops.resolve({ query: '', extensions: persisted(sha256(other).toUpperCase()) }, post),
    ).toEqual({
      query: other,
    });
    expect(await ops.resolve({}, post)).toEqual({ unchanged: true });
  });

  it('registers neither an invalid document nor one from an anonymous caller, nor a mutation sent over GET', async () => {
    const { ops, store } = operations('any');
    const invalid = '{ nope }';
    expect(await ops.resolve({ query: invalid, extensions: persisted(sha256(invalid)) }, post)).toEqual({
      query: invalid,
    });
    const anonymous = { principal: undefined, method: 'POST' as const };
    expect(await ops.resolve({ query: other, extensions: persisted(sha256(other)) }, anonymous)).toEqual({
      query: other,
    });
    const overGet = await ops.resolve(
      { query: mutation, extensions: persisted(sha256(mutation)) },
      { principal, method: 'GET' },
    );
    expect(codeOf(overGet)).toBe('MUTATION_OVER_GET');
    for (const query of [invalid, other, mutation]) expect(await store.get(sha256(query))).toBeUndefined();
  });

  it('refuses a hash that is not the document’s, and a malformed extension, naming the field', async () => {
    const { ops } = operations('any');
    expect(codeOf(await ops.resolve({ query: other, extensions: persisted(sha256(listed)) }, post))).toBe(
      'PERSISTED_QUERY_HASH_MISMATCH',
    );
    for (const extensions of [
      { persistedQuery: 'abc' },
      { persistedQuery: { version: 2, sha256Hash: sha256(other) } },
      { persistedQuery: { version: 1, sha256Hash: 'xyz' } },
    ]) {
      const resolved = await ops.resolve({ query: other, extensions }, post);
      expect(codeOf(resolved)).toBe('PERSISTED_QUERY_INVALID');
      expect('error' in resolved && resolved.error.message).toMatch(/^extensions\.persistedQuery/);
    }
  });

  it('persisted: a full document runs only once its hash is known (registered or listed)', async () => {
    const { ops } = operations('persisted');
    expect(codeOf(await ops.resolve({ query: other }, post))).toBe('PERSISTED_QUERY_REQUIRED');
    expect(await ops.resolve({ query: listed }, post)).toEqual({ query: listed });
    await ops.resolve({ query: other, extensions: persisted(sha256(other)) }, post);
    expect(await ops.resolve({ query: other }, post)).toEqual({ query: other });
    const anonymous = { principal: undefined, method: 'POST' as const };
    const unregistered = '{ me { name } }';
    expect(
      codeOf(
        await ops.resolve({ query: unregistered, extensions: persisted(sha256(unregistered)) }, anonymous),
      ),
    ).toBe('PERSISTED_QUERY_REQUIRED');
    expect(await ops.resolve({ query: other, extensions: persisted(sha256(other)) }, anonymous)).toEqual({
      query: other,
    });
  });

  it('safelist: only the manifest, by id or by body; introspection is left to its own rule', async () => {
    const { ops, store } = operations('safelist');
    expect(await ops.resolve({ query: '', extensions: persisted(sha256(listed)) }, post)).toEqual({
      query: listed,
    });
    expect(await ops.resolve({ query: listed }, post)).toEqual({ query: listed });
    expect(codeOf(await ops.resolve({ query: other }, post))).toBe('OPERATION_NOT_IN_SAFELIST');
    expect(codeOf(await ops.resolve({ query: other, extensions: persisted(sha256(other)) }, post))).toBe(
      'OPERATION_NOT_IN_SAFELIST',
    );
    expect(codeOf(await ops.resolve({ extensions: persisted(sha256(other)) }, post))).toBe(
      'OPERATION_NOT_IN_SAFELIST',
    );
    expect(await store.get(sha256(other))).toBeUndefined();
    const introspection = 'query { __schema { ...Types } } fragment Types on __Schema { types { name } }';
    expect(await ops.resolve({ query: introspection }, post)).toEqual({ query: introspection });
    // Introspection beside a real field is not introspection.
    expect(codeOf(await ops.resolve({ query: '{ __typename me { id } }' }, post))).toBe(
      'OPERATION_NOT_IN_SAFELIST',
    );
    expect(codeOf(await ops.resolve({ query: 'mutation { __typename }' }, post))).toBe(
      'OPERATION_NOT_IN_SAFELIST',
    );
  });

  it('refuses to be built as a safelist without a manifest', () => {
    const store = new MemoryPersistedQueryStore({ ttlSeconds: 60 });
    expect(
      () => new PersistedOperations({ mode: 'safelist', store, prepare, parse: (q) => parse(q) }),
    ).toThrow(/GRAPHQL_OPERATIONS=safelist needs GRAPHQL_OPERATION_MANIFEST/);
  });
});
