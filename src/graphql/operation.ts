import {
  GraphQLError,
  OperationTypeNode,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type ParseOptions,
  type ValidationRule,
} from 'graphql';
import type { Principal, RequestContext } from '../modules/kernel';
import { classifyDatabaseError } from '../platform/db/db-errors';
import type { ReadRouting } from '../platform/db/read-routing';
import { AppError, ErrorCode } from '../platform/errors/app-error';
import type { Logger } from '../platform/logging/logger';
import { DISABLED_TRACER, type OpenSpan, type Tracer } from '../platform/tracing';
import type { ContextFactory } from './context';
import { formatError } from './errors';
import {
  assessOperation,
  createParseOptions,
  createValidationRules,
  documentNestingError,
  parseDocument,
  type OperationLimits,
} from './limits';
import type { OperationMetrics } from './operation-metrics';
import {
  OperationsMode,
  PersistedOperations,
  type OperationCaller,
  type OperationRequest,
  type PersistedOperationsOptions,
  type ResolvedOperation,
} from './persisted-operations';
import { MemoryPersistedQueryStore } from './persisted-query.store';
import { OPERATION_SPAN, OperationAttribute, traceRootResolvers } from './operation-tracing';
import { refusalOf, type RateLimitGate } from './rate-limits';

export interface OperationCoreOptions {
  schema: GraphQLSchema;
  contexts: ContextFactory;
  limits: OperationLimits;
  logger: Logger;
  operationMetrics: OperationMetrics;
  /** Introspection on: answer `__schema`/`__type` and keep graphql-js's "Did you mean" hints; off: neither. */
  introspection: boolean;
  /** Read replicas' routing: a mutation reads from the primary, and its caller's next reads see what it wrote. */
  reads?: ReadRouting;
  /** APQ and the safelist (persisted-operations.ts). Default: `any`, APQ registered in this process for a day. */
  persisted?: PersistedOperationsOptions;
  /** Spans for each operation and its root resolvers. Default off. */
  tracer?: Tracer;
  /** Per-tenant rate limits and cost quotas, counted once per operation (a subscription once, at its start). */
  rateLimits?: RateLimitGate;
}

/** A caller as the edge sees it: a principal (undefined when anonymous), or the coded error to answer instead. */
export type Authentication = { principal: Principal | undefined } | { error: GraphQLError };

const WHOLE_REQUEST_STATUS: Record<string, number> = {
  [ErrorCode.SERVICE_UNAVAILABLE]: 503,
  [ErrorCode.UNAUTHENTICATED]: 401,
};

/**
 * The steps every GraphQL operation takes at the edge, whichever transport carries it: authenticate -> parse and
 * validate with the one rule set (limits and the introspection policy) -> variable limits -> context -> execute ->
 * errors shaped and a status. Apollo's pipeline (through its plugin hooks), the HTTP fast path and graphql-ws are thin
 * adapters over it, so a rule added here holds on all three.
 */
export class OperationCore {
  /** The gateway's own validation rules, as Apollo takes them (it adds graphql-js's specified rules itself). */
  readonly gatewayRules: readonly ValidationRule[];
  /** graphql-js's specified rules and the gateway's: what the fast path and graphql-ws validate with. */
  readonly rules: readonly ValidationRule[];
  readonly parseOptions: ParseOptions;
  private readonly persisted: PersistedOperations;
  private readonly tracer: Tracer;

  constructor(private readonly options: OperationCoreOptions) {
    this.gatewayRules = createValidationRules(options.limits, { introspection: options.introspection });
    this.rules = [...specifiedRules, ...this.gatewayRules];
    this.parseOptions = createParseOptions(options.limits);
    this.persisted = new PersistedOperations({
      ...(options.persisted ?? {
        mode: OperationsMode.any,
        store: new MemoryPersistedQueryStore({ ttlSeconds: 86_400 }),
      }),
      prepare: (query) => this.prepare(query),
      parse: (query) => parseDocument(query, options.limits),
    });
    this.tracer = options.tracer ?? DISABLED_TRACER;
    if (this.tracer.enabled) traceRootResolvers(options.schema, this.tracer);
  }

  /**
   * Runs one HTTP operation's work (the request through Apollo, or the fast path's) inside the operation's span;
   * `startOperation` and `checkLimits` name and annotate it once the operation is known. `reuseActive`: the request
   * is in an operation's span already (one the fast path handed to Apollo): annotate that one.
   */
  traced<T>(
    transport: 'apollo' | 'fast-path',
    fn: () => Promise<T>,
    options: { reuseActive?: boolean } = {},
  ): Promise<T> {
    const attributes = { [OperationAttribute.transport]: transport };
    if (!options.reuseActive) return this.tracer.inSpan(OPERATION_SPAN, { attributes }, fn);
    this.tracer.annotateActive(attributes);
    return fn();
  }

  /** A WebSocket operation's span (a trace of its own): opened when it is subscribed, ended when it completes. */
  openOperationSpan(): OpenSpan {
    return this.tracer.startSpan(OPERATION_SPAN, {
      kind: 'server',
      attributes: { [OperationAttribute.transport]: 'graphql-ws' },
    });
  }

  get schema(): GraphQLSchema {
    return this.options.schema;
  }

  /**
   * The caller of an Authorization value. A token that cannot be accepted is the client's (its code, 401); a
   * database that cannot be reached while checking it is ours (SERVICE_UNAVAILABLE, 503: retry); anything else is
   * an internal error carrying its cause, which error formatting logs.
   */
  async authenticate(authorization: string | undefined | null): Promise<Authentication> {
    try {
      return { principal: await this.options.contexts.authenticate(authorization) };
    } catch (error) {
      const known = error instanceof AppError ? error : classifyDatabaseError(error);
      if (known)
        return {
          error: new GraphQLError(known.message, {
            extensions: { code: known.code, http: { status: known.httpStatus ?? 400 } },
          }),
        };
      // Masked for the client and logged in full once, where the error is formatted (it keeps the cause).
      return {
        error: new GraphQLError('Internal server error', {
          originalError: error instanceof Error ? error : new Error(String(error)),
          extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR, http: { status: 500 } },
        }),
      };
    }
  }

  /**
   * The document a request runs, after the caller is known: the one its `extensions.persistedQuery` hash names (APQ,
   * or the manifest), its own (checked against the safelist, registered with its hash), or the coded refusal.
   */
  resolveOperation(request: OperationRequest, caller: OperationCaller): Promise<ResolvedOperation> {
    return this.persisted.resolve(request, caller);
  }

  /**
   * A request refused before it ran (a persisted-operation refusal) as every HTTP transport answers it: the status and
   * headers of its `extensions.http`, and the error shaped and counted as any other.
   */
  refusalResponse(error: GraphQLError): {
    status: number;
    headers: Record<string, string>;
    body: { errors: GraphQLFormattedError[] };
  } {
    const { http, ...extensions } = error.extensions as {
      http?: { status?: number; headers?: Record<string, string> };
    };
    return {
      status: http?.status ?? 400,
      headers: http?.headers ?? {},
      body: { errors: [this.formatError({ message: error.message, extensions }, error)] },
    };
  }

  /** A document too deeply nested to parse safely (checked by a flat lexer pass before the parser recurses). */
  nestingError(query: string): GraphQLError | undefined {
    return documentNestingError(query, this.options.limits);
  }

  /** Parses (nesting and token caps first) and validates with the one rule set. */
  prepare(query: string): { document: DocumentNode } | { errors: readonly GraphQLError[] } {
    let document: DocumentNode;
    try {
      document = parseDocument(query, this.options.limits);
    } catch (error) {
      return { errors: [error instanceof GraphQLError ? error : new GraphQLError(String(error))] };
    }
    const errors = validate(this.options.schema, document, this.rules);
    return errors.length > 0 ? { errors } : { document };
  }

  /** The limits that depend on the request's variables: page sizes, input nesting and size, complexity. */
  checkLimits(
    document: DocumentNode,
    variables: Record<string, unknown> | null | undefined,
    operationName: string | null | undefined,
  ): GraphQLError[] {
    return this.assess(document, variables, operationName).errors;
  }

  /** `checkLimits`, and the operation's complexity (what the cost quotas count). */
  assess(
    document: DocumentNode,
    variables: Record<string, unknown> | null | undefined,
    operationName: string | null | undefined,
  ): { errors: GraphQLError[]; complexity: number } {
    return assessOperation({
      schema: this.options.schema,
      document,
      variables,
      operationName,
      limits: this.options.limits,
      onComplexity: this.tracer.enabled
        ? (complexity) => this.tracer.annotateActive({ [OperationAttribute.complexity]: complexity })
        : undefined,
    });
  }

  /**
   * Counts an operation that passed its limits against its caller's rate limits and cost quotas; the RATE_LIMITED
   * error to answer (HTTP 429 and its headers in `extensions.http`) when a quota is spent. Anonymous callers are not
   * counted: nothing but the sign-in answers them.
   */
  rateLimit(
    principal: Principal | undefined,
    complexity: number,
  ): GraphQLError | undefined | Promise<GraphQLError | undefined> {
    const gate = this.options.rateLimits;
    if (!principal || !gate?.enabled) return undefined;
    const admission = gate.admit(principal, complexity);
    if (admission instanceof Promise) return admission.then(refusalOf);
    return refusalOf(admission);
  }

  context(principal: Principal | undefined, requestId?: string): RequestContext {
    return this.options.contexts.create(principal, requestId);
  }

  /** Before executing: a mutation's own reads (what it checks, what it answers with) are the primary's. */
  beginExecution(operationType: OperationTypeNode | undefined, principal: Principal | undefined): void {
    if (operationType === OperationTypeNode.MUTATION && principal)
      this.options.reads?.pinToPrimary(principal);
  }

  /**
   * After executing, before answering: once a mutation has run, its caller's reads (in any process) go to a replica
   * only when it has replayed what the mutation committed.
   */
  async settleExecution(
    operationType: OperationTypeNode | undefined,
    principal: Principal | undefined,
  ): Promise<void> {
    if (operationType === OperationTypeNode.MUTATION && principal)
      await this.options.reads?.noteWrite(principal);
  }

  /** Starts timing an operation; call the returned function once it has been answered. */
  startOperation(operationType: string, operationName: string | null | undefined): () => void {
    this.tracer.annotateActive(
      { [OperationAttribute.type]: operationType, [OperationAttribute.name]: operationName ?? undefined },
      operationName ? `${operationType} ${operationName}` : operationType,
    );
    this.options.logger.debug({ operationType, operationName }, 'graphql operation');
    return this.options.operationMetrics.start(operationType, operationName);
  }

  /** Shapes one error for clients (Apollo's `formatError` signature), counting its code. */
  formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
    return formatError(formatted, error, this.options.logger, {
      hideSuggestions: !this.options.introspection,
      onCode: (code) => this.options.operationMetrics.error(code),
    });
  }

  /**
   * Shapes execution errors as Apollo does: a default code, and `extensions.http` kept for the response, not sent to
   * the client. (graphql-jit's errors, unlike graphql-js's, may have no extensions at all.)
   */
  formatErrors(errors: readonly GraphQLError[]): GraphQLFormattedError[] {
    return errors.map((error) => {
      const { http: _http, ...extensions } = (error.extensions ?? {}) as Record<string, unknown>;
      return this.formatError(
        {
          ...error.toJSON(),
          extensions: { ...extensions, code: extensions.code ?? 'INTERNAL_SERVER_ERROR' },
        },
        error,
      );
    });
  }

  /**
   * A request that could not run at all answers with the status its one cause implies, so clients and load
   * balancers react without parsing the body: 503 (retry) when a dependency is down, 401 when the caller is not (or
   * no longer) a user. Partial results keep 200.
   */
  wholeRequestStatus(
    result: Pick<ExecutionResult, 'data'>,
    errors: readonly GraphQLFormattedError[],
    operationType: OperationTypeNode | undefined,
  ): number | undefined {
    const code = errors[0]?.extensions?.code;
    let status = code === undefined ? undefined : WHOLE_REQUEST_STATUS[code as string];
    // A mutation may have committed before a later step failed: never invite a blind retry of it.
    if (status === 503 && operationType === OperationTypeNode.MUTATION) status = undefined;
    const nothingRan = !result.data || Object.values(result.data).every((value) => value === null);
    if (!status || !nothingRan || !errors.every((e) => e.extensions?.code === code)) return undefined;
    return status;
  }
}
