import { Client } from 'pg';
import { startEmbeddedPostgres } from '../src/platform/db/embedded-postgres';
import type { DataSource } from 'typeorm';
import { createDataSource } from '../src/platform/db/data-source.factory';
import { createLogger } from '../src/platform/logging/logger';
import { MODULES, schemaOf } from '../src/modules/modules';
import { DATA_TABLES } from '../src/seed/data-tables';
import { seedDatabase, type SeedOptions } from '../src/seed/seed.generator';

const BENCH_POSTGRES = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432';
export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/3';

/** Each scenario family has a database of its own, so switching scenarios does not reseed. */
export function benchDatabaseUrl(name: string): string {
  return `${BENCH_POSTGRES}/crm_bench_${name}`;
}

type Counts = Record<'companies' | 'users' | 'accounts' | 'leads' | 'deals' | 'rules', number>;

/**
 * Makes sure the bench database exists, is migrated and holds exactly the data set of `options` (seed 42);
 * reseeds only when the counts differ from what is there.
 */
export async function prepareBenchDatabase(
  url: string,
  options: SeedOptions,
  log: (message: string) => void,
): Promise<void> {
  const target = new URL(url);
  const admin = new Client({
    connectionString: Object.assign(new URL(target), { pathname: '/postgres' }).toString(),
  });
  await admin.connect();
  const database = target.pathname.slice(1);
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
  if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${database.replace(/"/g, '')}"`);
  await admin.end();

  // The same options (and migrations table) as the app and `npm run migrate`, so a database either migrated is reused.
  const { dataSource } = createDataSource({
    url,
    ...schemaOf(MODULES),
    poolSize: 4,
    logger: createLogger({ level: 'error', name: 'bench' }),
  });
  await dataSource.initialize();
  try {
    // Bench databases made before the bench shared the app's options kept their history under `migrations`.
    await dataSource.query(`DO $$ BEGIN
        IF to_regclass('public.migrations') IS NOT NULL AND to_regclass('public.typeorm_migrations') IS NULL THEN
          ALTER TABLE migrations RENAME TO typeorm_migrations;
        END IF;
      END $$`);
    await dataSource.runMigrations({ transaction: 'each' });
    const [current] = await dataSource.query<Counts[]>(
      `SELECT (SELECT count(*) FROM companies)::int AS companies, (SELECT count(*) FROM users)::int AS users,
              (SELECT count(*) FROM accounts)::int AS accounts, (SELECT count(*) FROM leads)::int AS leads,
              (SELECT count(*) FROM deals)::int AS deals, (SELECT count(*) FROM sharing_rules)::int AS rules`,
    );
    const wanted: Counts = {
      companies: options.companies,
      users: Math.max(options.users, options.companies),
      accounts: options.accounts,
      leads: options.leads,
      deals: options.deals,
      rules: options.rules ?? 0,
    };
    if (JSON.stringify(current) === JSON.stringify(wanted)) {
      log(`${database} already holds ${JSON.stringify(current)}`);
      return;
    }
    log(`seeding ${database} with ${JSON.stringify(wanted)} ...`);
    const started = Date.now();
    await dataSource.query(`TRUNCATE ${DATA_TABLES.join(', ')} CASCADE`);
    await seedDatabase(dataSource, options);
    await dataSource.query('ANALYZE');
    log(`seeded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await dataSource.destroy();
  }
}

/** A module scenario's database: prepared as above, then opened with a small pool for the scenario to use. */
export async function openBenchDatabase(
  name: string,
  sizes: Readonly<Record<string, unknown>>,
  log: (message: string) => void,
): Promise<DataSource> {
  const url = benchDatabaseUrl(name);
  await prepareBenchDatabase(url, sizes as unknown as SeedOptions, log);
  const { dataSource } = createDataSource({
    url,
    ...schemaOf(MODULES),
    poolSize: 4,
    logger: createLogger({ level: 'error', name: 'bench' }),
  });
  return dataSource.initialize();
}

/** An embedded PGlite (with pgvector) under `.data/bench-pglite-<name>`, migrated like the app's own. */
export async function openEmbeddedBenchDatabase(
  name: string,
  log: (message: string) => void,
): Promise<{ dataSource: DataSource; stop(): Promise<void> }> {
  const dataDir = `.data/bench-pglite-${name}`;
  log(`starting embedded PGlite in ${dataDir} ...`);
  const embedded = await startEmbeddedPostgres({ dataDir, maxConnections: 10 });
  const { dataSource } = createDataSource({
    url: embedded.url,
    ...schemaOf(MODULES),
    poolSize: 4,
    logger: createLogger({ level: 'error', name: 'bench' }),
  });
  try {
    await dataSource.initialize();
    await dataSource.runMigrations({ transaction: 'each' });
  } catch (error) {
    await embedded.stop();
    throw error;
  }
  return {
    dataSource,
    stop: async () => {
      await dataSource.destroy();
      await embedded.stop();
    },
  };
}
