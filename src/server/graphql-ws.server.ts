import type { Server as HttpServer } from 'node:http';
import {
  execute,
  getOperationAST,
  OperationTypeNode,
  subscribe,
  type ExecutionArgs,
  type GraphQLError,
  type OperationDefinitionNode,
} from 'graphql';
import type { Maybe } from 'graphql/jsutils/Maybe';
import type { SubscribePayload } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { gatewayError } from '../graphql/errors';
import type { OperationCore } from '../graphql/operation';
import type { OperationMetrics } from '../graphql/operation-metrics';
import { AuthFailure, type RequestContext } from '../modules/kernel';
import { ErrorCode } from '../platform/errors/app-error';
import type { Logger } from '../platform/logging/logger';
import type { OpenSpan } from '../platform/tracing';

export interface GraphQLWsOptions {
  httpServer: HttpServer;
  /** Same path as HTTP GraphQL. */
  path: string;
  core: OperationCore;
  logger: Logger;
  /** Counts open subscriptions. */
  operationMetrics: OperationMetrics;
  /** Largest message accepted, in bytes (the HTTP body limit). */
  maxPayloadBytes: number;
  /** An unauthenticated socket that sends no `connection_init` within this time is closed. Default 3000 ms. */
  connectionInitWaitTimeoutMs?: number;
}

interface RunningOperation {
  /** Ends the operation's timing (core.startOperation). */
  finish: () => void;
  subscription: boolean;
}

/** RFC 6455 "Try Again Later": the server cannot serve the connection now. */
const CLOSE_TRY_AGAIN_LATER = 1013;
/** On shutdown: how long running WebSocket queries and mutations may take to answer. */
const OPERATION_DRAIN_MS = 3000;
/** On shutdown: how long a peer has to answer the close frame before its socket is terminated. */
const CLOSE_GRACE_MS = 1000;

/**
 * graphql-ws on the HTTP server's port: an adapter over the operation core (graphql-ws runs no Apollo plugins). A
 * connection without a valid token is refused (4403); every operation is authenticated again.
 */
export function startGraphQLWs(options: GraphQLWsOptions): {
  close: () => Promise<void>;
  connections: () => number;
} {
  const wsServer = new WebSocketServer({
    server: options.httpServer,
    path: options.path,
    // ws buffers a whole message before anyone sees it: cap it as the HTTP body is capped (default is 100 MiB).
    maxPayload: options.maxPayloadBytes,
  });
  /** The Authorization value each connection was accepted with; it is checked again for every operation. */
  const authorizations = new WeakMap<object, string>();
  const { core } = options;
  /** Every running operation, for the drain; by connection and id, for its end (ids are unique per socket only). */
  const running = new Set<RunningOperation>();
  const runningOf = new WeakMap<object, Map<string, RunningOperation>>();
  /** Each operation's span, by its context: graphql-ws's execute and subscribe see only the arguments. */
  const spans = new WeakMap<object, OpenSpan>();
  /** Per connection (operation ids are the client's, unique within its socket only). */
  const opened = new WeakMap<object, Map<string, OpenSpan>>();
  const endSpan = (socketContext: object, id: string) => {
    opened.get(socketContext)?.get(id)?.end();
    opened.get(socketContext)?.delete(id);
  };
  const finish = (socketContext: object, id: string) => {
    const operation = runningOf.get(socketContext)?.get(id);
    if (!operation) return;
    runningOf.get(socketContext)!.delete(id);
    running.delete(operation);
    operation.finish();
    if (operation.subscription) options.operationMetrics.subscriptionClosed();
  };
  const inSpanOf =
    (run: typeof execute) =>
    (args: ExecutionArgs): ReturnType<typeof execute> => {
      const span = spans.get(args.contextValue as object);
      return span ? span.run(() => run(args)) : run(args);
    };
  const format = (error: GraphQLError) => core.formatError(error.toJSON(), error);

  const disposable = useServer(
    {
      schema: core.schema,
      connectionInitWaitTimeout: options.connectionInitWaitTimeoutMs ?? 3000,
      execute: inSpanOf(execute),
      subscribe: inSpanOf(subscribe as typeof execute),
      onConnect: async (ctx) => {
        const authorization = ctx.connectionParams?.authorization;
        const caller = await core.authenticate(typeof authorization === 'string' ? authorization : undefined);
        if ('error' in caller) {
          if (caller.error.extensions.code === ErrorCode.SERVICE_UNAVAILABLE) {
            // Not the client's fault: "try again later" rather than 4403, which clients read as a bad login.
            ctx.extra.socket.close(CLOSE_TRY_AGAIN_LATER, 'Service unavailable; retry shortly');
            return false;
          }
          options.logger.debug({ err: caller.error.message }, 'websocket connection refused');
          return false;
        }
        if (!caller.principal) return false;
        authorizations.set(ctx.extra, authorization as string);
        return true;
      },
      onSubscribe: async (ctx, id, payload) => {
        const span = core.openOperationSpan();
        if (!opened.has(ctx)) opened.set(ctx, new Map());
        opened.get(ctx)!.set(id, span);
        return span.run(async () => {
          const prepared = await prepareOperation(core, authorizations.get(ctx.extra), payload);
          if ('errors' in prepared) return [...prepared.errors];
          const { operation, args } = prepared;
          const subscription = operation?.operation === OperationTypeNode.SUBSCRIPTION;
          core.beginExecution(operation?.operation, (args.contextValue as RequestContext).principal);
          const started: RunningOperation = {
            finish: core.startOperation(
              operation?.operation ?? 'invalid',
              operation?.name?.value ?? payload.operationName,
            ),
            subscription,
          };
          running.add(started);
          if (!runningOf.has(ctx)) runningOf.set(ctx, new Map());
          runningOf.get(ctx)!.set(id, started);
          if (subscription) options.operationMetrics.subscriptionOpened();
          spans.set(args.contextValue as object, span);
          return args;
        });
      },
      onError: (ctx, id, _payload, errors) => {
        finish(ctx, id);
        endSpan(ctx, id);
        return errors.map(format);
      },
      onNext: async (_ctx, _id, _payload, args, result) => {
        await core.settleExecution(
          getOperationAST(args.document, args.operationName)?.operation,
          (args.contextValue as RequestContext).principal,
        );
        if (!result.errors?.length) return;
        return { ...result, errors: result.errors.map(format) };
      },
      onComplete: (ctx, id) => {
        finish(ctx, id);
        endSpan(ctx, id);
      },
    },
    wsServer,
  );

  return {
    connections: () => wsServer.clients.size,
    close: () => closeGracefully(wsServer, disposable, running),
  };
}

/**
 * One operation through the core: the connection's token checked again (an expired token, or a user removed or
 * changed since connecting, is seen at once, as on HTTP), the persisted-operation hash and the safelist, the document
 * parsed and validated, the variable limits, the rate limits; the errors to answer, or what graphql-ws executes.
 */
async function prepareOperation(
  core: OperationCore,
  authorization: string | undefined,
  payload: SubscribePayload,
): Promise<
  { errors: readonly GraphQLError[] } | { operation: Maybe<OperationDefinitionNode>; args: ExecutionArgs }
> {
  const caller = await core.authenticate(authorization);
  if ('error' in caller) return { errors: [caller.error] };
  const { principal } = caller;
  if (!principal)
    return { errors: [gatewayError(ErrorCode.UNAUTHENTICATED, AuthFailure.MISSING_TOKEN, 401)] };
  // graphql-ws requires a string `query`: an empty one with `extensions.persistedQuery` names the document by hash.
  const resolved = await core.resolveOperation(payload, { principal, method: 'WS' });
  if ('error' in resolved) return { errors: [resolved.error] };
  const prepared = core.prepare(resolved.unchanged ? payload.query : resolved.query);
  if ('errors' in prepared) return prepared;
  const { document } = prepared;
  const { errors: limitErrors, complexity } = core.assess(document, payload.variables, payload.operationName);
  if (limitErrors.length > 0) return { errors: limitErrors };
  // Counted here, once per operation: a subscription counts at its start, not per event.
  const refused = await core.rateLimit(principal, complexity);
  if (refused) return { errors: [refused] };
  return {
    operation: getOperationAST(document, payload.operationName),
    args: {
      schema: core.schema,
      document,
      variableValues: payload.variables,
      operationName: payload.operationName,
      contextValue: core.context(principal),
    },
  };
}

/** Running queries and mutations answer first (subscriptions run until closed), then every socket is closed. */
async function closeGracefully(
  wsServer: WebSocketServer,
  disposable: { dispose: () => void | Promise<void> },
  running: ReadonlySet<RunningOperation>,
): Promise<void> {
  const deadline = Date.now() + OPERATION_DRAIN_MS;
  while ([...running].some((op) => !op.subscription) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // A peer that never answers the close frame would hold ws for its 30 s close timeout.
  const terminate = setTimeout(
    () => wsServer.clients.forEach((client) => client.terminate()),
    CLOSE_GRACE_MS,
  );
  try {
    await disposable.dispose();
    await new Promise<void>((resolve) => wsServer.close(() => resolve()));
  } finally {
    clearTimeout(terminate);
  }
}
