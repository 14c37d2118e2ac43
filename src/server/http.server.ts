import { randomUUID } from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import type { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import type { ContextFactory } from '../graphql/context';
import type { OperationCore } from '../graphql/operation';
import { createApollo } from './apollo.adapter';
import { consoleRouter, type ConsolePageOptions } from './console.page';
import { trackHttpConnections } from './http-drain';
import {
  EXPLORER_ASSETS_PATH,
  mountGraphiQL,
  type ExplorerKind,
  type GraphiQLOptions,
} from './explorer.page';
import { createGraphQLFastPath, IN_OPERATION_SPAN } from './graphql-fast-path';
import { authenticatedCaller, persistedOperations } from './persisted-operations.middleware';
import { pipeline } from 'node:stream/promises';
import { authFailure, type Principal } from '../modules/kernel';
import type { RouteDefinition } from '../platform/http/routes';
import type { Metrics } from '../platform/metrics/metrics';
import type { RequestContext } from '../modules/kernel';
import { classifyDatabaseError } from '../platform/db/db-errors';
import { AppError, ErrorCode } from '../platform/errors/app-error';
import type { Logger } from '../platform/logging/logger';
import type { Tracer } from '../platform/tracing';

export interface HttpServerOptions {
  /** Authenticate, limits and rules, context, error shape and status: what every GraphQL operation goes through. */
  core: OperationCore;
  /** The callers of module routes. */
  contexts: ContextFactory;
  logger: Logger;
  /** What GET /graphql serves a browser: self-hosted GraphiQL, Apollo's Sandbox landing page, or nothing. */
  explorer: ExplorerKind;
  /** GraphiQL's prefilled token (development only) and bundle. */
  graphiql?: Omit<GraphiQLOptions, 'logger' | 'endpoint'>;
  /** Answer known documents on the fast path (see graphql-fast-path.ts). */
  fastPath: boolean;
  /** On the fast path, execute with graphql-jit. */
  compileQueries: boolean;
  /** JSON body limit, e.g. `1mb`, and the same in bytes. */
  bodyLimit: string;
  bodyLimitBytes: number;
  /** `/readyz` probe: resolves true when every dependency answers. */
  readiness: () => Promise<Record<string, boolean>>;
  /** Extra cleanup run while Apollo drains (e.g. closing graphql-ws). */
  onDrain?: () => Promise<void>;
  /** Longest the HTTP drain waits for in-flight requests before cutting connections. */
  drainTimeoutMs: number;
  metrics: Metrics;
  /** Modules' HTTP routes, behind the same auth, error shape, body limit and metrics as /graphql. */
  routes?: ReadonlyArray<RouteDefinition<Principal>>;
  /** Serve the example console at /console (outside production); undefined: not served. */
  console?: ConsolePageOptions;
  /** Each request's server span (the disabled tracer: none). */
  tracer: Tracer;
}

export interface HttpGateway {
  httpServer: HttpServer;
  apollo: ApolloServer<RequestContext>;
}

/** HTTP status of a module route's AppError by code (GraphQL answers these inside a 200). */
const ROUTE_STATUS: Record<string, number> = {
  [ErrorCode.BAD_USER_INPUT]: 400,
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.FORBIDDEN]: 403,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.CONFLICT]: 409,
  RANGE_NOT_SATISFIABLE: 416,
  [ErrorCode.SERVICE_UNAVAILABLE]: 503,
};

/** Paths the server answers itself; a module route may not take them. */
const RESERVED_PATHS = new Set(['/graphql', '/healthz', '/readyz', '/console']);

function mountRoute(
  app: express.Express,
  route: RouteDefinition<Principal>,
  options: HttpServerOptions,
): void {
  if (RESERVED_PATHS.has(route.path) || route.path.startsWith(`${EXPLORER_ASSETS_PATH}/`))
    throw new Error(`route ${route.method} ${route.path} is reserved`);
  const method = route.method.toLowerCase() as 'get' | 'post' | 'put' | 'delete';
  const body =
    route.method === 'POST' || route.method === 'PUT' ? [express.json({ limit: options.bodyLimit })] : [];
  app[method](route.path, ...body, async (req, res, next) => {
    res.locals.route = route.path;
    const aborted = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) aborted.abort();
    });
    try {
      const caller = await options.contexts.authenticate(req.headers.authorization);
      if (route.requiresAuth !== false && !caller) throw authFailure('MISSING_TOKEN');
      const answer = await route.handler({
        caller,
        params: req.params as Record<string, string>,
        query: Object.fromEntries(
          Object.entries(req.query).map(([key, value]) => [
            key,
            typeof value === 'string' ? value : undefined,
          ]),
        ),
        headers: req.headers,
        body: req.body as unknown,
        requestId: res.locals.requestId as string,
        signal: aborted.signal,
      });
      res.status(answer.status ?? 200);
      for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
      if ('json' in answer) res.json(answer.json);
      else await pipeline(answer.stream, res);
    } catch (error) {
      next(error);
    }
  });
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,100}$/;
/** Route label values: the routes this server defines; anything else is "unmatched" (bounded cardinality). */
const KNOWN_ROUTES = new Set(['/graphql', '/healthz', '/readyz']);

/** The client's `x-request-id` when well-formed, else a new one; echoed on the response. */
function assignRequestId(req: IncomingMessage, res: ServerResponse): string {
  const incoming = req.headers['x-request-id'];
  const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('x-request-id', id);
  return id;
}

function jsonError(res: express.Response, status: number, code: string, message: string): void {
  res.status(status).json({ errors: [{ message, extensions: { code } }] });
}

/** Every response gets a request id, and is counted and timed by method, route and status class. */
function observeRequests(app: express.Express, metrics: Metrics): void {
  const requestId: RequestHandler = (req, res, next) => {
    res.locals.requestId = assignRequestId(req, res);
    next();
  };
  app.use(requestId);
  app.use((req, res, next) => {
    const stop = metrics.httpDuration.startTimer();
    // Read the path now: mounted routers rewrite req.url while they handle the request.
    const route = KNOWN_ROUTES.has(req.path) ? req.path : 'unmatched';
    res.on('finish', () => {
      const labels = {
        method: req.method,
        // A module route labels itself with its pattern (`/exports/:id/download`), never the concrete path.
        route: (res.locals.route as string | undefined) ?? route,
        status_class: `${Math.floor(res.statusCode / 100)}xx`,
      };
      stop(labels);
      metrics.httpRequests.inc(labels);
    });
    next();
  });
}

/** Liveness (the process answers) and readiness (every dependency answers). */
function mountProbes(app: express.Express, readiness: HttpServerOptions['readiness']): void {
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks = await readiness();
    const ready = Object.values(checks).every(Boolean);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'unavailable', checks });
  });
}

/** /graphql through Apollo: JSON bodies, the nesting guard, then Apollo with the core's context. */
function mountGraphQL(
  app: express.Express,
  apollo: ApolloServer<RequestContext>,
  core: OperationCore,
  bodyLimit: string,
): void {
  app.use(
    '/graphql',
    (req, res, next) => {
      // The fast path read a body that is not JSON; body-parser cannot read it again.
      if ((req as { invalidJsonBody?: boolean }).invalidJsonBody)
        return jsonError(res, 400, 'BAD_REQUEST', 'Request body is not valid JSON');
      next();
    },
    express.json({ limit: bodyLimit }),
    (req, res, next) => {
      // Before Apollo parses: graphql-js's parser recurses per bracket and would overflow on a deep enough document.
      const requests: unknown[] = Array.isArray(req.body) ? req.body : [req.body ?? req.query];
      for (const request of requests) {
        const query = (request as { query?: unknown } | null)?.query;
        const tooDeep = typeof query === 'string' && core.nestingError(query);
        if (tooDeep) return jsonError(res, 400, String(tooDeep.extensions.code), tooDeep.message);
      }
      next();
    },
    persistedOperations(core),
    tracedMiddleware(
      core,
      expressMiddleware(apollo, {
        context: async ({ req, res }) => {
          const caller = authenticatedCaller(res) ?? (await core.authenticate(req.headers.authorization));
          if ('error' in caller) throw caller.error;
          return core.context(caller.principal, res.locals.requestId as string);
        },
      }),
    ),
  );
}

/**
 * Apollo's whole request (parse, validate, execute, answer) inside the operation's span; a request the fast path
 * handed over is inside the fast path's already.
 */
function tracedMiddleware(core: OperationCore, apollo: RequestHandler): RequestHandler {
  return (req, res, next) =>
    IN_OPERATION_SPAN in req
      ? core.traced('apollo', async () => apollo(req, res, next), { reuseActive: true })
      : core.traced('apollo', async () => apollo(req, res, next));
}

/** The last handler: AppErrors and database errors by code, body-parser's refusals, anything else masked. */
function jsonErrors(logger: Logger, bodyLimit: string): ErrorRequestHandler {
  return (error: { status?: number; type?: string; message?: string }, _req, res, _next) => {
    if (res.headersSent) {
      // A stream failed midway: the client must not take a cut file for a whole one.
      logger.error({ err: error }, 'response failed after its headers were sent');
      res.destroy();
      return;
    }
    const known = error instanceof AppError ? error : classifyDatabaseError(error);
    if (known) {
      const { violations } = known.details as { violations?: unknown };
      res.status(ROUTE_STATUS[known.code] ?? known.httpStatus ?? 400).json({
        errors: [
          { message: known.message, extensions: { code: known.code, ...(violations ? { violations } : {}) } },
        ],
      });
      return;
    }
    if (error.type === 'entity.too.large')
      return jsonError(res, 413, 'PAYLOAD_TOO_LARGE', `Request body exceeds ${bodyLimit}`);
    if (error.type === 'entity.parse.failed')
      return jsonError(res, 400, 'BAD_REQUEST', 'Request body is not valid JSON');
    if (error.status && error.status >= 400 && error.status < 500)
      return jsonError(res, error.status, 'BAD_REQUEST', error.message ?? 'Bad request');
    logger.error({ err: error }, 'unhandled http error');
    jsonError(res, 500, 'INTERNAL_SERVER_ERROR', 'Internal server error');
  };
}

/** express 5 + Apollo Server 5 on one HTTP server: /graphql, /healthz, /readyz, the explorer; JSON errors only. */
export async function createHttpGateway(options: HttpServerOptions): Promise<HttpGateway> {
  const { core } = options;
  const app = express();
  app.disable('x-powered-by');
  const fastPath =
    options.fastPath &&
    createGraphQLFastPath({
      ...options,
      requestId: assignRequestId,
      compile: options.compileQueries,
      fallback: (req, res) => void app(req as express.Request, res as express.Response),
    });
  const handler = fastPath || app;
  const { tracer } = options;
  const httpServer = createServer(
    tracer.enabled ? (req, res) => tracer.serveHttp(req, res, () => void handler(req, res)) : handler,
  );
  const connections = trackHttpConnections(httpServer);

  const apollo = createApollo(core, {
    sandbox: options.explorer === 'sandbox',
    drain: () => Promise.all([connections.drain(options.drainTimeoutMs), options.onDrain?.()]),
  });
  await apollo.start();

  observeRequests(app, options.metrics);
  mountProbes(app, options.readiness);
  if (options.explorer === 'graphiql')
    mountGraphiQL(app, { ...options.graphiql, endpoint: '/graphql', logger: options.logger });
  mountGraphQL(app, apollo, core, options.bodyLimit);
  for (const route of options.routes ?? []) mountRoute(app, route, options);
  if (options.console) app.use(consoleRouter(options.console));

  app.use((_req, res) => jsonError(res, 404, 'NOT_FOUND', 'No such route'));

  // express answers body-parser failures with an HTML page unless the app handles them: keep errors JSON.
  app.use(jsonErrors(options.logger, options.bodyLimit));

  return { httpServer, apollo };
}
