import type { Server as HttpServer } from 'node:http';
import {
  GraphQLError,
  parse,
  specifiedRules,
  validate,
  type ExecutionArgs,
  type GraphQLSchema,
} from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { checkVariableLimits, createLimitRules, type OperationLimits } from '../graphql/limits';
import { formatError, gatewayError } from '../graphql/errors';
import type { ContextFactory } from '../graphql/context';
import { AuthFailure, type Principal } from '../modules/identity';
import { ErrorCode } from '../platform/errors/app-error';
import type { Logger } from '../platform/logging/logger';

export interface GraphQLWsOptions {
  httpServer: HttpServer;
  /** Same path as HTTP GraphQL. */
  path: string;
  schema: GraphQLSchema;
  contexts: ContextFactory;
  limits: OperationLimits;
  logger: Logger;
}

/**
 * graphql-ws on the HTTP server's port. graphql-ws runs no Apollo plugins, so the same limit rules and error
 * formatting are applied here explicitly. A connection without a valid token is refused (4403).
 */
export function startGraphQLWs(options: GraphQLWsOptions): {
  close: () => Promise<void>;
  connections: () => number;
} {
  const wsServer = new WebSocketServer({ server: options.httpServer, path: options.path });
  const principals = new WeakMap<object, Principal>();
  const limitRules = createLimitRules(options.limits);
  const rules = [...specifiedRules, ...limitRules];

  const disposable = useServer(
    {
      schema: options.schema,
      onConnect: async (ctx) => {
        const authorization = ctx.connectionParams?.authorization;
        try {
          const principal = await options.contexts.authenticate(
            typeof authorization === 'string' ? authorization : undefined,
          );
          if (!principal) return false;
          principals.set(ctx.extra, principal);
          return true;
        } catch (error) {
          options.logger.debug({ err: (error as Error).message }, 'websocket connection refused');
          return false;
        }
      },
      context: (ctx) => options.contexts.create(principals.get(ctx.extra)),
      onSubscribe: (ctx, _id, payload) => {
        const principal = principals.get(ctx.extra);
        if (!principal || principal.tokenExpiresAt * 1000 <= Date.now()) {
          return [gatewayError(ErrorCode.UNAUTHENTICATED, AuthFailure.EXPIRED_TOKEN, 401)];
        }
        let document;
        try {
          document = parse(payload.query);
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
        const args: ExecutionArgs = {
          schema: options.schema,
          document,
          variableValues: payload.variables,
          operationName: payload.operationName,
        };
        return args;
      },
      onError: (_ctx, _id, _payload, errors) =>
        errors.map((error) => formatError(error.toJSON(), error, options.logger)),
      onNext: (_ctx, _id, _payload, _args, result) => {
        if (!result.errors?.length) return;
        return {
          ...result,
          errors: result.errors.map((error) => formatError(error.toJSON(), error, options.logger)),
        };
      },
    },
    wsServer,
  );

  return {
    connections: () => wsServer.clients.size,
    close: async () => {
      await disposable.dispose();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    },
  };
}
