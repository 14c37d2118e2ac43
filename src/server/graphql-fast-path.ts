import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  execute,
  getNamedType,
  getOperationAST,
  GraphQLError,
  isAbstractType,
  Kind,
  OperationTypeNode,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';
import { LRUCache } from 'lru-cache';
import type { OperationCore } from '../graphql/operation';
import type { Principal } from '../modules/kernel';
import type { Logger } from '../platform/logging/logger';
import type { Metrics } from '../platform/metrics/metrics';

export interface GraphQLFastPathOptions {
  core: OperationCore;
  logger: Logger;
  metrics: Metrics;
  bodyLimitBytes: number;
  /** Execute with graphql-jit (compiled per document and operation) instead of graphql-js. */
  compile: boolean;
  /** Gives each response its request id (the client's when well-formed), as the express app does. */
  requestId(req: IncomingMessage, res: ServerResponse): string;
  /** Answers what the fast path hands back: express and Apollo, with the body already read into `req.body`. */
  fallback(req: IncomingMessage & { body?: unknown }, res: ServerResponse): void;
}

/** Documents kept parsed and validated (by query text), bounded by their count and their total length. */
const DOCUMENT_CACHE_ENTRIES = 1_000;
const DOCUMENT_CACHE_CHARS = 4_000_000;
/** What a graphql-jit compilation is counted as against DOCUMENT_CACHE_CHARS (generated code and closures). */
const COMPILED_QUERY_CHARS = 50_000;
/** A document is compiled on its second use: one-off documents never pay (or make the server pay) for it. */
const COMPILE_AFTER_USES = 2;

interface ValidDocument {
  document: DocumentNode;
  uses: number;
  /** graphql-jit's compilation, per operation name (undefined: graphql-js executes it). */
  compiled: Map<string | null | undefined, CompiledQuery | undefined>;
  /** Operations that passed the variable limits (page sizes, complexity), of a document without variables: their complexity. */
  withinLimits: Map<string | null | undefined, number>;
}

type KnownDocument = ValidDocument | { invalid: true };

/** An operation the fast path runs: its caller, its document's text and cache entry, the operation in it. */
interface Admission {
  principal: Principal;
  query: string;
  entry: ValidDocument;
  operation: OperationDefinitionNode;
  /** RATE_LIMITED: the operation was counted and refused (answered here, 429 and its headers). */
  refused?: GraphQLError;
}

/** A refusal's response headers, which the core puts in `extensions.http` as Apollo reads them. */
function refusalHeaders(refusal: GraphQLError): Record<string, string> {
  const headers = (refusal.extensions as { http?: { headers?: Map<string, string> } }).http?.headers;
  return Object.fromEntries(headers ?? []);
}

interface GraphQLBody {
  /** Absent when the document is named by `extensions.persistedQuery` alone. */
  query?: string;
  variables?: Record<string, unknown> | null;
  operationName?: string | null;
  /** Only `persistedQuery` (APQ); a body with other extensions goes to Apollo. */
  extensions?: { persistedQuery: unknown };
}

function isGraphQLBody(body: unknown): body is GraphQLBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const { query, variables, operationName, extensions } = body as Record<string, unknown>;
  const persisted = isPersistedQueryOnly(extensions);
  return (
    (typeof query === 'string' || (query === undefined && persisted)) &&
    (extensions === undefined || persisted) &&
    (variables === undefined ||
      variables === null ||
      (typeof variables === 'object' && !Array.isArray(variables))) &&
    (operationName === undefined || operationName === null || typeof operationName === 'string')
  );
}

/** `{ persistedQuery: {...} }` and nothing else: APQ, which the core resolves; other extensions are Apollo's. */
function isPersistedQueryOnly(extensions: unknown): boolean {
  if (typeof extensions !== 'object' || extensions === null || Array.isArray(extensions)) return false;
  const keys = Object.keys(extensions);
  return keys.length === 1 && keys[0] === 'persistedQuery';
}

/**
 * Whether a field of the document returns a union or an interface whose `resolveType` is async (type-graphql's own
 * wrapper; the schema builder replaces it for unions): graphql-jit resolves abstract types only synchronously, so
 * such documents run on graphql-js.
 */
function selectsAsyncTypeResolver(schema: GraphQLSchema, document: DocumentNode): boolean {
  const typeInfo = new TypeInfo(schema);
  let found = false;
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field() {
        const type = typeInfo.getType();
        const named = type && getNamedType(type);
        if (named && isAbstractType(named) && named.resolveType?.constructor.name === 'AsyncFunction')
          found = true;
      },
    }),
  );
  return found;
}

/** The last `extensions.http.status` among execution errors (Apollo's rule for a response's status). */
function httpStatusOf(errors: readonly GraphQLError[]): number | undefined {
  let status: number | undefined;
  for (const error of errors) {
    const http = (error.extensions as { http?: { status?: unknown } } | undefined)?.http;
    if (typeof http?.status === 'number') status = http.status;
  }
  return status;
}

/** Whether any operation declares variables (then the limits' answer may change with the request's variables). */
function usesVariables(document: DocumentNode): boolean {
  return document.definitions.some(
    (definition) =>
      definition.kind === Kind.OPERATION_DEFINITION && (definition.variableDefinitions?.length ?? 0) > 0,
  );
}

/** `application/json`, with no charset or UTF-8: what the fast path reads itself (body-parser handles the rest). */
function isPlainJson(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const [type, ...parameters] = contentType
    .toLowerCase()
    .split(';')
    .map((part) => part.trim());
  return type === 'application/json' && parameters.every((p) => p === 'charset=utf-8' || p === '');
}

/**
 * Clients that take plain JSON and nothing Apollo would prefer: no Accept, or one naming application/json or a
 * wildcard, without graphql-response+json or multipart (Apollo negotiates those, and answers 406 to the rest).
 */
function acceptsPlainJson(accept: string | undefined): boolean {
  if (!accept) return true;
  return (
    /application\/json|application\/\*|\*\/\*/i.test(accept) && !/graphql-response|multipart/i.test(accept)
  );
}

/**
 * POST /graphql for documents already parsed and validated: the same authentication, operation limits, execution,
 * error shape, whole-request status and metrics as the Apollo path, without its per-request pipeline (hashing the
 * document, plugin dispatch, express routing and body parsing). Everything else — GET, the landing page, batches,
 * persisted queries, other encodings, and any request that fails before execution — goes to Apollo unchanged.
 */
export function createGraphQLFastPath(options: GraphQLFastPathOptions) {
  const fastPath = new GraphQLFastPath(options);
  return (req: IncomingMessage & { body?: unknown }, res: ServerResponse): void => fastPath.handle(req, res);
}

type FastRequest = IncomingMessage & { body?: unknown };

/** The fast path's state (the document cache) and its steps: read the body, answer it, or hand it to Apollo. */
class GraphQLFastPath {
  private readonly core: OperationCore;
  private readonly documents = new LRUCache<string, KnownDocument>({
    max: DOCUMENT_CACHE_ENTRIES,
    maxSize: DOCUMENT_CACHE_CHARS,
    sizeCalculation: (entry, query) =>
      Math.max(1, query.length) + ('compiled' in entry ? entry.compiled.size * COMPILED_QUERY_CHARS : 0),
  });

  constructor(private readonly options: GraphQLFastPathOptions) {
    this.core = options.core;
  }

  handle(req: FastRequest, res: ServerResponse): void {
    const { options } = this;
    if (req.method !== 'POST' || req.url !== '/graphql') return options.fallback(req, res);
    const length = Number(req.headers['content-length']);
    if (
      !isPlainJson(req.headers['content-type']) ||
      req.headers['content-encoding'] !== undefined ||
      !(length > 0 && length <= options.bodyLimitBytes) ||
      !acceptsPlainJson(req.headers.accept)
    ) {
      return this.toApollo(req, res);
    }
    const stopHttpTimer = options.metrics.httpDuration.startTimer();
    readJsonBody(req, length, (body) => {
      if (body === undefined) {
        // Let body-parser's sibling in express answer it: re-read is impossible, so say what it would.
        return this.toApollo(Object.assign(req, { body, invalidJsonBody: true }), res);
      }
      req.body = body;
      if (!isGraphQLBody(body)) return this.toApollo(req, res);
      this.answer(req, res, body, stopHttpTimer).catch((error: unknown) => {
        options.logger.error({ err: error }, 'graphql fast path failed');
        if (!res.headersSent) {
          res.statusCode = 500;
          res.setHeader('content-type', 'application/json; charset=utf-8');
          res.end(
            JSON.stringify({
              errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }],
            }),
          );
        } else res.destroy();
      });
    });
    req.once('error', () => res.destroy());
  }

  private toApollo(req: FastRequest, res: ServerResponse): void {
    this.options.metrics.graphqlFastPath.inc({ outcome: 'apollo' });
    this.options.fallback(req, res);
  }

  private known(query: string): KnownDocument {
    let entry = this.documents.get(query);
    if (!entry) {
      const prepared = this.core.prepare(query);
      entry =
        'errors' in prepared
          ? { invalid: true }
          : { document: prepared.document, uses: 0, compiled: new Map(), withinLimits: new Map() };
      this.documents.set(query, entry);
    }
    return entry;
  }

  /** graphql-jit's executor for the operation, compiled once it is reused; graphql-js runs everything else. */
  private compiledOperation(query: string, entry: ValidDocument, operationName: string | null | undefined) {
    if (!this.options.compile || ++entry.uses < COMPILE_AFTER_USES) return undefined;
    if (!entry.compiled.has(operationName)) {
      let compiled: CompiledQuery | undefined;
      try {
        const result = selectsAsyncTypeResolver(this.core.schema, entry.document)
          ? undefined
          : compileQuery(this.core.schema, entry.document, operationName ?? undefined);
        compiled = result && isCompiledQuery(result) ? result : undefined;
      } catch (error) {
        this.options.logger.warn(
          { err: error },
          'graphql-jit could not compile a document; graphql-js runs it',
        );
      }
      entry.compiled.set(operationName, compiled);
      this.documents.set(query, entry); // counted again, with its compilation
    }
    return entry.compiled.get(operationName);
  }

  /** The operation of a known document the caller may run within the limits, or undefined: Apollo answers it. */
  private async admit(
    req: FastRequest,
    body: GraphQLBody,
  ): Promise<Admission | { refusal: GraphQLError } | undefined> {
    // As Apollo does, the caller first. Only authenticated callers reach the document cache and the compiler.
    const caller = await this.core.authenticate(req.headers.authorization);
    // Apollo answers an anonymous caller, and a refused token, with its own error and status.
    if ('error' in caller || !caller.principal) return undefined;
    // The hash's document (a hit skips parsing: the document cache is by text), or the refusal (an unknown hash, an
    // operation off the safelist), answered here as the core shapes it for Apollo's path too.
    const resolved = await this.core.resolveOperation(body, { principal: caller.principal, method: 'POST' });
    if ('error' in resolved) return { refusal: resolved.error };
    if (resolved.unchanged) return undefined;
    const { query } = resolved;
    const entry = this.known(query);
    if ('invalid' in entry) return undefined;
    const operation: OperationDefinitionNode | null | undefined = getOperationAST(
      entry.document,
      body.operationName,
    );
    if (!operation || operation.operation === OperationTypeNode.SUBSCRIPTION) return undefined;
    let complexity = entry.withinLimits.get(body.operationName);
    if (complexity === undefined) {
      const assessed = this.core.assess(entry.document, body.variables, body.operationName);
      if (assessed.errors.length > 0) return undefined;
      complexity = assessed.complexity;
      if (!usesVariables(entry.document)) entry.withinLimits.set(body.operationName, complexity);
    }
    // Answered here, not by Apollo: handing a refusal on would count the operation a second time.
    const limited = this.core.rateLimit(caller.principal, complexity);
    const refused = limited instanceof Promise ? await limited : limited;
    return { principal: caller.principal, query, entry, operation, refused };
  }

  private async answer(
    req: FastRequest,
    res: ServerResponse,
    body: GraphQLBody,
    stopHttpTimer: (labels: Record<string, string>) => void,
  ): Promise<void> {
    const { core } = this;
    return core.traced('fast-path', async () => {
      const admitted = await this.admit(req, body);
      if (admitted && 'refusal' in admitted) {
        this.options.requestId(req, res);
        const { status, headers, body: refusal } = core.refusalResponse(admitted.refusal);
        this.send(res, status, JSON.stringify(refusal), headers, stopHttpTimer);
        this.options.metrics.graphqlFastPath.inc({ outcome: 'answered' });
        return;
      }
      if (admitted) return this.respond(req, res, body, admitted, stopHttpTimer);
      // Apollo answers inside this operation's span (its own adapter opens none for a request handed over).
      this.toApollo(Object.assign(req, { [IN_OPERATION_SPAN]: true }), res);
      await answered(res);
    });
  }

  private async respond(
    req: FastRequest,
    res: ServerResponse,
    body: GraphQLBody,
    { principal, query, entry, operation, refused }: Admission,
    stopHttpTimer: (labels: Record<string, string>) => void,
  ): Promise<void> {
    const { core, options } = this;

    const requestId = options.requestId(req, res);
    const finishOperation = core.startOperation(operation.operation, operation.name?.value ?? null);
    if (refused) {
      const json = JSON.stringify({ errors: core.formatErrors([refused]) });
      this.send(res, 429, json, refusalHeaders(refused), stopHttpTimer);
      finishOperation();
      options.metrics.graphqlFastPath.inc({ outcome: 'answered' });
      return;
    }
    const contextValue = core.context(principal, requestId);
    const compiled = this.compiledOperation(query, entry, body.operationName);
    core.beginExecution(operation.operation, principal);
    const result = compiled
      ? await compiled.query(undefined, contextValue, body.variables ?? {})
      : await execute({
          schema: core.schema,
          document: entry.document,
          variableValues: body.variables,
          operationName: body.operationName,
          contextValue,
        });
    await core.settleExecution(operation.operation, principal);
    if (!('data' in result)) {
      // Variables that do not coerce: nothing ran. Apollo answers it (400, its wording); it times the operation.
      this.toApollo(Object.assign(req, { [IN_OPERATION_SPAN]: true }), res);
      return answered(res);
    }
    const errors = result.errors ? core.formatErrors(result.errors) : undefined;
    // As Apollo: an error's `extensions.http.status` sets the response's, then the whole-request status may.
    const status =
      (errors && core.wholeRequestStatus(result, errors, operation.operation)) ||
      (result.errors && httpStatusOf(result.errors)) ||
      200;
    const json = JSON.stringify({ errors, data: result.data, extensions: result.extensions });
    this.send(res, status, json, status === 503 ? { 'retry-after': '1' } : {}, stopHttpTimer);
    finishOperation();
    options.metrics.graphqlFastPath.inc({ outcome: 'answered' });
  }

  /** Answers JSON, counted and timed as express counts its own answers. */
  private send(
    res: ServerResponse,
    status: number,
    json: string,
    headers: Record<string, string>,
    stopHttpTimer: (labels: Record<string, string>) => void,
  ): void {
    res.statusCode = status;
    res.setHeader('content-type', 'application/json; charset=utf-8');
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    res.setHeader('content-length', Buffer.byteLength(json));
    res.once('finish', () => {
      const labels = { method: 'POST', route: '/graphql', status_class: `${Math.floor(status / 100)}xx` };
      stopHttpTimer(labels);
      this.options.metrics.httpRequests.inc(labels);
    });
    res.end(json);
  }
}

/** Marks a request handed to Apollo from inside the fast path's operation span. */
export const IN_OPERATION_SPAN = Symbol('in operation span');

/** Resolves once the response is sent or the connection is gone. */
function answered(res: ServerResponse): Promise<void> {
  if (res.writableEnded || res.destroyed) return Promise.resolve();
  return new Promise((resolve) => res.once('close', () => resolve()));
}

/**
 * Reads the whole body and parses it as body-parser's strict JSON would (a byte order mark dropped; only an object or
 * an array is a JSON body); `undefined` when it is not JSON or not the length the request declared.
 */
function readJsonBody(req: IncomingMessage, length: number, done: (body: unknown) => void): void {
  const chunks: Buffer[] = [];
  let received = 0;
  req.on('data', (chunk: Buffer) => {
    received += chunk.length;
    chunks.push(chunk);
  });
  req.once('end', () => {
    const text = Buffer.concat(chunks, received)
      .toString('utf8')
      .replace(/^\uFEFF/, '');
    let body: unknown;
    try {
      body = /^[\s]*[[{]/.test(text) ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    done(received === length ? body : undefined);
  });
}
