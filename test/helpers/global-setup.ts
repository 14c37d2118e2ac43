import 'reflect-metadata';
import { execFileSync, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { Client } from 'pg';
import { Redis } from 'ioredis';
import { MODULES, schemaOf } from '../../src/modules/modules';
import { createCliDataSource } from '../../src/platform/db/data-source.factory';
import { CHROMIUM } from './browser';
import './setup-env';
import { apolloPathTargets } from './test-databases';

/**
 * Debian packages the tests run: promtool (the prometheus package) checks the metrics exposition and monitoring/;
 * pgbouncer stands in front of Postgres in the pooler tests and the local cluster's, haproxy balances that cluster's
 * gateways; chromium runs the browser tests (test/helpers/browser.ts). Installed here when missing and this process
 * may (root with apt-get, as on this project's machines); otherwise the metrics tests say so, the pooler tests fail
 * naming the package, and the suite stops for a missing chromium (below).
 */
const DEBIAN_TOOLS = [
  { command: 'promtool', pkg: 'prometheus' },
  { command: 'pgbouncer', pkg: 'pgbouncer' },
  { command: 'haproxy', pkg: 'haproxy', versionFlag: '-v' },
  { command: CHROMIUM, pkg: 'chromium' },
];

function missingDebianTools(): typeof DEBIAN_TOOLS {
  return DEBIAN_TOOLS.filter(
    ({ command, versionFlag }) => spawnSync(command, [versionFlag ?? '--version']).status !== 0,
  );
}

function ensureDebianTools(): void {
  const missing = missingDebianTools();
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0 || spawnSync('apt-get', ['--version']).status !== 0) return;
  const packages = missing.map(({ pkg }) => pkg);
  process.stderr.write(`[test setup] installing ${packages.join(', ')} (apt-get install) ...\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], {
    stdio: 'inherit',
    env,
  });
}

/** Recreates a test database and migrates it. */
async function freshDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const database = url.pathname.slice(1);
  const admin = new Client({
    connectionString: Object.assign(new URL(url), { pathname: '/postgres' }).toString(),
  });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();

  // The app's own DataSource options (its migrations table among them), as `npm run migrate` uses them.
  const dataSource = createCliDataSource({ url: url.toString(), ...schemaOf(MODULES) });
  await dataSource.initialize();
  await dataSource.runMigrations({ transaction: 'each' });
  await dataSource.destroy();
}

async function emptyRedis(redisUrl: string): Promise<void> {
  const redis = new Redis(redisUrl);
  await redis.flushdb();
  await redis.quit();
}

/**
 * Recreates and migrates the test database and empties the test Redis DB, for each run of the suite (the fast path's
 * and the Apollo path's, see jest.config.js), and builds dist/ for the process-level tests.
 */
export default async function globalSetup(): Promise<void> {
  ensureDebianTools();
  if (missingDebianTools().some(({ pkg }) => pkg === 'chromium'))
    throw new Error(
      `${CHROMIUM} is missing: the browser tests need Debian's chromium (as root: apt-get update && apt-get install -y chromium; .ci/run does)`,
    );
  const fastPath = { databaseUrl: process.env.TEST_DATABASE_URL!, redisUrl: process.env.TEST_REDIS_URL! };
  for (const { databaseUrl, redisUrl } of [
    fastPath,
    apolloPathTargets(fastPath.databaseUrl, fastPath.redisUrl),
  ]) {
    await freshDatabase(databaseUrl);
    await emptyRedis(redisUrl);
  }
  // The process-level tests spawn dist/: built here only when a source is newer than the last build, by the script
  // the npm scripts use (scripts/build-if-stale.js).
  execFileSync(process.execPath, [resolve(__dirname, '../../scripts/build-if-stale.js')], {
    stdio: 'inherit',
  });
}
