import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { MIGRATIONS } from '../migrations';
import { ENTITIES } from '../src/modules/entities';
import { DATA_TABLES } from '../src/seed/data-tables';
import { seedDatabase, type SeedSizes } from '../src/seed/seed.generator';

export const BENCH_DATABASE_URL =
  process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/crm_bench';
export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/3';

/**
 * Makes sure the bench database exists, is migrated and holds exactly the data set of `sizes` (seed 42);
 * reseeds only when the sizes differ from what is there.
 */
export async function prepareBenchDatabase(sizes: SeedSizes, log: (message: string) => void): Promise<void> {
  const url = new URL(BENCH_DATABASE_URL);
  const admin = new Client({
    connectionString: Object.assign(new URL(url), { pathname: '/postgres' }).toString(),
  });
  await admin.connect();
  const database = url.pathname.slice(1);
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
  if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${database.replace(/"/g, '')}"`);
  await admin.end();

  const dataSource = new DataSource({
    type: 'postgres',
    url: BENCH_DATABASE_URL,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    installExtensions: false,
  });
  await dataSource.initialize();
  try {
    await dataSource.runMigrations({ transaction: 'each' });
    const [current] = await dataSource.query<Array<Record<keyof SeedSizes, number>>>(
      `SELECT (SELECT count(*) FROM companies)::int AS companies, (SELECT count(*) FROM users)::int AS users,
              (SELECT count(*) FROM accounts)::int AS accounts, (SELECT count(*) FROM leads)::int AS leads,
              (SELECT count(*) FROM deals)::int AS deals`,
    );
    const matches = (Object.keys(sizes) as Array<keyof SeedSizes>).every(
      (key) => current![key] === expectedCount(key, sizes),
    );
    if (matches) {
      log(`bench database already holds ${JSON.stringify(current)}`);
      return;
    }
    log(`seeding bench database with ${JSON.stringify(sizes)} ...`);
    const started = Date.now();
    await dataSource.query(`TRUNCATE ${DATA_TABLES.join(', ')} CASCADE`);
    await seedDatabase(dataSource, sizes);
    await dataSource.query('ANALYZE');
    log(`seeded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await dataSource.destroy();
  }
}

function expectedCount(key: keyof SeedSizes, sizes: SeedSizes): number {
  return key === 'users' ? Math.max(sizes.users, sizes.companies) : sizes[key];
}
