import 'reflect-metadata';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Client } from 'pg';
import { Redis } from 'ioredis';
import { MODULES, schemaOf } from '../../src/modules/modules';
import { createCliDataSource } from '../../src/platform/db/data-source.factory';
import './setup-env';
import { apolloPathTargets } from './test-databases';

/**
 * promtool (Debian's prometheus package) checks the metrics exposition and monitoring/. Installed here when missing
 * and this process may (root with apt-get, as on this project's machines); otherwise the metrics tests say so.
 */
function ensurePromtool(): void {
  if (spawnSync('promtool', ['--version']).status === 0) return;
  if (process.getuid?.() !== 0 || spawnSync('apt-get', ['--version']).status !== 0) return;
  process.stderr.write('[test setup] installing promtool (apt-get install prometheus) ...\n');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'prometheus'], {
    stdio: 'inherit',
    env,
  });
}

/**
 * The build of dist/ the process-level tests spawn is only redone when a source file is newer than the last build
 * (tsc takes ~15 s on this machine; most runs change nothing it compiles).
 */
function buildIfStale(root: string): void {
  const stamp = resolve(root, 'dist/.build-stamp');
  const built = existsSync(stamp) ? statSync(stamp).mtimeMs : 0;
  const newest = Math.max(
    ...['src', 'bench', 'migrations'].map((dir) => newestMtime(resolve(root, dir))),
    ...['ormconfig.ts', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'].map(
      (file) => statSync(resolve(root, file)).mtimeMs,
    ),
  );
  if (newest <= built) return;
  execFileSync(
    process.execPath,
    [resolve(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
  writeFileSync(stamp, new Date().toISOString());
}

function newestMtime(directory: string): number {
  let newest = 0;
  for (const entry of readdirSync(directory, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts'))
      newest = Math.max(newest, statSync(resolve(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
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
  ensurePromtool();
  const fastPath = { databaseUrl: process.env.TEST_DATABASE_URL!, redisUrl: process.env.TEST_REDIS_URL! };
  for (const { databaseUrl, redisUrl } of [
    fastPath,
    apolloPathTargets(fastPath.databaseUrl, fastPath.redisUrl),
  ]) {
    await freshDatabase(databaseUrl);
    await emptyRedis(redisUrl);
  }
  buildIfStale(resolve(__dirname, '../..'));
}
