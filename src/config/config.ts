import { createHmac } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';

/** Parses "true"/"false"/"1"/"0" explicitly; z.coerce.boolean() would turn "false" into true. */
const booleanFlag = (defaultValue: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .optional()
    .transform((value) => (value === undefined ? defaultValue : ['true', '1', 'yes'].includes(value)));

/** The entries of a comma-separated list, trimmed, empty ones dropped. */
const listEntries = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);

/** An optional comma-separated list whose every entry passes `pattern`. */
const commaList = (pattern: RegExp, message: string) =>
  z
    .string()
    .optional()
    .refine((value) => listEntries(value).every((entry) => pattern.test(entry)), { message });

const port = (defaultValue: number) => z.coerce.number().int().min(0).max(65535).default(defaultValue);
const positiveInt = (defaultValue: number) => z.coerce.number().int().positive().default(defaultValue);
const optionalUrl = (protocols: RegExp) =>
  z
    .string()
    .optional()
    .transform((value) => (value === '' ? undefined : value))
    .refine((value) => value === undefined || protocols.test(value), {
      message: `must be a URL starting with ${protocols.source.replace(/[\\^()]/g, '').replace(/\|/g, ' or ')}`,
    });

function isCronPattern(pattern: string): boolean {
  try {
    CronExpressionParser.parse(pattern, { tz: 'UTC' });
    return true;
  } catch {
    return false;
  }
}

const DEV_JWT_SECRET = 'dev-only-secret-change-me-0123456789abcdef';
/** Secrets published with the project (built-in default, `.env.example`, compose file): never valid in production. */
const PUBLISHED_JWT_SECRETS = new Set([
  DEV_JWT_SECRET,
  'replace-with-a-long-random-secret-of-at-least-32-chars',
  'change-me-to-a-long-random-secret-of-32-chars-or-more',
]);
const PLACEHOLDER_SECRET = /change-?me|replace-?with|placeholder|example/i;
const MIN_SECRET_BYTES = 32;

/** Why a production JWT secret is unacceptable, or undefined when it will do. */
function productionSecretProblem(secret: string | undefined): string | undefined {
  if (!secret) return 'is required when NODE_ENV=production';
  if (PUBLISHED_JWT_SECRETS.has(secret) || PLACEHOLDER_SECRET.test(secret))
    return 'is a published example or placeholder; set a random secret (e.g. openssl rand -hex 32)';
  return undefined;
}

const environmentSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PORT: port(4000),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** Unset: 9464 for the gateway, 9465 for the worker; 0 disables the listener. */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** The metrics listener is unauthenticated: loopback unless an operator opens it to a Prometheus sidecar. */
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: optionalUrl(/^(postgres|postgresql):\/\//),
  DATABASE_POOL_SIZE: positiveInt(10),
  /** `auto`: run pending migrations at start (the embedded default); `check`: refuse to start while any is pending. */
  DATABASE_MIGRATE: z.enum(['auto', 'check']).optional(),
  EMBEDDED_DATA_DIR: z.string().min(1).default('.data/pglite'),
  /** Files (exports and other module output) live here with the local storage driver. */
  STORAGE_DIR: z.string().min(1).default('.data/storage'),
  REDIS_URL: optionalUrl(/^(redis|rediss):\/\//),
  REDIS_CLUSTER_NODES: z.string().optional(),
  OPENSEARCH_URL: optionalUrl(/^(http|https):\/\//),
  JWT_SECRET: z
    .string()
    .refine((secret) => Buffer.byteLength(secret, 'utf8') >= MIN_SECRET_BYTES, {
      message: `must be at least ${MIN_SECRET_BYTES} bytes`,
    })
    .optional(),
  JWT_TTL_SECONDS: positiveInt(3600),
  GRAPHQL_INTROSPECTION: booleanFlag(true).optional(),
  GRAPHQL_FAST_PATH: booleanFlag(true),
  GRAPHQL_JIT: booleanFlag(true),
  GRAPHQL_MAX_DEPTH: positiveInt(10),
  GRAPHQL_MAX_INTROSPECTION_DEPTH: positiveInt(20),
  GRAPHQL_MAX_ALIASES: positiveInt(15),
  GRAPHQL_MAX_DIRECTIVES: positiveInt(50),
  GRAPHQL_MAX_TOKENS: positiveInt(5000),
  GRAPHQL_MAX_FRAGMENTS: positiveInt(100),
  GRAPHQL_MAX_COMPLEXITY: positiveInt(5000),
  GRAPHQL_MAX_PAGE_SIZE: positiveInt(200),
  GRAPHQL_MAX_INPUT_DEPTH: positiveInt(32),
  GRAPHQL_MAX_JSON_VALUES: positiveInt(100_000),
  BODY_LIMIT: z
    .string()
    .regex(/^\d+(b|kb|mb)$/i, 'must look like 1mb, 512kb or 1000b')
    .default('1mb'),
  SHUTDOWN_TIMEOUT_MS: positiveInt(10_000),
  /** 0 turns the shared entity cache off (every lookup goes to Postgres). */
  ENTITY_CACHE_TTL_SECONDS: z.coerce.number().int().min(0).default(300),
  DATALOADER_MAX_BATCH: positiveInt(500),
  SHARING_RULES_TTL_SECONDS: positiveInt(3600),
  SHARING_VISIBILITY_TTL_SECONDS: positiveInt(1800),
  SEED_DEMO_WHEN_EMPTY: booleanFlag(true),
  /**
   * User ids of the platform's operators (comma-separated): company admins among them may run and inspect operations
   * that span every tenant (audit partitions, archives, maintenance). Ids, not emails: a tenant's admin chooses the
   * emails of the users they create, never their ids. Empty: those operations are CLI/worker only.
   */
  PLATFORM_OPERATOR_USER_IDS: commaList(
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
    'must be a comma-separated list of user ids (UUIDs)',
  ),
  /** Verified gzip archives of audit months past retention. */
  AUDIT_ARCHIVE_DIR: z.string().min(1).default('.data/audit-archive'),
  AUDIT_RETENTION_MONTHS: z.coerce.number().int().min(1).max(240).default(12),
  AUDIT_MONTHS_AHEAD: z.coerce.number().int().min(0).max(24).default(3),
  /** When the worker runs audit maintenance (cron, UTC). */
  AUDIT_MAINTENANCE_CRON: z
    .string()
    .min(1)
    .refine(isCronPattern, { message: 'must be a cron pattern such as "0 2 * * *"' })
    .default('0 2 * * *'),
  AUDIT_ARCHIVE_GZIP_LEVEL: z.coerce.number().int().min(1).max(9).default(6),
  /** Finished export files (local storage driver). */
  EXPORT_DIR: z.string().min(1).default('.data/exports'),
  EXPORT_CONCURRENCY: positiveInt(2),
  EXPORT_MAX_ACTIVE_PER_USER: positiveInt(3),
  EXPORT_RETENTION_HOURS: positiveInt(24),
  EXPORT_GZIP_LEVEL: z.coerce.number().int().min(1).max(9).default(6),
  /** Connections of the exports' own pool, so long exports cannot starve GraphQL queries. */
  EXPORT_DB_POOL_SIZE: positiveInt(2),
  /** Row cap of the synchronous GET /exports/stream route. */
  EXPORT_STREAM_MAX_ROWS: positiveInt(10_000),
  /** How long a worker's claim on an export lasts without renewal: a killed worker's job is retried after it. */
  EXPORT_LOCK_MS: positiveInt(30_000),
  /** Length of every vector (fixed per deployment; changing it means reindexing). */
  VECTOR_DIMENSION: z.coerce.number().int().min(2).max(4096).default(768),
  /** Metadata keys `similar` may filter on (comma-separated). */
  VECTOR_FILTER_KEYS: z
    .string()
    .regex(
      /^\s*[A-Za-z_][A-Za-z0-9_]*(\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*\s*$/,
      'must be comma-separated key names',
    )
    .default('status,stage,source,industry,country,category,language'),
  /** How often each process re-checks the vector backends (a failed one comes back after it). */
  VECTOR_HEALTH_CHECK_MS: positiveInt(30_000),
  /** Memory for the fallback backend's in-process copies of vectors; larger companies are scanned from Postgres. */
  VECTOR_FALLBACK_CACHE_MB: positiveInt(1024),
  /** Most candidates asked of an index before an exact scan with the caller's visibility in SQL takes over. */
  VECTOR_MAX_CANDIDATES: positiveInt(2000),
  /** How often the worker rebuilds indexes that missed writes and purges deleted vectors. */
  VECTOR_REPAIR_EVERY_MS: positiveInt(60_000),
  /** pgvector HNSW candidate list per query (raised to the candidates asked for, at most 1000). */
  PGVECTOR_EF_SEARCH: z.coerce.number().int().min(10).max(1000).default(400),
  OPENSEARCH_INDEX: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be a lower-case OpenSearch index name')
    .default('crm-vectors'),
  /** When indexed vectors become searchable in OpenSearch: before the write returns, at once, or on the next refresh. */
  OPENSEARCH_REFRESH: z.enum(['wait_for', 'true', 'false']).default('wait_for'),
  OPENSEARCH_TIMEOUT_MS: positiveInt(5_000),
  /** Reports: their own connections, a statement timeout, the planner-cost budget a live report may not pass. */
  REPORT_DB_POOL_SIZE: positiveInt(4),
  REPORT_STATEMENT_TIMEOUT_MS: positiveInt(10_000),
  REPORT_MAX_COST: z.coerce.number().positive().default(5_000_000),
  REPORT_PLAN_CACHE_SIZE: positiveInt(500),
  REPORT_ROLLUP_MAX_RATIO: z.coerce.number().positive().max(1).default(0.1),
  REPORT_ROLLUP_REBUILD_MS: positiveInt(600_000),
  SEARCH_DB_POOL_SIZE: positiveInt(6),
  SEARCH_STATEMENT_TIMEOUT_MS: positiveInt(10_000),
  SEARCH_INDEX: z.enum(['on', 'off']).default('on'),
  SEARCH_INDEX_BUILD_WAIT_MS: z.coerce.number().int().min(0).default(250),
  SEARCH_INDEX_MAX_CATCH_UP: positiveInt(20_000),
  SEARCH_INDEX_IDLE_MS: positiveInt(3_600_000),
  SEARCH_WINDOW_TTL_SECONDS: positiveInt(600),
  SEARCH_CHANGE_RETENTION_MS: positiveInt(3_600_000),
  /** Per workflow queue: steps run at once per worker process, a step's time limit, attempts before it fails. */
  WORKFLOW_IO_CONCURRENCY: positiveInt(20),
  WORKFLOW_IO_TIMEOUT_MS: positiveInt(30_000),
  WORKFLOW_IO_ATTEMPTS: positiveInt(3),
  /** CPU steps run in this many worker threads (default: the machine's cores). */
  WORKFLOW_CPU_CONCURRENCY: positiveInt(availableParallelism()),
  WORKFLOW_CPU_TIMEOUT_MS: positiveInt(60_000),
  WORKFLOW_CPU_ATTEMPTS: positiveInt(2),
  WORKFLOW_DEFAULT_CONCURRENCY: positiveInt(10),
  WORKFLOW_DEFAULT_TIMEOUT_MS: positiveInt(60_000),
  WORKFLOW_DEFAULT_ATTEMPTS: positiveInt(3),
  /** First retry delay (doubled each attempt) and the random fraction taken off each delay. */
  WORKFLOW_BACKOFF_MS: positiveInt(1_000),
  WORKFLOW_BACKOFF_JITTER: z.coerce.number().min(0).max(1).default(0.5),
  /** A worker's claim on a running step: a step whose worker died is run again after it. */
  WORKFLOW_LOCK_MS: positiveInt(30_000),
  /** URL prefixes (comma-separated) http.request and notify.webhook may call; empty: none. */
  WORKFLOW_HTTP_ALLOWLIST: commaList(
    /^https?:\/\/[^\s/]+(\/\S*)?$/,
    'must be comma-separated http(s) URL prefixes',
  ),
  /** `single`: every step on one queue, CPU steps inline (the pre-partitioning behaviour, for comparison). */
  WORKFLOW_ROUTING: z.enum(['partitioned', 'single']).default('partitioned'),
  /** Signs notify.webhook bodies; default derived from JWT_SECRET. */
  WORKFLOW_WEBHOOK_SECRET: z.string().min(16).optional(),
});

export type DatabaseDriver = 'postgres' | 'embedded';
export type RedisDriver = 'redis' | 'redis-cluster' | 'memory';

export interface AppConfig {
  readonly env: 'development' | 'test' | 'production';
  readonly logLevel: string;
  readonly http: { readonly host: string; readonly port: number; readonly bodyLimit: string };
  /** Prometheus sidecar port per process kind (0 = off). */
  readonly metrics: { readonly host: string; readonly gatewayPort: number; readonly workerPort: number };
  readonly database: {
    readonly driver: DatabaseDriver;
    readonly url?: string;
    readonly poolSize: number;
    readonly embeddedDataDir: string;
    /** What a gateway or worker does with pending migrations at start. */
    readonly migrate: 'auto' | 'check';
  };
  readonly redis: {
    readonly driver: RedisDriver;
    readonly url?: string;
    readonly clusterNodes: readonly string[];
  };
  readonly storage: { readonly directory: string };
  readonly opensearchUrl?: string;
  readonly jwt: { readonly secret: string; readonly ttlSeconds: number; readonly isDevSecret: boolean };
  readonly graphql: {
    readonly introspection: boolean;
    readonly landingPage: boolean;
    /** Known documents answered without Apollo's per-request pipeline (same auth, limits, errors, metrics). */
    readonly fastPath: boolean;
    /** On the fast path, execute with graphql-jit (compiled once per document) rather than graphql-js. */
    readonly compileQueries: boolean;
    readonly maxDepth: number;
    readonly maxIntrospectionDepth: number;
    readonly maxAliases: number;
    readonly maxDirectives: number;
    readonly maxTokens: number;
    readonly maxFragments: number;
    readonly maxComplexity: number;
    readonly maxPageSize: number;
    readonly maxInputDepth: number;
    readonly maxJsonValues: number;
  };
  readonly shutdownTimeoutMs: number;
  readonly entityCacheTtlSeconds: number;
  readonly dataloaderMaxBatch: number;
  readonly sharing: { readonly rulesTtlSeconds: number; readonly visibilityTtlSeconds: number };
  readonly seedDemoWhenEmpty: boolean;
  /** Lower-cased operator user ids; see PLATFORM_OPERATOR_USER_IDS. */
  readonly platformOperators: readonly string[];
  readonly audit: {
    readonly archiveDirectory: string;
    readonly retentionMonths: number;
    readonly monthsAhead: number;
    readonly maintenanceCron: string;
    readonly gzipLevel: number;
  };
  readonly exports: {
    readonly directory: string;
    readonly concurrency: number;
    readonly maxActivePerUser: number;
    readonly retentionHours: number;
    readonly gzipLevel: number;
    readonly poolSize: number;
    readonly streamMaxRows: number;
    readonly lockMs: number;
  };
  readonly reports: {
    readonly poolSize: number;
    readonly statementTimeoutMs: number;
    readonly maxCost: number;
    readonly planCacheSize: number;
    /** A rollup holding more rows than this fraction of its records is not read (as of its last rebuild). */
    readonly rollupMaxRatio: number;
    readonly rollupRebuildMs: number;
  };
  readonly search: {
    readonly poolSize: number;
    readonly statementTimeoutMs: number;
    /** Off: every search is answered from SQL (the counting index is never built). */
    readonly indexEnabled: boolean;
    readonly buildWaitMs: number;
    readonly maxCatchUp: number;
    readonly idleMs: number;
    readonly windowTtlSeconds: number;
    /** How long the change log keeps a change (an index further behind rebuilds). */
    readonly changeRetentionMs: number;
  };
  readonly workflows: {
    readonly queues: Readonly<
      Record<'io' | 'cpu' | 'default', { concurrency: number; timeoutMs: number; attempts: number }>
    >;
    readonly backoffMs: number;
    readonly backoffJitter: number;
    readonly routing: 'partitioned' | 'single';
    readonly lockMs: number;
    readonly httpAllowList: readonly string[];
    readonly webhookSecret: string;
  };
  readonly vectors: {
    readonly dimension: number;
    readonly filterKeys: readonly string[];
    readonly healthCheckMs: number;
    readonly fallbackCacheBytes: number;
    readonly maxCandidates: number;
    readonly repairEveryMs: number;
    readonly pgvectorEfSearch: number;
    readonly opensearch?: {
      readonly url: string;
      readonly index: string;
      readonly refresh: 'wait_for' | 'true' | 'false';
      readonly timeoutMs: number;
    };
  };
}

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n  - ${issues.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** The only reader of process.env: parses once into a typed, frozen object or throws naming each bad variable. */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<string, string>> = {},
): AppConfig {
  const parsed = environmentSchema.safeParse({ ...env, ...overrides });
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
    );
  }
  const e = parsed.data;
  const isProduction = e.NODE_ENV === 'production';
  const secretProblem = isProduction ? productionSecretProblem(e.JWT_SECRET) : undefined;
  if (secretProblem) throw new ConfigError([`JWT_SECRET: ${secretProblem}`]);
  const clusterNodes = listEntries(e.REDIS_CLUSTER_NODES);
  const introspection = e.GRAPHQL_INTROSPECTION ?? !isProduction;

  return deepFreeze<AppConfig>({
    env: e.NODE_ENV,
    logLevel: e.LOG_LEVEL,
    http: { host: e.HOST, port: e.PORT, bodyLimit: e.BODY_LIMIT },
    metrics: {
      host: e.METRICS_HOST,
      gatewayPort: e.METRICS_PORT ?? 9464,
      workerPort: e.METRICS_PORT ?? 9465,
    },
    database: {
      driver: e.DATABASE_URL ? 'postgres' : 'embedded',
      url: e.DATABASE_URL,
      poolSize: e.DATABASE_POOL_SIZE,
      embeddedDataDir: e.EMBEDDED_DATA_DIR,
      migrate: e.DATABASE_MIGRATE ?? (e.DATABASE_URL ? 'check' : 'auto'),
    },
    redis: {
      driver: clusterNodes.length > 0 ? 'redis-cluster' : e.REDIS_URL ? 'redis' : 'memory',
      url: e.REDIS_URL,
      clusterNodes,
    },
    storage: { directory: e.STORAGE_DIR },
    opensearchUrl: e.OPENSEARCH_URL,
    jwt: {
      secret: e.JWT_SECRET ?? DEV_JWT_SECRET,
      ttlSeconds: e.JWT_TTL_SECONDS,
      isDevSecret: !e.JWT_SECRET,
    },
    graphql: {
      introspection,
      landingPage: introspection,
      fastPath: e.GRAPHQL_FAST_PATH,
      compileQueries: e.GRAPHQL_JIT,
      maxDepth: e.GRAPHQL_MAX_DEPTH,
      maxIntrospectionDepth: e.GRAPHQL_MAX_INTROSPECTION_DEPTH,
      maxAliases: e.GRAPHQL_MAX_ALIASES,
      maxDirectives: e.GRAPHQL_MAX_DIRECTIVES,
      maxTokens: e.GRAPHQL_MAX_TOKENS,
      maxFragments: e.GRAPHQL_MAX_FRAGMENTS,
      maxComplexity: e.GRAPHQL_MAX_COMPLEXITY,
      maxPageSize: e.GRAPHQL_MAX_PAGE_SIZE,
      maxInputDepth: e.GRAPHQL_MAX_INPUT_DEPTH,
      maxJsonValues: e.GRAPHQL_MAX_JSON_VALUES,
    },
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    entityCacheTtlSeconds: e.ENTITY_CACHE_TTL_SECONDS,
    dataloaderMaxBatch: e.DATALOADER_MAX_BATCH,
    sharing: {
      rulesTtlSeconds: e.SHARING_RULES_TTL_SECONDS,
      visibilityTtlSeconds: e.SHARING_VISIBILITY_TTL_SECONDS,
    },
    seedDemoWhenEmpty: e.SEED_DEMO_WHEN_EMPTY,
    platformOperators: listEntries(e.PLATFORM_OPERATOR_USER_IDS).map((id) => id.toLowerCase()),
    audit: {
      archiveDirectory: e.AUDIT_ARCHIVE_DIR,
      retentionMonths: e.AUDIT_RETENTION_MONTHS,
      monthsAhead: e.AUDIT_MONTHS_AHEAD,
      maintenanceCron: e.AUDIT_MAINTENANCE_CRON,
      gzipLevel: e.AUDIT_ARCHIVE_GZIP_LEVEL,
    },
    exports: {
      directory: e.EXPORT_DIR,
      concurrency: e.EXPORT_CONCURRENCY,
      maxActivePerUser: e.EXPORT_MAX_ACTIVE_PER_USER,
      retentionHours: e.EXPORT_RETENTION_HOURS,
      gzipLevel: e.EXPORT_GZIP_LEVEL,
      poolSize: e.EXPORT_DB_POOL_SIZE,
      streamMaxRows: e.EXPORT_STREAM_MAX_ROWS,
      lockMs: e.EXPORT_LOCK_MS,
    },
    reports: {
      poolSize: e.REPORT_DB_POOL_SIZE,
      statementTimeoutMs: e.REPORT_STATEMENT_TIMEOUT_MS,
      maxCost: e.REPORT_MAX_COST,
      planCacheSize: e.REPORT_PLAN_CACHE_SIZE,
      rollupMaxRatio: e.REPORT_ROLLUP_MAX_RATIO,
      rollupRebuildMs: e.REPORT_ROLLUP_REBUILD_MS,
    },
    search: {
      poolSize: e.SEARCH_DB_POOL_SIZE,
      statementTimeoutMs: e.SEARCH_STATEMENT_TIMEOUT_MS,
      indexEnabled: e.SEARCH_INDEX === 'on',
      buildWaitMs: e.SEARCH_INDEX_BUILD_WAIT_MS,
      maxCatchUp: e.SEARCH_INDEX_MAX_CATCH_UP,
      idleMs: e.SEARCH_INDEX_IDLE_MS,
      windowTtlSeconds: e.SEARCH_WINDOW_TTL_SECONDS,
      changeRetentionMs: e.SEARCH_CHANGE_RETENTION_MS,
    },
    workflows: {
      queues: {
        io: {
          concurrency: e.WORKFLOW_IO_CONCURRENCY,
          timeoutMs: e.WORKFLOW_IO_TIMEOUT_MS,
          attempts: e.WORKFLOW_IO_ATTEMPTS,
        },
        cpu: {
          concurrency: e.WORKFLOW_CPU_CONCURRENCY,
          timeoutMs: e.WORKFLOW_CPU_TIMEOUT_MS,
          attempts: e.WORKFLOW_CPU_ATTEMPTS,
        },
        default: {
          concurrency: e.WORKFLOW_DEFAULT_CONCURRENCY,
          timeoutMs: e.WORKFLOW_DEFAULT_TIMEOUT_MS,
          attempts: e.WORKFLOW_DEFAULT_ATTEMPTS,
        },
      },
      backoffMs: e.WORKFLOW_BACKOFF_MS,
      backoffJitter: e.WORKFLOW_BACKOFF_JITTER,
      routing: e.WORKFLOW_ROUTING,
      lockMs: e.WORKFLOW_LOCK_MS,
      httpAllowList: listEntries(e.WORKFLOW_HTTP_ALLOWLIST),
      webhookSecret:
        e.WORKFLOW_WEBHOOK_SECRET ??
        createHmac('sha256', e.JWT_SECRET ?? DEV_JWT_SECRET)
          .update('workflow webhooks')
          .digest('hex'),
    },
    vectors: {
      dimension: e.VECTOR_DIMENSION,
      filterKeys: listEntries(e.VECTOR_FILTER_KEYS),
      healthCheckMs: e.VECTOR_HEALTH_CHECK_MS,
      fallbackCacheBytes: e.VECTOR_FALLBACK_CACHE_MB * 1024 * 1024,
      maxCandidates: e.VECTOR_MAX_CANDIDATES,
      repairEveryMs: e.VECTOR_REPAIR_EVERY_MS,
      pgvectorEfSearch: e.PGVECTOR_EF_SEARCH,
      ...(e.OPENSEARCH_URL
        ? {
            opensearch: {
              url: e.OPENSEARCH_URL,
              index: e.OPENSEARCH_INDEX,
              refresh: e.OPENSEARCH_REFRESH,
              timeoutMs: e.OPENSEARCH_TIMEOUT_MS,
            },
          }
        : {}),
    },
  });
}

/** Every variable the config reads, for documentation and the compose-file test. */
export const CONFIG_VARIABLES = Object.keys(environmentSchema.shape) as Array<
  keyof typeof environmentSchema.shape
>;
