import { startApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config/config';
import { createLogger } from '../../src/platform/logging/logger';
import { BENCH_REDIS_URL, benchDatabaseUrl } from '../bench-database';

export const GATEWAY_DATABASE_URL = benchDatabaseUrl('gateway');
export const BENCH_JWT_SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';

export function gatewaySizes(scale: number) {
  const scaled = (n: number) => Math.max(1, Math.round(n * scale));
  return {
    companies: 10,
    users: scaled(200),
    accounts: scaled(5_000),
    leads: scaled(100_000),
    deals: scaled(50_000),
    // Criteria and owner rules for the non-admin caller (every seeded company keeps deals PRIVATE by default).
    rules: scaled(40),
  };
}

export async function startBenchGateway(overrides: Record<string, string> = {}): Promise<App> {
  // As deployed: graphql-js and others switch off development-only checks on NODE_ENV, not on our config.
  process.env.NODE_ENV = 'production';
  const config = loadConfig(
    {},
    {
      NODE_ENV: 'production',
      JWT_SECRET: BENCH_JWT_SECRET,
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
