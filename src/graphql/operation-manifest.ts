import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Kind, parse } from 'graphql';

/** The operation types a manifest entry may declare (Apollo's `type`). */
const OPERATION_TYPES = ['query', 'mutation', 'subscription'] as const;
export type ManifestOperationType = (typeof OPERATION_TYPES)[number];

export interface ManifestOperation {
  /** SHA-256 of `body`, lower-case hex: the hash clients send as `extensions.persistedQuery.sha256Hash`. */
  id: string;
  name: string;
  type: ManifestOperationType;
  body: string;
}

/** The format `@apollo/generate-persisted-query-manifest` writes. */
export const MANIFEST_FORMAT = 'apollo-persisted-query-manifest';

/** SHA-256 of a document's text, lower-case hex (the APQ hash and a manifest entry's id). */
export function documentHash(query: string): string {
  return createHash('sha256').update(query).digest('hex');
}

/** The operations a deployment allows, by id (the SHA-256 of their body). */
export class OperationManifest {
  private readonly byId: ReadonlyMap<string, ManifestOperation>;

  constructor(
    /** Where it was read from, for logs. */
    readonly source: string,
    operations: readonly ManifestOperation[],
  ) {
    this.byId = new Map(operations.map((operation) => [operation.id, operation]));
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: string): ManifestOperation | undefined {
    return this.byId.get(id);
  }
}

export class ManifestError extends Error {
  constructor(file: string, problem: string) {
    super(`GRAPHQL_OPERATION_MANIFEST ${file}: ${problem}`);
    this.name = 'ManifestError';
  }
}

/**
 * Reads and checks a persisted-query manifest: `{"format":"apollo-persisted-query-manifest","version":1,
 * "operations":[{"id","name","type","body"}]}`. Every entry must have an id that is the SHA-256 of its body, a body
 * that parses to exactly one operation of the declared type, and a name; the first that does not fails the boot,
 * named by its index, id and name. (Bodies are not validated against the schema here: a stale entry answers the usual
 * validation error when it is run.)
 */
export function loadOperationManifest(file: string): OperationManifest {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ManifestError(file, `cannot be read (${(error as Error).message})`);
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new ManifestError(file, `is not valid JSON (${(error as Error).message})`);
  }
  const { format, version, operations } = (manifest ?? {}) as Record<string, unknown>;
  if (format !== MANIFEST_FORMAT) throw new ManifestError(file, `format must be "${MANIFEST_FORMAT}"`);
  if (version !== 1) throw new ManifestError(file, 'version must be 1');
  if (!Array.isArray(operations)) throw new ManifestError(file, 'operations must be an array');
  return new OperationManifest(
    file,
    operations.map((entry, index) => checkEntry(file, entry, index)),
  );
}

function checkEntry(file: string, entry: unknown, index: number): ManifestOperation {
  const { id, name, type, body } = (entry ?? {}) as Record<string, unknown>;
  const label = `operations[${index}]${typeof id === 'string' ? ` (id ${id}` : ' ('}${
    typeof name === 'string' ? `, name "${name}")` : ')'
  }`;
  const fail = (rule: string) => new ManifestError(file, `${label}: ${rule}`);
  if (typeof body !== 'string' || body.length === 0) throw fail('body must be a non-empty string');
  if (typeof id !== 'string' || !/^[0-9a-f]{64}$/.test(id))
    throw fail('id must be the SHA-256 of body in lower-case hex');
  if (id !== documentHash(body)) throw fail(`id is not the SHA-256 of body (that is ${documentHash(body)})`);
  if (typeof name !== 'string' || name.length === 0) throw fail('name must be a non-empty string');
  if (!OPERATION_TYPES.includes(type as ManifestOperationType))
    throw fail(`type must be one of ${OPERATION_TYPES.join(', ')}`);
  let operationTypes: string[];
  try {
    operationTypes = parse(body, { noLocation: true })
      .definitions.filter((definition) => definition.kind === Kind.OPERATION_DEFINITION)
      .map((definition) => definition.operation);
  } catch (error) {
    throw fail(`body does not parse (${(error as Error).message})`);
  }
  if (operationTypes.length !== 1) throw fail('body must hold exactly one operation');
  if (operationTypes[0] !== type) throw fail(`type is "${String(type)}" but body is a ${operationTypes[0]}`);
  return { id, name, type: type as ManifestOperationType, body };
}
