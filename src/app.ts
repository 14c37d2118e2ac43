import 'reflect-metadata';
import { resolve } from 'node:path';
import type { DataSource } from 'typeorm';
import type { AppConfig } from './config/config';
import {
  connectionBudgetFor,
  readiness,
  startDatabase,
  startMessaging,
  startReadRouting,
} from './app.drivers';
import { startMetricsListener, startTransport } from './app.transport';
import { type ModuleDrivers, type ProcessRole, type ServiceRegistry } from './modules/kernel';
import type { CrmModule } from './modules/kernel';
import { MODULES } from './modules/modules';
import type { CacheStore } from './platform/cache/cache.store';
import { declareConnectionMetrics, type ConnectionBudget } from './platform/db/connection-budget';
import { createPoolOpener } from './platform/db/pool-opener';
import type { PoolerPolicy } from './platform/db/pooler';
import type { QueryCountingLogger } from './platform/db/query-counting.logger';
import { Lifecycle, ShutdownPhase } from './platform/lifecycle/lifecycle';
import { createLogger, type Logger } from './platform/logging/logger';
import { Metrics } from './platform/metrics/metrics';
import type { EventBus } from './platform/pubsub/event-bus';
import type { GraphQLPubSub } from './platform/pubsub/graphql-pubsub';
import type { QueueDriver } from './platform/queue/queue.driver';
import type { FileStorage } from './platform/storage/file-storage';
import { LocalFileStorage } from './platform/storage/local-file.storage';
import { DISABLED_TRACER, tracedQueue, type Tracer } from './platform/tracing';
import { seedDemoIfEmpty } from './seed/demo.seed';

export type { ProcessRole };

export interface AppOptions {
  config: AppConfig;
  /** gateway: HTTP + WebSocket; worker: queue processors only; cli: drivers and services only. */
  role: ProcessRole;
  logger?: Logger;
  /**
   * Run pending migrations at start. Default: `config.database.migrate` (auto for the embedded database); otherwise a
   * gateway or worker refuses to start while any is pending (a CLI is left to its own command).
   */
  migrate?: boolean;
  /** BullMQ key prefix (tests isolate themselves with their own). Default `crm`. */
  queuePrefix?: string;
  /** The file store (an S3 driver, or a test's). Default the local driver under STORAGE_DIR. */
  storage?: FileStorage;
  /** The capabilities to compose, in build order. Default every module (src/modules/modules.ts). */
  modules?: readonly CrmModule[];
  /** Traces (started by the entry point before anything loads: tracing.bootstrap.ts). Default off. */
  tracer?: Tracer;
}

export interface App {
  readonly config: AppConfig;
  readonly logger: Logger;
  readonly dataSource: DataSource;
  readonly queryLogger: QueryCountingLogger;
  readonly cache: CacheStore;
  readonly events: EventBus;
  readonly queue: QueueDriver;
  readonly storage: FileStorage;
  readonly pubsub: GraphQLPubSub;
  readonly services: ServiceRegistry;
  readonly metrics: Metrics;
  /** URL of the Prometheus sidecar, when enabled. */
  readonly metricsUrl?: string;
  /** Base URL of the HTTP server (gateway role). */
  readonly url?: string;
  readonly databaseUrl: string;
  /** The primary's connection budget: each pool's size, and its connections now. */
  readonly connectionBudget: ConnectionBudget;
  /** What is known of a transaction pooler in front of the primary. */
  readonly pooler: PoolerPolicy;
  stop(): Promise<void>;
}

/**
 * The composition root: config -> drivers (database, cache, pub/sub, queue, storage) -> each module's services, in
 * module order -> schema, loaders, routes, processors and scheduled jobs from every module -> transport.
 * Everything long-lived registers with one lifecycle, closed in order: transport, workers, queues, Redis, database.
 */
export async function startApp(options: AppOptions): Promise<App> {
  const { config, role } = options;
  const logger = options.logger ?? createLogger({ level: config.logLevel, name: `crm-${role}` });
  const lifecycle = new Lifecycle(logger);
  try {
    return await compose(options, logger, lifecycle);
  } catch (error) {
    await lifecycle.stop(config.shutdownTimeoutMs);
    throw error;
  }
}

async function compose(options: AppOptions, logger: Logger, lifecycle: Lifecycle): Promise<App> {
  const { config, role } = options;
  const modules = options.modules ?? MODULES;
  assertUniqueNames(modules);
  const drivers: Record<string, string> = {};
  const metrics = new Metrics({ process: role });
  // Before any connection: a budget the explicit pool sizes cannot fit stops the process here.
  const budget = connectionBudgetFor(config, modules);
  logger.info({ server: budget.options.server, budget: budget.max, pools: budget.plan() }, budget.describe());
  // Each read replica takes the same pools: the same split of its own budget.
  const replicas = config.database.replicaUrls.map((url, index) => ({
    url,
    budget: connectionBudgetFor(config, modules, `replica ${index + 1}`),
  }));
  declareConnectionMetrics(metrics, () => [budget, ...replicas.map((replica) => replica.budget)]);

  const database = await startDatabase(options, modules, budget, { logger, lifecycle, metrics, drivers });
  const tracer = options.tracer ?? DISABLED_TRACER;
  // Last in the shutdown order: the spans of everything closed before it are exported.
  lifecycle.register('tracing', ShutdownPhase.database, () => tracer.shutdown());
  const messaging = await startMessaging(options, { logger, lifecycle, metrics, drivers });
  // Jobs carry the trace that queued them, and the worker's job span continues it.
  const queue = tracedQueue(messaging.queue, tracer);
  drivers.tracing = tracer.enabled ? `opentelemetry (${config.tracing.tracesUrl})` : 'off';
  const reads = await startReadRouting(config, database.dataSource, messaging.cacheClient, replicas, {
    logger,
    lifecycle,
    metrics,
    drivers,
  });
  queue.declareQueues(modules.flatMap((module) => module.queues ?? []));
  assertDistinct(modules, 'cache namespace', (module) => module.cacheNamespaces ?? []);
  metrics.provideQueueCounts(() => queue.counts().catch(() => []));
  const storage = options.storage ?? new LocalFileStorage(resolve(config.storage.directory));
  drivers.storage = options.storage
    ? `${storage.driver} (given)`
    : `local directory (${config.storage.directory})`;

  const moduleDrivers: ModuleDrivers = {
    config,
    role,
    logger,
    dataSource: database.dataSource,
    cache: messaging.cache,
    redis: messaging.cacheClient,
    events: messaging.events,
    queue,
    storage,
    reads,
    openPool: createPoolOpener({
      url: database.url,
      replicas,
      routing: reads,
      logger,
      lifecycle,
      budget,
      transactionPooling: database.pooler.transactionPooling,
    }),
    pooler: database.pooler,
    pubsub: messaging.pubsub,
    metrics,
    lifecycle,
  };
  const services = await buildServices(modules, moduleDrivers);
  await startJobs(modules, services, queue, role);

  if (role === 'gateway' && config.database.driver === 'embedded' && config.seedDemoWhenEmpty) {
    await seedDemoIfEmpty(database.dataSource, services.vectors, logger);
  }

  const url =
    role === 'gateway'
      ? await startTransport(
          modules,
          services,
          moduleDrivers,
          () => readiness(database.dataSource, messaging.redisClients),
          tracer,
        )
      : undefined;
  const metricsUrl = await startMetricsListener(options, metrics, logger, lifecycle);

  logger.info(
    {
      role,
      drivers,
      modules: modules.map((module) => module.name),
      ...(url ? { url: `${url}/graphql` } : {}),
      ...(metricsUrl ? { metrics: metricsUrl } : {}),
    },
    `${role} started`,
  );
  if (config.jwt.isDevSecret && role === 'gateway') {
    logger.warn('JWT_SECRET is not set: using the built-in development secret; never do this in production');
  }

  return {
    config,
    logger,
    dataSource: database.dataSource,
    queryLogger: database.queryLogger,
    cache: messaging.cache,
    events: messaging.events,
    queue,
    storage,
    pubsub: messaging.pubsub,
    services,
    metrics,
    metricsUrl,
    url,
    databaseUrl: database.url,
    connectionBudget: budget,
    pooler: database.pooler,
    stop: () => lifecycle.stop(config.shutdownTimeoutMs),
  };
}

/** Each module builds its services from the drivers and the services of the modules before it; then each starts. */
async function buildServices(
  modules: readonly CrmModule[],
  moduleDrivers: ModuleDrivers,
): Promise<ServiceRegistry> {
  const registry: Record<string, unknown> = {};
  for (const module of modules) {
    const built = (await module.createServices?.({ ...moduleDrivers, services: registry })) ?? {};
    for (const [name, service] of Object.entries(built)) {
      if (name in registry) throw new Error(`module ${module.name}: service "${name}" is already registered`);
      registry[name] = service;
    }
  }
  const services = registry as unknown as ServiceRegistry;
  for (const module of modules) await module.start?.(services, moduleDrivers);
  return services;
}

/** The modules' queue processors (where this process runs jobs) and scheduled jobs. */
async function startJobs(
  modules: readonly CrmModule[],
  services: ServiceRegistry,
  queue: QueueDriver,
  role: ProcessRole,
): Promise<void> {
  // Workers run jobs on BullMQ. Without Redis nothing is shared between processes, so the gateway runs them itself and
  // a worker runs none (its timers would fire every schedule a second time).
  const runsJobs = queue.driver === 'bullmq' ? role === 'worker' : role === 'gateway';
  if (runsJobs) {
    for (const module of modules) {
      for (const binding of module.processors?.(services) ?? [])
        queue.process(binding.queue, binding.processor as never, binding.options);
    }
  }
  if (role !== 'cli') {
    // Declared together, so every handler is known before the scheduler's worker takes its first job.
    const jobs = modules.flatMap((module) => module.scheduledJobs?.(services) ?? []);
    await Promise.all(jobs.map((job) => queue.schedule(job.name, job.schedule, job.run, { run: runsJobs })));
  }
}

function assertUniqueNames(modules: readonly CrmModule[]): void {
  assertDistinct(modules, 'name', (module) => [module.name]);
}

/** Two modules may not claim the same name, cache namespace, ...: a collision would mix their keys. */
function assertDistinct(
  modules: readonly CrmModule[],
  what: string,
  claims: (module: CrmModule) => readonly string[],
): void {
  const owner = new Map<string, string>();
  for (const module of modules) {
    for (const claim of claims(module)) {
      const previous = owner.get(claim);
      if (previous) throw new Error(`modules ${previous} and ${module.name} both claim the ${what} ${claim}`);
      owner.set(claim, module.name);
    }
  }
}
