import { Pool } from 'pg';
import { ShutdownPhase, type Lifecycle } from '../lifecycle/lifecycle';
import type { Logger } from '../logging/logger';

export interface PoolOpenerOptions {
  /** The database the DataSource talks to (a module pool is a second way into the same database). */
  url: string;
  logger: Logger;
  lifecycle: Lifecycle;
}

export interface PoolSettings {
  max: number;
  connectionTimeoutMs?: number;
  statementTimeoutMs?: number;
  options?: string;
}

/**
 * Opens the pg pools modules keep beside the DataSource: each closed with the database in the shutdown order, and a
 * connection that fails while idle logged (pg would otherwise crash the process with an unhandled 'error').
 */
export function createPoolOpener({ url, logger, lifecycle }: PoolOpenerOptions) {
  return (name: string, settings: PoolSettings): Pool => {
    const pool = new Pool({
      connectionString: url,
      max: settings.max,
      connectionTimeoutMillis: settings.connectionTimeoutMs ?? 10_000,
      ...(settings.statementTimeoutMs === undefined
        ? {}
        : { statement_timeout: settings.statementTimeoutMs }),
      ...(settings.options === undefined ? {} : { options: settings.options }),
    });
    pool.on('error', (error) => logger.warn({ err: error, pool: name }, `${name} connection failed`));
    lifecycle.register(name, ShutdownPhase.database, () => pool.end());
    return pool;
  };
}
