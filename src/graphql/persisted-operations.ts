import {
  GraphQLError,
  Kind,
  OperationTypeNode,
  type DocumentNode,
  type FragmentDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import type { Principal } from '../modules/kernel';
import type { Counter } from 'prom-client';
import type { Metrics } from '../platform/metrics/metrics';
import { documentHash, type OperationManifest } from './operation-manifest';
import type { PersistedQueryStore } from './persisted-query.store';

/**
 * Which documents may run (GRAPHQL_OPERATIONS):
 * - `any`: every valid document, and APQ (a hash registers with its document and then runs alone).
 * - `persisted`: only documents known by hash: manifest entries and APQ registrations. A document sent with its hash
 *   registers (authenticated callers) and runs; a document sent without a hash runs only when its hash is already
 *   known, else PERSISTED_QUERY_REQUIRED.
 * - `safelist`: only the manifest's operations, sent by id (hash) or in full (whose hash is an entry's id); anything
 *   else is OPERATION_NOT_IN_SAFELIST and nothing registers.
 * In every mode a document whose operations select only `__schema`/`__type`/`__typename` (Sandbox, codegen) is not
 * held to the list: GRAPHQL_INTROSPECTION decides it, as before.
 */
export const OperationsMode = { any: 'any', persisted: 'persisted', safelist: 'safelist' } as const;
export type OperationsMode = (typeof OperationsMode)[keyof typeof OperationsMode];

export const PersistedOperationErrorCode = {
  /** Apollo's code and message: clients resend the operation with its document. */
  PERSISTED_QUERY_NOT_FOUND: 'PERSISTED_QUERY_NOT_FOUND',
  /** The document sent with a hash is not the one the hash names (Apollo: "provided sha does not match query"). */
  PERSISTED_QUERY_HASH_MISMATCH: 'PERSISTED_QUERY_HASH_MISMATCH',
  /** `extensions.persistedQuery` is not `{ version: 1, sha256Hash: <64 hex> }`. */
  PERSISTED_QUERY_INVALID: 'PERSISTED_QUERY_INVALID',
  /** `persisted` mode: a document that is not registered, sent without its hash. */
  PERSISTED_QUERY_REQUIRED: 'PERSISTED_QUERY_REQUIRED',
  /** `safelist` mode: the operation is not in the manifest. */
  OPERATION_NOT_IN_SAFELIST: 'OPERATION_NOT_IN_SAFELIST',
  /** A mutation sent over GET (it must not be cached or replayed by a CDN). */
  MUTATION_OVER_GET: 'MUTATION_OVER_GET',
} as const;
export type PersistedOperationErrorCode =
  (typeof PersistedOperationErrorCode)[keyof typeof PersistedOperationErrorCode];

/** Apollo's headers on PERSISTED_QUERY_NOT_FOUND: a CDN must not cache the miss (the next request registers it). */
export const NOT_FOUND_CACHE_CONTROL = 'private, no-cache, must-revalidate';
/**
 * On every GET answer: each is one user's view (record sharing), so no shared cache may keep it; a browser may, and
 * must revalidate. `Vary: Authorization` for caches that key on it anyway.
 */
export const GET_RESPONSE_HEADERS = { 'cache-control': 'private, no-cache', vary: 'Authorization' } as const;

export type PersistedQueryOutcome =
  'hit' | 'registered' | 'not_found' | 'hash_mismatch' | 'refused' | 'invalid' | 'store_error';

/** `crm_persisted_queries_total{outcome}` (declared once per registry; the store reports `store_error` into it). */
export function persistedQueriesCounter(metrics: Metrics): Counter<'outcome'> {
  return metrics.declare({
    type: 'counter',
    name: 'crm_persisted_queries_total',
    help: 'Persisted-operation lookups and checks by outcome: hit, registered, not_found, hash_mismatch, refused, invalid, store_error',
    labelNames: ['outcome'],
  }) as Counter<'outcome'>;
}

/** The request fields APQ reads, as every transport receives them. */
export interface OperationRequest {
  query?: unknown;
  extensions?: unknown;
}

export interface OperationCaller {
  principal: Principal | undefined;
  /** `GET` (HTTP GET), `POST` (HTTP POST) or `WS` (a graphql-ws subscribe message). */
  method: 'GET' | 'POST' | 'WS';
}

/**
 * What to run: `query` is the document (the one the hash named, or the request's own, without the extension). `unchanged`
 * when the request carried neither (the transport answers it as before, e.g. a body without any query).
 */
export type ResolvedOperation =
  { query: string; unchanged?: false } | { unchanged: true } | { error: GraphQLError };

export interface PersistedOperationsOptions {
  mode: OperationsMode;
  /** GRAPHQL_OPERATION_MANIFEST, loaded at boot; required by `safelist`. */
  manifest?: OperationManifest;
  store: PersistedQueryStore;
  metrics?: Metrics;
}

const SHA256_HEX = /^[0-9a-f]{64}$/i;

function coded(code: PersistedOperationErrorCode, message: string, status = 400, headers?: object) {
  return new GraphQLError(message, {
    extensions: { code, http: { status, ...(headers ? { headers } : {}) } },
  });
}

/**
 * Automatic persisted queries and the operation safelist, for every transport: turns a request's `query` and
 * `extensions.persistedQuery` into the document to run, or the coded refusal. Used by the operation core.
 */
export class PersistedOperations {
  private readonly outcomes?: Counter<'outcome'>;

  constructor(
    private readonly options: PersistedOperationsOptions & {
      /** The core's parse-and-validate: only documents that pass it are registered. */
      prepare(query: string): { document: DocumentNode } | { errors: readonly GraphQLError[] };
      /** The core's parser (nesting and token caps before graphql-js recurses); throws on a bad document. */
      parse(query: string): DocumentNode;
    },
  ) {
    if (options.mode === OperationsMode.safelist && !options.manifest)
      throw new Error('GRAPHQL_OPERATIONS=safelist needs GRAPHQL_OPERATION_MANIFEST');
    this.outcomes = options.metrics && persistedQueriesCounter(options.metrics);
  }

  get mode(): OperationsMode {
    return this.options.mode;
  }

  async resolve(request: OperationRequest, caller: OperationCaller): Promise<ResolvedOperation> {
    const query = typeof request.query === 'string' && request.query !== '' ? request.query : undefined;
    const persisted = readPersistedQuery(request.extensions);
    if (persisted && 'error' in persisted) {
      this.count('invalid');
      return persisted;
    }
    if (!persisted) {
      if (query === undefined) return { unchanged: true };
      return this.admitDocument(query);
    }
    const { hash } = persisted;
    if (query === undefined) return this.lookUp(hash);
    if (documentHash(query) !== hash) {
      this.count('hash_mismatch');
      return {
        error: coded(
          PersistedOperationErrorCode.PERSISTED_QUERY_HASH_MISMATCH,
          'extensions.persistedQuery.sha256Hash is not the SHA-256 of query',
        ),
      };
    }
    return this.register(hash, query, caller);
  }

  /** A document sent in full, without a hash. */
  private async admitDocument(query: string): Promise<ResolvedOperation> {
    const { mode, manifest, store } = this.options;
    if (mode === OperationsMode.any) return { query };
    const hash = documentHash(query);
    if (manifest?.get(hash) || this.isIntrospection(query)) return { query };
    if (mode === OperationsMode.persisted && (await store.get(hash)) === query) return { query };
    return { error: this.refusal() };
  }

  /** A hash without its document. */
  private async lookUp(hash: string): Promise<ResolvedOperation> {
    const { mode, manifest, store } = this.options;
    const query =
      manifest?.get(hash)?.body ?? (mode === OperationsMode.safelist ? undefined : await store.get(hash));
    if (query !== undefined) {
      this.count('hit');
      return { query };
    }
    if (mode === OperationsMode.safelist) return { error: this.refusal() };
    this.count('not_found');
    return {
      error: coded(PersistedOperationErrorCode.PERSISTED_QUERY_NOT_FOUND, 'PersistedQueryNotFound', 200, {
        'cache-control': NOT_FOUND_CACHE_CONTROL,
      }),
    };
  }

  /** A document with its (matching) hash: runs when the mode allows, registered when it validates. */
  private async register(hash: string, query: string, caller: OperationCaller): Promise<ResolvedOperation> {
    const { mode, manifest, store } = this.options;
    if (manifest?.get(hash)) return { query };
    if (mode === OperationsMode.safelist) {
      return this.isIntrospection(query) ? { query } : { error: this.refusal() };
    }
    // Anonymous callers do not fill the shared store; in `persisted` mode their unregistered documents do not run.
    if (!caller.principal) {
      if (mode === OperationsMode.any || this.isIntrospection(query)) return { query };
      return (await store.get(hash)) === query ? { query } : { error: this.refusal() };
    }
    const prepared = this.options.prepare(query);
    // An invalid document is not registered; the transport answers its errors as for any document.
    if ('errors' in prepared) return { query };
    if (caller.method === 'GET' && isMutation(prepared.document)) {
      return {
        error: coded(
          PersistedOperationErrorCode.MUTATION_OVER_GET,
          'A mutation can only be sent with POST (or over WebSocket)',
          405,
        ),
      };
    }
    await store.set(hash, query);
    this.count('registered');
    return { query };
  }

  private refusal(): GraphQLError {
    this.count('refused');
    return this.options.mode === OperationsMode.safelist
      ? coded(
          PersistedOperationErrorCode.OPERATION_NOT_IN_SAFELIST,
          'This operation is not in the operation safelist (GRAPHQL_OPERATION_MANIFEST)',
        )
      : coded(
          PersistedOperationErrorCode.PERSISTED_QUERY_REQUIRED,
          'Only persisted operations run here: send the document with extensions.persistedQuery to register it',
        );
  }

  /** Whether every operation of the document selects only introspection fields (its parse errors: not). */
  private isIntrospection(query: string): boolean {
    let document: DocumentNode;
    try {
      document = this.options.parse(query);
    } catch {
      return false;
    }
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const definition of document.definitions)
      if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
    const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
    return (
      operations.length > 0 &&
      operations.every(
        (operation) =>
          operation.operation === OperationTypeNode.QUERY &&
          selectsOnlyIntrospection(operation.selectionSet, fragments, new Set()),
      )
    );
  }

  private count(outcome: PersistedQueryOutcome): void {
    this.outcomes?.inc({ outcome });
  }
}

function selectsOnlyIntrospection(
  selectionSet: SelectionSetNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  seen: Set<string>,
): boolean {
  return selectionSet.selections.every((selection) => {
    if (selection.kind === Kind.FIELD) return selection.name.value.startsWith('__');
    if (selection.kind === Kind.INLINE_FRAGMENT)
      return selectsOnlyIntrospection(selection.selectionSet, fragments, seen);
    const name = selection.name.value;
    const fragment = fragments.get(name);
    if (!fragment || seen.has(name)) return false;
    seen.add(name);
    return selectsOnlyIntrospection(fragment.selectionSet, fragments, seen);
  });
}

function isMutation(document: DocumentNode): boolean {
  return document.definitions.some(
    (definition) =>
      definition.kind === Kind.OPERATION_DEFINITION && definition.operation === OperationTypeNode.MUTATION,
  );
}

/** `extensions.persistedQuery`: absent, a well-formed `{ version: 1, sha256Hash }`, or the coded refusal. */
function readPersistedQuery(extensions: unknown): { hash: string } | { error: GraphQLError } | undefined {
  if (typeof extensions !== 'object' || extensions === null) return undefined;
  const persisted = (extensions as { persistedQuery?: unknown }).persistedQuery;
  if (persisted === undefined || persisted === null) return undefined;
  const invalid = (rule: string) => ({
    error: coded(PersistedOperationErrorCode.PERSISTED_QUERY_INVALID, `extensions.persistedQuery.${rule}`),
  });
  if (typeof persisted !== 'object') return invalid('must be an object { version, sha256Hash }');
  const { version, sha256Hash } = persisted as Record<string, unknown>;
  if (version !== 1) return invalid('version must be 1 (the only APQ protocol version)');
  if (typeof sha256Hash !== 'string' || !SHA256_HEX.test(sha256Hash))
    return invalid('sha256Hash must be a SHA-256 in hex (64 characters)');
  return { hash: sha256Hash.toLowerCase() };
}
