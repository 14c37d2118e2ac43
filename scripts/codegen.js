'use strict';
/**
 * The typed client and the persisted-operation manifest, from one source: the operations in
 * examples/operations/*.graphql, checked against schema/schema.graphql by GraphQL Code Generator (client preset).
 *
 *   node scripts/codegen.js              writes examples/generated/ (npm run codegen)
 *   node scripts/codegen.js --out <dir>  writes the same files elsewhere (the staleness test compares them)
 *   node scripts/codegen.js --out <dir> --documents <glob>   other operations (the test's invalid one)
 *
 * examples/generated/persisted-query-manifest.json is in Apollo's format (what @apollo/generate-persisted-query-manifest
 * writes): `{ format, version, operations: [{ id, name, type, body }] }`, id = sha256 of body. The bodies are the
 * client preset's persisted documents (its normalised print, fragments included), and the generated documents carry
 * the same hash in `__meta__.hash`: a client that sends the manifest's body for that hash (examples/console does)
 * sends exactly what the manifest lists. Apollo's own generator is not used: it prints the documents again through
 * Apollo Client's transforms (adding __typename everywhere) and needs @apollo/client, so its bodies would not be the
 * ones this client sends.
 */
const { mkdirSync, rmSync, writeFileSync } = require('node:fs');
const { dirname, join, relative, resolve } = require('node:path');
const { generate } = require('@graphql-codegen/cli');
const { parse } = require('graphql');

const ROOT = resolve(__dirname, '..');
const MANIFEST = 'persisted-query-manifest.json';

/** The client preset's settings: string documents (no graphql-js needed in the browser), plain types, no masking. */
function codegenConfig(outDir, documents) {
  return {
    cwd: ROOT,
    schema: 'schema/schema.graphql',
    documents,
    silent: true,
    errorsOnly: true,
    generates: {
      [`${outDir}/`]: {
        preset: 'client',
        config: {
          documentMode: 'string',
          useTypeImports: true,
          enumsAsTypes: true,
          strictScalars: true,
          scalars: { DateTimeISO: 'string', JSON: 'unknown', JSONObject: 'Record<string, unknown>' },
        },
        presetConfig: { fragmentMasking: false, persistedDocuments: { hashAlgorithm: 'sha256' } },
      },
    },
  };
}

/** Apollo's manifest from the preset's `{ "sha256:<hex>": body }`, operations sorted by name. */
function apolloManifest(persisted) {
  const operations = Object.entries(persisted).map(([hash, body]) => {
    const operation = parse(body).definitions.find((d) => d.kind === 'OperationDefinition');
    if (!operation?.name) throw new Error(`every operation needs a name: ${body}`);
    return { id: hash.replace(/^sha256:/, ''), name: operation.name.value, type: operation.operation, body };
  });
  const names = new Set();
  for (const { name } of operations) {
    if (names.has(name)) throw new Error(`operation name ${name} is used twice`);
    names.add(name);
  }
  operations.sort((a, b) => (a.name < b.name ? -1 : 1));
  return { format: 'apollo-persisted-query-manifest', version: 1, operations };
}

/**
 * Generates into outDir (emptied first, default examples/generated) from the documents (globs, default
 * examples/operations/*.graphql); returns the files written, relative to outDir. Rejects, writing nothing, when an
 * operation does not validate against the schema.
 */
async function generateClient({
  outDir = resolve(ROOT, 'examples/generated'),
  documents = ['examples/operations/*.graphql'],
} = {}) {
  const files = await generate(codegenConfig(outDir, documents), false);
  rmSync(outDir, { recursive: true, force: true });
  const written = [];
  for (const file of files) {
    if (file.filename.endsWith('persisted-documents.json')) {
      const manifest = apolloManifest(JSON.parse(file.content));
      writeFileSync(join(outDir, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
      written.push(MANIFEST);
      continue;
    }
    mkdirSync(dirname(file.filename), { recursive: true });
    writeFileSync(file.filename, file.content);
    written.push(relative(outDir, file.filename));
  }
  return written.sort();
}

module.exports = { generateClient };

if (require.main === module) {
  const flag = (name) => {
    const at = process.argv.indexOf(name);
    return at > 0 ? process.argv[at + 1] : undefined;
  };
  const outDir = flag('--out') && resolve(flag('--out'));
  const documents = flag('--documents') && [flag('--documents')];
  generateClient({ outDir, documents }).then(
    (files) => process.stderr.write(`[codegen] wrote ${files.join(', ')}\n`),
    (error) => {
      process.stderr.write(`[codegen] ${error.message ?? error}\n`);
      process.exit(1);
    },
  );
}
