import type { Server as HttpServer } from 'node:http';
import {
  getOperationAST,
  OperationTypeNode,
  GraphQLError,
  specifiedRules,
  validate,
  type ExecutionArgs,
  type GraphQLSchema,
} from 'graphql';
import type { OperationMetrics } from '../graphql/operation-metrics';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import {
  checkVariableLimits,
  createValidationRules,
  parseDocument,
  type OperationLimits,
} from '../graphql/limits';
import { formatError, gatewayError } from '../graphql/errors';
import type { ContextFactory } from '../graphql/context';
import { AuthFailure, type Principal } from '../modules/kernel';
import { classifyDatabaseError } from '../platform/db/db-errors';
import { AppError, ErrorCode } from '../platform/errors/app-error';
import type { Logger } from '../platform/logging/logger';

export interface GraphQLWsOptions {
  httpServer: HttpServer;
  /** Same path as HTTP GraphQL. */
  path: string;
  schema: GraphQLSchema;
  contexts: ContextFactory;
  limits: OperationLimits;
  logger: Logger;
  operationMetrics: OperationMetrics;
  /** Introspection on: keep graphql-js's "Did you mean" hints; off: strip them. */
  introspection: boolean;
  /** Largest message accepted, in bytes (the HTTP body limit). */
  maxPayloadBytes: number;
  /** An unauthenticated socket that sends no `connection_init` within this time is closed. Default 3000 ms. */
  connectionInitWaitTimeoutMs?: number;
}

/** RFC 6455 "Try Again Later": the server cannot serve the connection now. */
const CLOSE_TRY_AGAIN_LATER = 1013;
/** On shutdown: how long running WebSocket queries and mutations may take to answer. */
const OPERATION_DRAIN_MS = 3000;
/** On shutdown: how long a peer has to answer the close frame before its socket is terminated. */
const CLOSE_GRACE_MS = 1000;

/**
 * graphql-ws on the HTTP server's port. graphql-ws runs no Apollo plugins, so the same limit rules and error
 * formatting are applied here explicitly. A connection without a valid token is refused (4403).
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
  const rules = [
    ...specifiedRules,
    ...createValidationRules(options.limits, { introspection: options.introspection }),
  ];
  const running = new Map<string, { finish: () => void; subscription: boolean }>();
  const finish = (id: string) => {
    const operation = running.get(id);
    if (!operation) return;
    running.delete(id);
    operation.finish();
    if (operation.subscription) options.operationMetrics.subscriptionClosed();
  };
  const format = (error: GraphQLError) =>
    formatError(error.toJSON(), error, options.logger, {
      hideSuggestions: !options.introspection,
      onCode: (code) => options.operationMetrics.error(code),
    });

  const disposable = useServer(
    {
      schema: options.schema,
      connectionInitWaitTimeout: options.connectionInitWaitTimeoutMs ?? 3000,
      onConnect: async (ctx) => {
        const authorization = ctx.connectionParams?.authorization;
        try {
          const principal = await options.contexts.authenticate(
            typeof authorization === 'string' ? authorization : undefined,
          );
          if (!principal) return false;
          authorizations.set(ctx.extra, authorization as string);
          return true;
        } catch (error) {
          if (
            !(error instanceof AppError) &&
            classifyDatabaseError(error)?.code === ErrorCode.SERVICE_UNAVAILABLE
          ) {
            // Not the client's fault: "try again later" rather than 4403, which clients read as a bad login.
            ctx.extra.socket.close(CLOSE_TRY_AGAIN_LATER, 'Service unavailable; retry shortly');
            return false;
          }
          options.logger.debug({ err: (error as Error).message }, 'websocket connection refused');
          return false;
        }
      },
      onSubscribe: async (ctx, id, payload) => {
        // Per operation, like HTTP: an expired token, or a user removed or changed since connecting, is seen at once.
        let principal: Principal | undefined;
        try {
          principal = await options.contexts.authenticate(authorizations.get(ctx.extra));
        } catch (error) {
          const unavailable = error instanceof AppError ? undefined : classifyDatabaseError(error);
          if (unavailable?.code === ErrorCode.SERVICE_UNAVAILABLE)
            return [gatewayError(ErrorCode.SERVICE_UNAVAILABLE, unavailable.message, 503)];
          if (error instanceof AppError) return [gatewayError(ErrorCode.UNAUTHENTICATED, error.message, 401)];
          options.logger.error({ err: error }, 'websocket authentication failed unexpectedly');
          return [gatewayError(ErrorCode.INTERNAL_SERVER_ERROR, 'Internal server error', 500)];
        }
        if (!principal) return [gatewayError(ErrorCode.UNAUTHENTICATED, AuthFailure.MISSING_TOKEN, 401)];
        let document;
        try {
          document = parseDocument(payload.query, options.limits);
        } catch (error) {
          return [error instanceof GraphQLError ? error : new GraphQLError(String(error))];
        }
        const validationErrors = validate(options.schema, document, rules);
        if (validationErrors.length > 0) return validationErrors;
        const limitErrors = checkVariableLimits({
          schema: options.schema,
          document,
          variables: payload.variables,
          operationName: payload.operationName,
          limits: options.limits,
        });
        if (limitErrors.length > 0) return limitErrors;
        const operation = getOperationAST(document, payload.operationName);
        const subscription = operation?.operation === OperationTypeNode.SUBSCRIPTION;
        running.set(id, {
          finish: options.operationMetrics.start(
            operation?.operation ?? 'invalid',
            operation?.name?.value ?? payload.operationName,
          ),
          subscription,
        });
        if (subscription) options.operationMetrics.subscriptionOpened();
        const args: ExecutionArgs = {
          schema: options.schema,
          document,
          variableValues: payload.variables,
          operationName: payload.operationName,
          contextValue: options.contexts.create(principal),
        };
        return args;
      },
      onError: (_ctx, id, _payload, errors) => {
        finish(id);
        return errors.map(format);
      },
      onNext: (_ctx, _id, _payload, _args, result) => {
        if (!result.errors?.length) return;
        return { ...result, errors: result.errors.map(format) };
      },
      onComplete: (_ctx, id) => finish(id),
    },
    wsServer,
  );

  return {
    connections: () => wsServer.clients.size,
    close: async () => {
      // Let running queries and mutations answer first (subscriptions run until closed: they do not hold this up).
      const deadline = Date.now() + OPERATION_DRAIN_MS;
      while ([...running.values()].some((op) => !op.subscription) && Date.now() < deadline) {
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
    },
  };
}
