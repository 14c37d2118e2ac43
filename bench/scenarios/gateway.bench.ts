import { startApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config/config';
import { createLogger } from '../../src/platform/logging/logger';
import { BENCH_REDIS_URL, benchDatabaseUrl, prepareBenchDatabase } from '../bench-database';

export const GATEWAY_DATABASE_URL = benchDatabaseUrl('gateway');
import { runHttpLoad, type BenchContext, type Scenario, type ScenarioResult } from '../harness';

const CONCURRENCY = 32;

export function gatewaySizes(scale: number) {
  const scaled = (n: number) => Math.max(1, Math.round(n * scale));
  return {
    companies: 10,
    users: scaled(200),
    accounts: scaled(5_000),
    leads: scaled(100_000),
    deals: scaled(50_000),
  };
}

export async function startBenchGateway(overrides: Record<string, string> = {}): Promise<App> {
  // As deployed: graphql-js and others switch off development-only checks on NODE_ENV, not on our config.
  process.env.NODE_ENV = 'production';
  const config = loadConfig(
    {},
    {
      NODE_ENV: 'production',
      JWT_SECRET: 'bench-secret-0123456789abcdef0123456789abcdef',
      LOG_LEVEL: 'error',
      PORT: '0',
      HOST: '127.0.0.1',
      METRICS_PORT: '0',
      DATABASE_URL: GATEWAY_DATABASE_URL,
      REDIS_URL: BENCH_REDIS_URL,
      ...overrides,
    },
  );
  return startApp({ config, role: 'gateway', logger: createLogger({ level: 'error', name: 'bench' }) });
}

export async function adminToken(app: App): Promise<string> {
  const admin = await app.services.identity.findUserByEmail('user0@company0.example.com');
  if (!admin) throw new Error('bench data set has no user0@company0.example.com');
  return app.services.tokens.mint(admin.id, admin.companyId, 3600);
}

function loadOptions(context: BenchContext) {
  return {
    concurrency: CONCURRENCY,
    durationMs: context.scale < 1 ? 3000 : 8000,
    warmupMs: context.scale < 1 ? 1000 : 2000,
  };
}

const graphqlCall = (token: string, query: string) => ({
  method: 'POST' as const,
  path: '/graphql',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
  body: JSON.stringify({ query }),
  check: (_status: number, body: string) => !body.includes('"errors"'),
});

export const gatewaySimple: Scenario = {
  name: 'gateway.simple',
  async run(context): Promise<ScenarioResult> {
    await prepareBenchDatabase(GATEWAY_DATABASE_URL, gatewaySizes(context.scale), context.log);
    const app = await startBenchGateway();
    try {
      const token = await adminToken(app);
      context.log(`gateway.simple: { me { id } } at ${CONCURRENCY} connections`);
      const graphql = await runHttpLoad(app.url!, graphqlCall(token, '{ me { id } }'), loadOptions(context));
      context.log('gateway.simple baseline: GET /healthz on the same server');
      const health = await runHttpLoad(app.url!, { method: 'GET', path: '/healthz' }, loadOptions(context));
      return {
        scenario: 'gateway.simple',
        description: '{ me { id } } with JWT auth over real HTTP, 32 concurrent keep-alive connections',
        measured: {
          reqPerSec: graphql.requestsPerSecond,
          p50Ms: graphql.p50Ms,
          p95Ms: graphql.p95Ms,
          p99Ms: graphql.p99Ms,
          errors: graphql.errors,
        },
        baseline: {
          reqPerSec: health.requestsPerSecond,
          p50Ms: health.p50Ms,
          p95Ms: health.p95Ms,
          p99Ms: health.p99Ms,
          errors: health.errors,
        },
        baselineName: 'GET /healthz (express, no GraphQL)',
        ratio: graphql.requestsPerSecond / health.requestsPerSecond,
        ratioOf: 'req/s vs baseline',
      };
    } finally {
      await app.stop();
    }
  },
};

const NESTED_QUERY =
  '{ deals(pageSize: 100) { items { id name amount owner { id name } account { id name } } } }';

async function measureNested(app: App, token: string, context: BenchContext) {
  const call = graphqlCall(token, NESTED_QUERY);
  // Statements per request, measured sequentially so nothing else is counted.
  const send = async () => {
    const res = await fetch(`${app.url}/graphql`, { method: 'POST', headers: call.headers, body: call.body });
    const body = await res.text();
    if (!call.check(res.status, body)) throw new Error(`nested query failed: ${body.slice(0, 300)}`);
  };
  for (let i = 0; i < 5; i++) await send();
  const before = app.queryLogger.statementCount;
  const samples = 20;
  for (let i = 0; i < samples; i++) await send();
  const statementsPerRequest = (app.queryLogger.statementCount - before) / samples;
  const load = await runHttpLoad(app.url!, call, loadOptions(context));
  return {
    reqPerSec: load.requestsPerSecond,
    p50Ms: load.p50Ms,
    p95Ms: load.p95Ms,
    p99Ms: load.p99Ms,
    sqlPerRequest: statementsPerRequest,
    errors: load.errors,
  };
}

export const gatewayNested: Scenario = {
  name: 'gateway.nested',
  async run(context): Promise<ScenarioResult> {
    await prepareBenchDatabase(GATEWAY_DATABASE_URL, gatewaySizes(context.scale), context.log);
    const withLoaders = await startBenchGateway();
    let measured;
    try {
      context.log('gateway.nested: 100 deals with owner and account, DataLoaders + shared cache');
      measured = await measureNested(withLoaders, await adminToken(withLoaders), context);
    } finally {
      await withLoaders.stop();
    }
    // The naive resolver: every nested lookup is its own statement (batch size 1, no shared cache).
    const naive = await startBenchGateway({ DATALOADER_MAX_BATCH: '1', ENTITY_CACHE_TTL_SECONDS: '0' });
    let baseline;
    try {
      context.log('gateway.nested baseline: loaders off (batch size 1, no shared cache)');
      baseline = await measureNested(naive, await adminToken(naive), context);
    } finally {
      await naive.stop();
    }
    return {
      scenario: 'gateway.nested',
      description: 'deals(pageSize: 100) with owner and account over real HTTP, 32 connections',
      measured,
      baseline,
      baselineName: 'naive resolvers (one SQL per nested lookup)',
      ratio: measured.reqPerSec / baseline.reqPerSec,
      ratioOf: 'req/s vs baseline',
      notes: `SQL statements per request: ${measured.sqlPerRequest} with loaders vs ${baseline.sqlPerRequest} naive`,
    };
  },
};
