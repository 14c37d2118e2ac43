import { Redis } from 'ioredis';
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

/** `crm_bench_` unless BENCH_DATABASE_PREFIX gives a run databases of its own (beside another engineer's run). */
const BENCH_DATABASE_PREFIX = process.env.BENCH_DATABASE_PREFIX ?? 'crm_bench_';
if (!/^[a-z_][a-z0-9_]{0,40}$/.test(BENCH_DATABASE_PREFIX))
  throw new Error('BENCH_DATABASE_PREFIX must be lower-case letters, digits and _ (at most 41 characters)');

/** Each scenario family has a database of its own, so switching scenarios does not reseed. */
export function benchDatabaseUrl(name: string): string {
  return `${BENCH_POSTGRES}/${BENCH_DATABASE_PREFIX}${name}`;
}

/** The advisory lock key a bench run holds on each database it uses (`crmb`); advisory locks are per database. */
const BENCH_LOCK_KEY = 0x63726d62;

/** Connections holding a bench database's lock, by URL, until releaseBenchDatabases(). */
const claimed = new Map<string, Client>();

/**
 * Claims a bench database for this process until releaseBenchDatabases(): a second run on the same database would
 * reseed it under the first one's servers (which then answer from other records), so it is refused at once.
 */
export async function claimBenchDatabase(url: string): Promise<void> {
  if (claimed.has(url)) return;
  const database = new URL(url).pathname.slice(1);
  const client = new Client({ connectionString: url, application_name: `crm-bench pid ${process.pid}` });
  await client.connect();
  const {
    rows: [lock],
  } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [BENCH_LOCK_KEY]);
  if (lock?.ok) {
    claimed.set(url, client);
    return;
  }
  const {
    rows: [holder],
  } = await client.query<{ name: string; since: Date }>(
    `SELECT a.application_name AS name, a.backend_start AS since
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.objid = $1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [BENCH_LOCK_KEY],
  );
  await client.end();
  throw new Error(
    `${database} is in use by another bench run (${holder ? `${holder.name}, since ${holder.since.toISOString()}` : 'its holder just left'}): ` +
      'wait for it to finish, or give this run databases of its own with BENCH_DATABASE_PREFIX (and a Redis DB with BENCH_REDIS_URL)',
  );
}

/** Gives back every bench database this process claimed. */
export async function releaseBenchDatabases(): Promise<void> {
  const clients = [...claimed.values()];
  claimed.clear();
  await Promise.all(clients.map((client) => client.end()));
}

/**
 * Deletes the gateway's cache entries (every module's cache namespace) from the bench Redis DB: a reseed writes behind
 * the gateway's back, and seed 42 gives the same company and user ids at every scale, so entries cached by a run at
 * another scale (sharing model, visibility, users, accounts) would otherwise be served for the new data set.
 */
export async function dropBenchCaches(redisUrl: string): Promise<number> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  let dropped = 0;
  try {
    const namespaces = MODULES.flatMap((module) => module.cacheNamespaces ?? []);
    for (const namespace of namespaces) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `crm:${namespace}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) dropped += await redis.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
  return dropped;
}

type Counts = Record<'companies' | 'users' | 'accounts' | 'leads' | 'deals' | 'rules', number>;

/**
 * Makes sure the bench database exists, is claimed by this run (claimBenchDatabase), is migrated and holds exactly the
 * data set of `options` (seed 42); reseeds only when the counts differ from what is there. Drops the gateway's caches
 * in `redisUrl` (the bench Redis) first.
 */
export async function prepareBenchDatabase(
  url: string,
  options: SeedOptions,
  log: (message: string) => void,
  redisUrl: string = BENCH_REDIS_URL,
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
  await claimBenchDatabase(url);

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
    // Always, not only after a reseed here: another run may have reseeded this database while caching elsewhere.
    const dropped = await dropBenchCaches(redisUrl);
    if (dropped > 0) log(`dropped ${dropped} gateway cache entries from the bench Redis`);
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
