import type { DataSource, MigrationInterface } from 'typeorm';
import type { AppConfig } from '../../config/config';
import type { CacheStore } from '../../platform/cache/cache.store';
import type { Lifecycle } from '../../platform/lifecycle/lifecycle';
import type { Logger } from '../../platform/logging/logger';
import type { Pool } from 'pg';
import type { ReadRouting } from '../../platform/db/read-routing';
import type { Metrics } from '../../platform/metrics/metrics';
import type { GraphQLPubSub } from '../../platform/pubsub/graphql-pubsub';
import type { EventBus } from '../../platform/pubsub/event-bus';
import type {
  JobProcessor,
  ProcessorOptions,
  QueueDriver,
  Schedule,
} from '../../platform/queue/queue.driver';
import type { RedisClient } from '../../platform/redis/redis.connection';
import type { RouteDefinition } from '../../platform/http/routes';
import type { FileStorage } from '../../platform/storage/file-storage';
import type { Principal } from './principal';
import type { RequestLoaders, ServiceRegistry } from './registries';

export type ProcessRole = 'gateway' | 'worker' | 'cli';

/** The drivers every module is built from; the composition root makes them once per process. */
export interface ModuleDrivers {
  config: AppConfig;
  role: ProcessRole;
  logger: Logger;
  dataSource: DataSource;
  /** Shared string cache (Redis, or in-process). */
  cache: CacheStore;
  /** The cache's Redis connection, for slices that keep a two-tier cache; absent without Redis. */
  redis?: RedisClient;
  events: EventBus;
  /** Jobs, their progress, and scheduled jobs (the scheduler lives on the queue port). */
  queue: QueueDriver;
  /**
   * The deployment's file store. A module keeps its files in its own part of it: `storage.scoped('<module>')` (the
   * local driver may give that part a directory of its own, e.g. EXPORT_DIR).
   */
  storage: FileStorage;
  /**
   * A pg pool of the module's own beside the DataSource's (for long COPY streams, statement timeouts of its own, or
   * session settings): registered with the lifecycle (closed with the database) and its connection errors logged.
   */
  openPool: (name: string, options: ModulePoolOptions) => Pool;
  /**
   * Where reads run: `reads.read(principal, fn)` marks `fn` as a read that tolerates a replica (the module's pools
   * from `openPool` follow it); outside one, everything is on the primary. Shared caches are filled from the primary.
   */
  reads: ReadRouting;
  /** GraphQL subscriptions' pub/sub, across processes when Redis is configured. */
  pubsub: GraphQLPubSub;
  metrics: Metrics;
  lifecycle: Lifecycle;
}

export interface ModulePoolOptions {
  max: number;
  /** How long a query waits for a free connection. Default 10 s. */
  connectionTimeoutMs?: number;
  /** Stops every statement of the pool after this long (Postgres `statement_timeout`). */
  statementTimeoutMs?: number;
  /** Session settings at connect, e.g. `-c max_parallel_workers_per_gather=0`. */
  options?: string;
}

/** What a module's `createServices` receives: the drivers and the public services of the modules listed before it. */
export interface ModuleContext extends ModuleDrivers {
  services: Readonly<Partial<ServiceRegistry>>;
}

/** A resolver class and how to construct it (type-graphql's container calls `create` once). */
export interface ResolverBinding {
  resolver: Function;
  create: () => object;
}

export interface ProcessorBinding {
  queue: string;
  processor: JobProcessor<never, unknown>;
  options?: ProcessorOptions;
}

export interface ScheduledJob {
  /** Unique across modules; also the scheduler's key. */
  name: string;
  schedule: Schedule;
  run: () => Promise<void>;
}

export interface LoaderOptions {
  /** Largest batch (ids per SQL statement). */
  maxBatchSize: number;
}

export interface LatencyStats {
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  meanMs: number;
}

/** What `npm run bench` prints for a scenario: its figures beside a baseline measured in the same run. */
export interface BenchResult {
  scenario: string;
  description: string;
  measured: Record<string, number>;
  baseline: Record<string, number>;
  baselineName: string;
  /** measured / baseline for the headline figure, named in `ratioOf`. */
  ratio: number;
  ratioOf: string;
  notes?: string;
}

/** A gateway or worker the bench started as its own OS process. */
export interface BenchProcess {
  process: import('node:child_process').ChildProcess;
  output(): string;
  /** Resolves with the first match in the process's output (stdout and stderr). */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/** What the bench CLI hands a module's scenario, so the slice needs nothing from bench/ or the module list. */
export interface BenchContext {
  /** Fraction of the full data set, in (0, 1]. */
  scale: number;
  log(message: string): void;
  /** A migrated database of the scenario's own, seeded (seed 42) with `sizes`; reused while it holds them. */
  openDatabase(name: string, sizes: Readonly<Record<string, unknown>>): Promise<DataSource>;
  /**
   * The embedded PGlite (PostgreSQL 18 + pgvector) with a data directory of the scenario's own, migrated and empty of
   * seed data; kept between runs. `stop` closes the pool and the database.
   */
  openEmbeddedDatabase(name: string): Promise<{ dataSource: DataSource; stop(): Promise<void> }>;
  /** The Redis the benchmarks may use (its own DB index). */
  redisUrl: string;
  /** Starts the built gateway (`main`) or a worker, with the node flags of its npm script. */
  startProcess(entry: 'main' | 'worker', env: Record<string, string>): BenchProcess;
  /** A TCP port free a moment ago. */
  freePort(): Promise<number>;
  /** A process's event-loop p99 (ms) since its previous scrape, from its metrics URL. */
  eventLoopP99(metricsUrl: string): Promise<number>;
  /** A GraphQL call over HTTP that throws on errors. */
  graphql(
    url: string,
    token: string,
    query: string,
    variables?: Record<string, unknown>,
  ): Promise<Record<string, Record<string, unknown>>>;
  /** Times `fn` `iterations` times after `warmup` untimed runs. */
  timeCalls(
    fn: () => Promise<unknown>,
    options: { iterations: number; warmup: number },
  ): Promise<LatencyStats>;
}

/** A `npm run bench` scenario a module contributes (the bench CLI runs them in module order). */
export interface BenchScenario {
  name: string;
  run(context: BenchContext): Promise<BenchResult>;
}

/**
 * What a slice brings. Each `src/modules/<slice>/index.ts` exports one of these; the composition root, schema builder,
 * context factory, worker and bench loop over the ordered module list. Everything is optional except the name.
 */
export interface CrmModule<Services extends object = object> {
  /** Unique; the key of its services in the ServiceRegistry. */
  name: string;
  entities?: readonly Function[];
  migrations?: ReadonlyArray<new () => MigrationInterface>;
  /** Error codes the slice answers with (added to the codes shown to clients as they are). */
  errorCodes?: Readonly<Record<string, string>>;
  /** Cache namespaces the slice's keys live under (`crm:<namespace>:...`); must not collide. */
  cacheNamespaces?: readonly string[];
  /** Queues the slice adds jobs to or processes. */
  queues?: readonly string[];
  /** Builds the slice's public services; they join the registry under `name` for later modules. */
  createServices?(context: ModuleContext): Services | Promise<Services>;
  /** GraphQL resolvers (gateway only). */
  resolvers?(services: ServiceRegistry): ResolverBinding[];
  /** Per-request loaders, merged into `context.loaders`. */
  loaders?(
    services: ServiceRegistry,
    principal: Principal | undefined,
    options: LoaderOptions,
  ): Partial<RequestLoaders>;
  /** Queue processors (worker, or the gateway when queues are in-process). */
  processors?(services: ServiceRegistry): ProcessorBinding[];
  /** Periodic jobs; each fires once per period across all workers. */
  scheduledJobs?(services: ServiceRegistry): ScheduledJob[];
  /** HTTP routes, mounted behind the gateway's auth, error shape, body limit and metrics. */
  routes?(services: ServiceRegistry): RouteDefinition[];
  /** Runs once every module's services exist (e.g. to subscribe to events). */
  start?(services: ServiceRegistry, drivers: ModuleDrivers): Promise<void> | void;
  bench?: readonly BenchScenario[];
}

/**
 * A service of an earlier module, or a composition error naming both modules (instead of `undefined` surfacing as a
 * masked 500 on the first request when the module list is reordered or trimmed).
 */
export function requireService<K extends keyof ServiceRegistry>(
  services: Readonly<Partial<ServiceRegistry>>,
  name: K,
  requiredBy: string,
): ServiceRegistry[K] {
  const service = services[name];
  if (service === undefined)
    throw new Error(
      `module ${requiredBy} needs the service "${String(name)}": list its module before ${requiredBy}`,
    );
  return service;
}

/** Identity function that checks a module object against the contract while keeping its literal type. */
export function defineModule<Services extends object>(module: CrmModule<Services>): CrmModule<Services> {
  return module;
}
