import { z } from 'zod';
import { auditSettings } from '../modules/audit/audit.settings';
import { exportSettings } from '../modules/exports/export.settings';
import { rateLimitSettings } from '../modules/rate-limits/rate-limits.settings';
import { reportSettings } from '../modules/reports/report.settings';
import { searchSettings } from '../modules/search/search.settings';
import { sharingSettings } from '../modules/sharing/sharing.settings';
import { vectorSettings } from '../modules/vectors/vector.settings';
import { workflowSettings } from '../modules/workflows/workflow.settings';
import {
  booleanFlag,
  listEntries,
  commaList,
  optionalPositiveInt,
  optionalUrl,
  port,
  positiveInt,
  type SettingsContext,
} from './settings';
import { readTracingSettings, tracingVariables, type TracingSettings } from './tracing.settings';

const DEV_JWT_SECRET = 'dev-only-secret-change-me-0123456789abcdef';
/** The first demo company's admin (src/seed/demo.seed.ts), whose token development hands out. */
export const DEMO_ADMIN_EMAIL = 'user0@company0.example.com';
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

const platformVariables = {
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PORT: port(4000),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** Unset: 9464 for the gateway, 9465 for the worker; 0 disables the listener. */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** The metrics listener is unauthenticated: loopback unless an operator opens it to a Prometheus sidecar. */
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: optionalUrl(/^(postgres|postgresql):\/\//),
  /** Explicit size of the DataSource's pool; unset: its share of DATABASE_MAX_CONNECTIONS (at most 10). */
  DATABASE_POOL_SIZE: optionalPositiveInt(),
  /** Connections one process may open to one database server, shared by all its pools. */
  DATABASE_MAX_CONNECTIONS: positiveInt(16),
  /** A transaction pooler in front of Postgres: `auto` detects one at start (and falls back when a statement shows one). */
  DATABASE_POOLER: z.enum(['auto', 'pgbouncer', 'none']).default('auto'),
  /** `auto`: run pending migrations at start (the embedded default); `check`: refuse to start while any is pending. */
  DATABASE_MIGRATE: z.enum(['auto', 'check']).optional(),
  /** Postgres streaming replicas that take the reads which tolerate one (comma-separated); none = all on the primary. */
  DATABASE_REPLICA_URLS: z
    .string()
    .optional()
    .refine(
      (value) => listEntries(value).every((url) => /^(postgres|postgresql):\/\/./.test(url)),
      'must be a comma-separated list of postgres:// URLs',
    ),
  DATABASE_REPLICA_MAX_LAG_MS: positiveInt(2000),
  DATABASE_REPLICA_CHECK_MS: positiveInt(250),
  EMBEDDED_DATA_DIR: z.string().min(1).default('.data/pglite'),
  /** Files (exports and other module output) live here with the local storage driver. */
  STORAGE_DIR: z.string().min(1).default('.data/storage'),
  REDIS_URL: optionalUrl(/^(redis|rediss):\/\//),
  REDIS_CLUSTER_NODES: z.string().optional(),
  JWT_SECRET: z
    .string()
    .refine((secret) => Buffer.byteLength(secret, 'utf8') >= MIN_SECRET_BYTES, {
      message: `must be at least ${MIN_SECRET_BYTES} bytes`,
    })
    .optional(),
  JWT_TTL_SECONDS: positiveInt(3600),
  GRAPHQL_INTROSPECTION: booleanFlag(true).optional(),
  /** The page GET /graphql serves a browser while introspection is on: self-hosted GraphiQL, Apollo Sandbox, none. */
  GRAPHQL_EXPLORER: z.enum(['graphiql', 'sandbox', 'off']).default('graphiql'),
  /** Outside production: the user whose fresh token GraphiQL's headers editor holds; empty = none. */
  DEVELOPMENT_TOKEN_EMAIL: z.string().optional(),
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
  /** Which documents may run; unset: `safelist` when a manifest is configured, else `any` (README, Persisted operations). */
  GRAPHQL_OPERATIONS: z.enum(['any', 'persisted', 'safelist']).optional(),
  /** A persisted-query manifest (Apollo's format), read at boot. */
  GRAPHQL_OPERATION_MANIFEST: z
    .string()
    .optional()
    .transform((value) => (value === '' ? undefined : value)),
  /** How long an APQ registration lives in the store (Redis, or the embedded LRU). */
  GRAPHQL_APQ_TTL_SECONDS: positiveInt(86_400),
  BODY_LIMIT: z
    .string()
    .regex(/^\d+(b|kb|mb)$/i, 'must look like 1mb, 512kb or 1000b')
    .default('1mb'),
  SHUTDOWN_TIMEOUT_MS: positiveInt(10_000),
  /** 0 turns the shared entity cache off (every lookup goes to Postgres). */
  ENTITY_CACHE_TTL_SECONDS: z.coerce.number().int().min(0).default(300),
  DATALOADER_MAX_BATCH: positiveInt(500),
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
  ...tracingVariables,
};

/**
 * Each module's settings, declared in its own folder (`<slice>.settings.ts`: its variables and what it reads from them)
 * and composed here under its key of AppConfig.
 */
const MODULE_SETTINGS = {
  audit: auditSettings,
  exports: exportSettings,
  rateLimits: rateLimitSettings,
  reports: reportSettings,
  search: searchSettings,
  sharing: sharingSettings,
  vectors: vectorSettings,
  workflows: workflowSettings,
} as const;

type ModuleSettings = {
  readonly [K in keyof typeof MODULE_SETTINGS]: Readonly<ReturnType<(typeof MODULE_SETTINGS)[K]['read']>>;
};

/** Every variable, the platform's and each module's; a name two of them claim is a programming error. */
function composeVariables(): z.ZodRawShape {
  const variables: Record<string, z.ZodType> = { ...platformVariables };
  for (const [module, fragment] of Object.entries(MODULE_SETTINGS))
    for (const [name, schema] of Object.entries(fragment.variables)) {
      if (name in variables) throw new Error(`settings of ${module}: ${name} is declared twice`);
      variables[name] = schema as z.ZodType;
    }
  return variables;
}

const environmentSchema = z.object(composeVariables());
type PlatformEnv = z.infer<z.ZodObject<typeof platformVariables>>;

export type DatabaseDriver = 'postgres' | 'embedded';
export type RedisDriver = 'redis' | 'redis-cluster' | 'memory';

/** The platform's settings, and each module's under its name (declared in the module's `<slice>.settings.ts`). */
export interface AppConfig extends ModuleSettings {
  readonly env: 'development' | 'test' | 'production';
  readonly logLevel: string;
  readonly http: { readonly host: string; readonly port: number; readonly bodyLimit: string };
  /** Prometheus sidecar port per process kind (0 = off). */
  readonly metrics: { readonly host: string; readonly gatewayPort: number; readonly workerPort: number };
  readonly database: {
    readonly driver: DatabaseDriver;
    readonly url?: string;
    /** The DataSource pool's explicit size (DATABASE_POOL_SIZE); unset, its share of the connection budget. */
    readonly poolSize?: number;
    /** Connections per process and database server, shared by all its pools (DATABASE_MAX_CONNECTIONS). */
    readonly maxConnections: number;
    readonly pooler: 'auto' | 'pgbouncer' | 'none';
    readonly embeddedDataDir: string;
    /** What a gateway or worker does with pending migrations at start. */
    readonly migrate: 'auto' | 'check';
    /** Read replicas (streaming standbys of the primary); empty = every read on the primary. */
    readonly replicaUrls: readonly string[];
    /** A replica further behind than this is skipped until it catches up. */
    readonly replicaMaxLagMs: number;
    /** How often each replica's replay position is checked. */
    readonly replicaCheckMs: number;
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
    /** What GET /graphql serves a browser; `off` whenever introspection is. */
    readonly explorer: 'graphiql' | 'sandbox' | 'off';
    /**
     * Development only (never in production): the user whose fresh token GraphiQL prefills and the console offers;
     * undefined = none. Set explicitly by DEVELOPMENT_TOKEN_EMAIL, else the demo admin while the gateway signs with the
     * published development secret (a real secret offers no token unless an operator names a user).
     */
    readonly developmentTokenEmail?: string;
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
    /** Persisted operations: the mode, the manifest's path, the APQ registrations' lifetime. */
    readonly operations: {
      readonly mode: 'any' | 'persisted' | 'safelist';
      readonly manifestPath?: string;
      readonly apqTtlSeconds: number;
    };
  };
  readonly shutdownTimeoutMs: number;
  readonly entityCacheTtlSeconds: number;
  readonly dataloaderMaxBatch: number;
  readonly seedDemoWhenEmpty: boolean;
  /** Lower-cased operator user ids; see PLATFORM_OPERATOR_USER_IDS. */
  readonly platformOperators: readonly string[];
  /** OpenTelemetry traces (the standard OTEL_* variables); off unless an OTLP endpoint is set. */
  readonly tracing: TracingSettings;
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
  // Typed by the platform's own variables; each module reads its own from the whole parse.
  const e = parsed.data as PlatformEnv;
  const isProduction = e.NODE_ENV === 'production';
  const secretProblem = isProduction ? productionSecretProblem(e.JWT_SECRET) : undefined;
  if (secretProblem) throw new ConfigError([`JWT_SECRET: ${secretProblem}`]);
  if (isProduction && e.DEVELOPMENT_TOKEN_EMAIL)
    throw new ConfigError([
      'DEVELOPMENT_TOKEN_EMAIL: is for development only (a token in a page); unset it when NODE_ENV=production',
    ]);
  const clusterNodes = listEntries(e.REDIS_CLUSTER_NODES);
  const introspection = e.GRAPHQL_INTROSPECTION ?? !isProduction;
  const operationsMode = e.GRAPHQL_OPERATIONS ?? (e.GRAPHQL_OPERATION_MANIFEST ? 'safelist' : 'any');
  if (operationsMode === 'safelist' && !e.GRAPHQL_OPERATION_MANIFEST)
    throw new ConfigError([
      'GRAPHQL_OPERATIONS: safelist needs GRAPHQL_OPERATION_MANIFEST (the allowed operations)',
    ]);

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
      maxConnections: e.DATABASE_MAX_CONNECTIONS,
      pooler: e.DATABASE_POOLER,
      embeddedDataDir: e.EMBEDDED_DATA_DIR,
      migrate: e.DATABASE_MIGRATE ?? (e.DATABASE_URL ? 'check' : 'auto'),
      replicaUrls: listEntries(e.DATABASE_REPLICA_URLS),
      replicaMaxLagMs: e.DATABASE_REPLICA_MAX_LAG_MS,
      replicaCheckMs: e.DATABASE_REPLICA_CHECK_MS,
    },
    redis: {
      driver: clusterNodes.length > 0 ? 'redis-cluster' : e.REDIS_URL ? 'redis' : 'memory',
      url: e.REDIS_URL,
      clusterNodes,
    },
    storage: { directory: e.STORAGE_DIR },
    opensearchUrl: parsed.data.OPENSEARCH_URL as string | undefined,
    jwt: {
      secret: e.JWT_SECRET ?? DEV_JWT_SECRET,
      ttlSeconds: e.JWT_TTL_SECONDS,
      isDevSecret: !e.JWT_SECRET,
    },
    graphql: {
      introspection,
      explorer: introspection ? e.GRAPHQL_EXPLORER : 'off',
      developmentTokenEmail: isProduction
        ? undefined
        : (e.DEVELOPMENT_TOKEN_EMAIL ?? (e.JWT_SECRET ? undefined : DEMO_ADMIN_EMAIL)) || undefined,
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
      operations: {
        mode: operationsMode,
        manifestPath: e.GRAPHQL_OPERATION_MANIFEST,
        apqTtlSeconds: e.GRAPHQL_APQ_TTL_SECONDS,
      },
    },
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    entityCacheTtlSeconds: e.ENTITY_CACHE_TTL_SECONDS,
    dataloaderMaxBatch: e.DATALOADER_MAX_BATCH,
    seedDemoWhenEmpty: e.SEED_DEMO_WHEN_EMPTY,
    platformOperators: listEntries(e.PLATFORM_OPERATOR_USER_IDS).map((id) => id.toLowerCase()),
    tracing: readTracingSettings(e),
    ...readModuleSettings(parsed.data, { jwtSecret: e.JWT_SECRET ?? DEV_JWT_SECRET }),
  });
}

function readModuleSettings(env: Record<string, unknown>, context: SettingsContext): ModuleSettings {
  return Object.fromEntries(
    Object.entries(MODULE_SETTINGS).map(([key, fragment]) => [
      key,
      (fragment.read as (env: unknown, context: SettingsContext) => unknown)(env, context),
    ]),
  ) as unknown as ModuleSettings;
}

/** Every variable the config reads, for documentation and the compose-file test. */
export const CONFIG_VARIABLES = Object.keys(environmentSchema.shape) as Array<
  keyof typeof environmentSchema.shape
>;
