import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOperationManifest } from '../operation-manifest';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function manifestFile(content: unknown): string {
  const file = join(mkdtempSync(join(tmpdir(), 'crm-manifest-')), 'manifest.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

const manifest = (operations: unknown[], extra: Record<string, unknown> = {}) => ({
  format: 'apollo-persisted-query-manifest',
  version: 1,
  operations,
  ...extra,
});
const entry = (body: string, fields: Record<string, unknown> = {}) => ({
  id: sha256(body),
  name: 'Op',
  type: 'query',
  body,
  ...fields,
});

describe('loadOperationManifest', () => {
  it('reads the entries of a well-formed manifest by id', () => {
    const query = 'query Me { me { id } }';
    const mutation = 'mutation Drop($id: ID!) { deleteLead(id: $id) }';
    const loaded = loadOperationManifest(
      manifestFile(
        manifest([entry(query, { name: 'Me' }), entry(mutation, { name: 'Drop', type: 'mutation' })]),
      ),
    );
    expect(loaded.size).toBe(2);
    expect(loaded.get(sha256(mutation))).toEqual({
      id: sha256(mutation),
      name: 'Drop',
      type: 'mutation',
      body: mutation,
    });
    expect(loaded.get(sha256('query Me { me { email } }'))).toBeUndefined();
  });

  it.each([
    ['a missing file', undefined, /: cannot be read/],
    ['JSON that does not parse', '{"format":', /: is not valid JSON/],
    [
      'another format',
      manifest([], { format: 'relay' }),
      /: format must be "apollo-persisted-query-manifest"/,
    ],
    ['another version', manifest([], { version: 2 }), /: version must be 1/],
    ['operations that are not a list', manifest([], { operations: {} }), /: operations must be an array/],
    [
      'an id that is not the body’s SHA-256',
      manifest([entry('{ me { id } }'), entry('{ me { email } }', { id: sha256('x'), name: 'Bad' })]),
      new RegExp(`operations\\[1\\] \\(id ${sha256('x')}, name "Bad"\\): id is not the SHA-256 of body`),
    ],
    [
      'an unknown type',
      manifest([entry('{ me { id } }', { type: 'query2' })]),
      /operations\[0\].*type must be one of query, mutation, subscription/,
    ],
    [
      'a type the body contradicts',
      manifest([entry('{ me { id } }', { type: 'mutation' })]),
      /type is "mutation" but body is a query/,
    ],
    ['a body that does not parse', manifest([entry('{ me { id }')]), /operations\[0\].*body does not parse/],
    [
      'a body with two operations',
      manifest([entry('query A { me { id } } query B { me { id } }')]),
      /exactly one operation/,
    ],
    [
      'an entry without a name',
      manifest([entry('{ me { id } }', { name: '' })]),
      /name must be a non-empty string/,
    ],
  ])('refuses %s, naming the file and the entry', (_case, content, problem) => {
    const file = content === undefined ? join(tmpdir(), 'no-such-manifest.json') : manifestFile(content);
    expect(() => loadOperationManifest(file)).toThrow(`GRAPHQL_OPERATION_MANIFEST ${file}: `);
    expect(() => loadOperationManifest(file)).toThrow(problem);
  });
});
