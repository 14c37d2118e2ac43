import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as generated from '../../examples/generated/graphql';

const ROOT = resolve(__dirname, '../..');
const GENERATED = resolve(ROOT, 'examples/generated');
const TSC = resolve(ROOT, 'node_modules/typescript/bin/tsc');

interface Manifest {
  format: string;
  version: number;
  operations: Array<{ id: string; name: string; type: string; body: string }>;
}

function codegen(...args: string[]): ReturnType<typeof spawnSync> {
  return spawnSync(process.execPath, [resolve(ROOT, 'scripts/codegen.js'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
  });
}

describe('the typed client and the persisted-operation manifest (npm run codegen)', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'crm-codegen-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('examples/generated/ is exactly what codegen writes from the schema and examples/operations now', () => {
    const out = join(scratch, 'fresh');
    const run = codegen('--out', out);
    expect(run.stderr).toContain('[codegen] wrote');
    expect(run.status).toBe(0);
    const files = readdirSync(out).sort();
    expect(readdirSync(GENERATED).sort()).toEqual(files);
    expect(files).toEqual(['gql.ts', 'graphql.ts', 'index.ts', 'persisted-query-manifest.json']);
    for (const file of files) {
      // A mismatch here: run `npm run codegen` and commit examples/generated/.
      expect({ file, text: readFileSync(join(GENERATED, file), 'utf8') }).toEqual({
        file,
        text: readFileSync(join(out, file), 'utf8'),
      });
    }
  });

  it("writes Apollo's manifest format: every operation named once, id = sha256 of its body", () => {
    const manifest = JSON.parse(
      readFileSync(join(GENERATED, 'persisted-query-manifest.json'), 'utf8'),
    ) as Manifest;
    expect(manifest.format).toBe('apollo-persisted-query-manifest');
    expect(manifest.version).toBe(1);
    for (const operation of manifest.operations) {
      expect(operation.id).toBe(createHash('sha256').update(operation.body).digest('hex'));
      expect(operation.body).toMatch(new RegExp(`\\b${operation.type} ${operation.name}\\b`));
    }
    const names = manifest.operations.map((operation) => operation.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(
      expect.arrayContaining([
        'RecordSearch',
        'LeadSearch',
        'PipelineByStageAndMonth',
        'StartExport',
        'ExportProgress',
        'ExportJob',
        'SimilarRecords',
        'LeadById',
        'DealById',
        'Viewer',
      ]),
    );
    expect(manifest.operations.find((operation) => operation.name === 'ExportProgress')?.type).toBe(
      'subscription',
    );
    // The generated documents carry the manifest's ids: the client sends the body listed under its own hash.
    const documents = Object.entries(generated).filter(([name]) => name.endsWith('Document'));
    expect(documents.length).toBe(manifest.operations.length);
    const ids = new Set(manifest.operations.map((operation) => operation.id));
    for (const [name, document] of documents) {
      const hash = (document as { __meta__?: { hash?: string } }).__meta__?.hash ?? '';
      expect({ name, listed: ids.has(hash.replace(/^sha256:/, '')) }).toEqual({ name, listed: true });
    }
  });

  it('refuses an operation that does not match the schema, naming the field, and writes nothing', () => {
    const documents = join(scratch, 'bad');
    mkdirSync(documents, { recursive: true });
    writeFileSync(
      join(documents, 'bad.graphql'),
      'query BadLead($id: ID!) { lead(id: $id) { id nickname } }\n',
    );
    const out = join(scratch, 'bad-out');
    const run = codegen('--out', out, '--documents', join(documents, '*.graphql'));
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('Cannot query field "nickname" on type "Lead"');
    expect(existsSync(out)).toBe(false);
  });

  it('the console typechecks against the generated types (tsc -p tsconfig.web.json)', () => {
    const run = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.web.json'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('and tsc fails on console code reading a field its operation does not select', () => {
    mkdirSync(join(ROOT, 'examples/console'), { recursive: true });
    const probe = join(ROOT, 'examples/console/__codegen-probe.ts');
    writeFileSync(
      probe,
      [
        "import type { LeadByIdQuery } from '../generated/graphql';",
        'export const email = (answer: LeadByIdQuery): string | null | undefined => answer.lead?.email;',
        // LeadById does not select the lead's updatedAt.
        'export const updated = (answer: LeadByIdQuery): string | undefined => answer.lead?.updatedAt;',
        '',
      ].join('\n'),
    );
    try {
      const run = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.web.json'], {
        cwd: ROOT,
        encoding: 'utf8',
      });
      expect(run.status).not.toBe(0);
      expect(run.stdout).toContain('__codegen-probe.ts(3,');
      expect(run.stdout).toContain("Property 'updatedAt' does not exist");
      expect(run.stdout).not.toContain('__codegen-probe.ts(2,');
    } finally {
      rmSync(probe, { force: true });
    }
  });
});
