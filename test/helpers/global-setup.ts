import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { Client } from 'pg';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { MODULES, schemaOf } from '../../src/modules/modules';
import './setup-env';

/** Recreates crm_test, migrates it, empties the test Redis DB, and builds dist/ for the process-level tests. */
export default async function globalSetup(): Promise<void> {
  const url = new URL(process.env.TEST_DATABASE_URL!);
  const database = url.pathname.slice(1);
  const admin = new Client({
    connectionString: Object.assign(new URL(url), { pathname: '/postgres' }).toString(),
  });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();

  const dataSource = new DataSource({
    type: 'postgres',
    url: url.toString(),
    ...schemaOf(MODULES),
    installExtensions: false,
  });
  await dataSource.initialize();
  await dataSource.runMigrations();
  await dataSource.destroy();

  const redis = new Redis(process.env.TEST_REDIS_URL!);
  await redis.flushdb();
  await redis.quit();

  execFileSync(
    process.execPath,
    [resolve(__dirname, '../../node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: resolve(__dirname, '../..'),
      stdio: 'inherit',
    },
  );
}
