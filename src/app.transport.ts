import type { AddressInfo } from 'node:net';
import type { AppConfig } from './config/config';
import { ContextFactory } from './graphql/context';
import { operationLimits } from './graphql/operation-limits';
import { OperationCore } from './graphql/operation';
import { OperationMetrics } from './graphql/operation-metrics';
import { persistedOperationsSetup } from './graphql/persisted-operations.setup';
import { buildGatewaySchema } from './graphql/schema';
import type { CrmModule, ModuleDrivers, ProcessRole, ServiceRegistry } from './modules/kernel';
import { ShutdownPhase, type Lifecycle } from './platform/lifecycle/lifecycle';
import type { Logger } from './platform/logging/logger';
import type { Metrics } from './platform/metrics/metrics';
import type { Tracer } from './platform/tracing';
import { startGraphQLWs } from './server/graphql-ws.server';
import { createHttpGateway } from './server/http.server';
import { startMetricsServer } from './server/metrics.server';

/** The composition's last steps (see app.ts): the gateway's transport and the metrics listener. */

/**
 * The gateway's transport: the schema from every module's resolvers, one operation core, and its adapters (HTTP with
 * Apollo and the fast path, graphql-ws on the same port), listening. Returns the base URL.
 */
export async function startTransport(
  modules: readonly CrmModule[],
  services: ServiceRegistry,
  { config, logger, metrics, lifecycle, pubsub, reads, redis }: ModuleDrivers,
  readinessCheck: () => Promise<Record<string, boolean>>,
  tracer: Tracer,
): Promise<string> {
  const schema = await buildGatewaySchema(
    modules.flatMap((module) => module.resolvers?.(services) ?? []),
    pubsub,
  );
  const contexts = new ContextFactory({
    identity: services.identity,
    modules,
    services,
    logger,
    maxBatchSize: config.dataloaderMaxBatch,
  });
  const operationMetrics = new OperationMetrics(metrics);
  const core = new OperationCore({
    schema,
    contexts,
    limits: operationLimits(config.graphql),
    logger,
    operationMetrics,
    introspection: config.graphql.introspection,
    reads,
    persisted: persistedOperationsSetup(config.graphql.operations, { redis, logger, metrics }),
    tracer,
    rateLimits: services.rateLimits,
  });
  const websocket = { close: async (): Promise<void> => {} };
  const devToken = developmentToken(services, config.graphql.developmentTokenEmail);
  const { httpServer, apollo } = await createHttpGateway({
    core,
    contexts,
    logger,
    explorer: config.graphql.explorer,
    graphiql: { developmentToken: devToken },
    fastPath: config.graphql.fastPath,
    compileQueries: config.graphql.compileQueries,
    bodyLimit: config.http.bodyLimit,
    bodyLimitBytes: bytes(config.http.bodyLimit),
    readiness: readinessCheck,
    onDrain: () => websocket.close(),
    drainTimeoutMs: Math.floor(config.shutdownTimeoutMs / 2),
    metrics,
    routes: modules.flatMap((module) => module.routes?.(services) ?? []),
    console: config.env === 'production' ? undefined : { developmentToken: devToken },
    tracer,
  });
  const ws = startGraphQLWs({
    httpServer,
    path: '/graphql',
    core,
    logger,
    operationMetrics,
    maxPayloadBytes: bytes(config.http.bodyLimit),
  });
  websocket.close = ws.close;
  metrics.provideWebsocketConnections(ws.connections);
  // apollo.stop() drains in-flight HTTP requests (and, through onDrain, WebSocket operations), then closes.
  lifecycle.register('http+websocket', ShutdownPhase.transport, () => apollo.stop());
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.http.port, config.http.host, () => resolve());
  });
  const address = httpServer.address() as AddressInfo;
  const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
  return `http://${host}:${address.port}`;
}

/** The Prometheus listener on its own port (none for a command, or when its port is 0). Returns its URL. */
export async function startMetricsListener(
  { config, role }: { config: AppConfig; role: ProcessRole },
  metrics: Metrics,
  logger: Logger,
  lifecycle: Lifecycle,
): Promise<string | undefined> {
  const metricsPort = role === 'worker' ? config.metrics.workerPort : config.metrics.gatewayPort;
  if (role === 'cli' || metricsPort === 0) return undefined;
  const sidecar = await startMetricsServer({ metrics, port: metricsPort, host: config.metrics.host, logger });
  lifecycle.register('metrics-listener', ShutdownPhase.transport, sidecar.close);
  return sidecar.url;
}

/**
 * A fresh token for the development user (config.graphql.developmentTokenEmail) on each page load, which the explorer
 * prefills and the console offers; none in production, and by default only while the gateway signs with the published
 * development secret (with it anyone can mint tokens, so offering one gives nothing away).
 */
function developmentToken(
  services: ServiceRegistry,
  email: string | undefined,
): (() => Promise<{ token: string; user: string } | undefined>) | undefined {
  if (!email) return undefined;
  return async () => {
    const user = await services.identity.findUserByEmail(email);
    return user
      ? { token: await services.tokens.mint(user.id, user.companyId), user: user.email }
      : undefined;
  };
}

/** `1mb`, `512kb`, `1000b` (the validated BODY_LIMIT forms) in bytes. */
function bytes(limit: string): number {
  const [, amount, unit] = /^(\d+)(b|kb|mb)$/i.exec(limit)!;
  return Number(amount) * { b: 1, kb: 1024, mb: 1024 * 1024 }[unit!.toLowerCase() as 'b' | 'kb' | 'mb'];
}
