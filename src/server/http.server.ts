import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import { GraphQLError, OperationTypeNode, type GraphQLSchema } from 'graphql';
import type { ContextFactory } from '../graphql/context';
import { trackHttpConnections } from './http-drain';
import type { OperationMetrics } from '../graphql/operation-metrics';
import type { Metrics } from '../platform/metrics/metrics';
import { formatError } from '../graphql/errors';
import {
  checkVariableLimits,
  createLimitRules,
  createParseOptions,
  type OperationLimits,
} from '../graphql/limits';
import type { RequestContext } from '../modules/request-context';
import { classifyDatabaseError } from '../platform/db/db-errors';
import { AppError, ErrorCode } from '../platform/errors/app-error';
import type { Logger } from '../platform/logging/logger';

export interface HttpServerOptions {
  schema: GraphQLSchema;
  contexts: ContextFactory;
  limits: OperationLimits;
  logger: Logger;
  /** Serve schema introspection. */
  introspection: boolean;
  /** Serve the Apollo Sandbox landing page on GET /graphql. */
  landingPage: boolean;
  /** JSON body limit, e.g. `1mb`. */
  bodyLimit: string;
  /** `/readyz` probe: resolves true when every dependency answers. */
  readiness: () => Promise<Record<string, boolean>>;
  /** Extra cleanup run while Apollo drains (e.g. closing graphql-ws). */
  onDrain?: () => Promise<void>;
  /** Longest the HTTP drain waits for in-flight requests before cutting connections. */
  drainTimeoutMs: number;
  metrics: Metrics;
  operationMetrics: OperationMetrics;
}

export interface HttpGateway {
  httpServer: HttpServer;
  apollo: ApolloServer<RequestContext>;
}

const WHOLE_REQUEST_STATUS: Record<string, number> = {
  [ErrorCode.SERVICE_UNAVAILABLE]: 503,
  [ErrorCode.UNAUTHENTICATED]: 401,
};

const REQUEST_ID = /^[A-Za-z0-9._-]{1,100}$/;
/** Route label values: the routes this server defines; anything else is "unmatched" (bounded cardinality). */
const KNOWN_ROUTES = new Set(['/graphql', '/healthz', '/readyz']);

function jsonError(res: express.Response, status: number, code: string, message: string): void {
  res.status(status).json({ errors: [{ message, extensions: { code } }] });
}

/** express 5 + Apollo Server 5 on one HTTP server: /graphql, /healthz, /readyz; JSON errors only. */
export async function createHttpGateway(options: HttpServerOptions): Promise<HttpGateway> {
  const app = express();
  app.disable('x-powered-by');
  const httpServer = createServer(app);
  const connections = trackHttpConnections(httpServer);

  const limitsPlugin: ApolloServerPlugin<RequestContext> = {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, request, operationName, schema }) {
          const [first] = checkVariableLimits({
            schema,
            document,
            variables: request.variables,
            operationName,
            limits: options.limits,
          });
          if (first) throw first;
        },
      };
    },
  };
  const metricsPlugin: ApolloServerPlugin<RequestContext> = {
    async requestDidStart() {
      let finish: (() => void) | undefined;
      return {
        async didResolveOperation({ operation, operationName }) {
          finish = options.operationMetrics.start(operation?.operation ?? 'invalid', operationName);
        },
        async willSendResponse() {
          (finish ?? options.operationMetrics.start('invalid', null))();
        },
      };
    },
  };
  // A request that could not run at all answers with the status its one cause implies, so clients and load balancers
  // react without parsing the body: 503 (retry) when a dependency is down, 401 when the caller is not (or no longer)
  // a user. Partial results keep 200.
  const wholeRequestStatusPlugin: ApolloServerPlugin<RequestContext> = {
    async requestDidStart() {
      return {
        async willSendResponse({ response, operation }) {
          if (response.body.kind !== 'single') return;
          const { data, errors } = response.body.singleResult;
          const code = errors?.[0]?.extensions?.code;
          let status = code === undefined ? undefined : WHOLE_REQUEST_STATUS[code as string];
          // A mutation may have committed before a later step failed: never invite a blind retry of it.
          if (status === 503 && operation?.operation === OperationTypeNode.MUTATION) status = undefined;
          const nothingRan = !data || Object.values(data).every((value) => value === null);
          if (!status || !nothingRan || !errors!.every((e) => e.extensions?.code === code)) return;
          response.http.status = status;
          if (status === 503) response.http.headers.set('retry-after', '1');
        },
      };
    },
  };
  const drainPlugin: ApolloServerPlugin<RequestContext> = {
    async serverWillStart() {
      // Apollo serves requests normally while its servers drain; it stops only once this resolves.
      return {
        drainServer: async () => {
          await Promise.all([connections.drain(options.drainTimeoutMs), options.onDrain?.()]);
        },
      };
    },
  };

  const apollo = new ApolloServer<RequestContext>({
    schema: options.schema,
    introspection: options.introspection,
    includeStacktraceInErrorResponses: false,
    // The process's lifecycle owns SIGTERM/SIGINT and stops Apollo in its place in the shutdown order.
    stopOnTerminationSignals: false,
    // Compact JSON: Apollo pretty-prints by default, which costs CPU and bytes on every large response.
    stringifyResult: (result) => JSON.stringify(result),
    csrfPrevention: true,
    validationRules: createLimitRules(options.limits),
    parseOptions: createParseOptions(options.limits),
    formatError: (formatted, error) =>
      formatError(formatted, error, options.logger, {
        hideSuggestions: !options.introspection,
        onCode: (code) => options.operationMetrics.error(code),
      }),
    plugins: [
      // No cache hints are used; the default cache-control plugin would wrap every field resolver.
      ApolloServerPluginCacheControlDisabled(),
      metricsPlugin,
      wholeRequestStatusPlugin,
      drainPlugin,
      limitsPlugin,
      options.landingPage
        ? ApolloServerPluginLandingPageLocalDefault({ embed: true, includeCookies: false })
        : ApolloServerPluginLandingPageDisabled(),
    ],
  });
  await apollo.start();

  const requestId: RequestHandler = (req, res, next) => {
    const incoming = req.header('x-request-id');
    const id = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = id;
    res.setHeader('x-request-id', id);
    next();
  };
  app.use(requestId);
  app.use((req, res, next) => {
    const stop = options.metrics.httpDuration.startTimer();
    // Read the path now: mounted routers rewrite req.url while they handle the request.
    const route = KNOWN_ROUTES.has(req.path) ? req.path : 'unmatched';
    res.on('finish', () => {
      const labels = {
        method: req.method,
        route,
        status_class: `${Math.floor(res.statusCode / 100)}xx`,
      };
      stop(labels);
      options.metrics.httpRequests.inc(labels);
    });
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks = await options.readiness();
    const ready = Object.values(checks).every(Boolean);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'unavailable', checks });
  });

  app.use(
    '/graphql',
    express.json({ limit: options.bodyLimit }),
    expressMiddleware(apollo, {
      context: async ({ req, res }) => {
        try {
          const principal = await options.contexts.authenticate(req.headers.authorization);
          return options.contexts.create(principal, res.locals.requestId as string);
        } catch (error) {
          // A bad token is the client's; a database that cannot be reached while checking it is ours (503, retry).
          const known = error instanceof AppError ? error : classifyDatabaseError(error);
          if (known) {
            throw new GraphQLError(known.message, {
              extensions: { code: known.code, http: { status: known.httpStatus ?? 400 } },
            });
          }
          throw error;
        }
      },
    }),
  );

  app.use((_req, res) => jsonError(res, 404, 'NOT_FOUND', 'No such route'));

  // express answers body-parser failures with an HTML page unless the app handles them: keep errors JSON.
  const errorHandler: ErrorRequestHandler = (
    error: { status?: number; type?: string; message?: string },
    _req,
    res,
    _next,
  ) => {
    if (error.type === 'entity.too.large')
      return jsonError(res, 413, 'PAYLOAD_TOO_LARGE', `Request body exceeds ${options.bodyLimit}`);
    if (error.type === 'entity.parse.failed')
      return jsonError(res, 400, 'BAD_REQUEST', 'Request body is not valid JSON');
    if (error.status && error.status >= 400 && error.status < 500)
      return jsonError(res, error.status, 'BAD_REQUEST', error.message ?? 'Bad request');
    options.logger.error({ err: error }, 'unhandled http error');
    jsonError(res, 500, 'INTERNAL_SERVER_ERROR', 'Internal server error');
  };
  app.use(errorHandler);

  return { httpServer, apollo };
}
