import { Pool, type PoolConfig } from 'pg';
import { ShutdownPhase, type Lifecycle } from '../lifecycle/lifecycle';
import type { Logger } from '../logging/logger';
import type { ReadRouting } from './read-routing';
import { RoutedPool } from './routed-pool';

export interface PoolOpenerOptions {
  /** The database the DataSource talks to (a module pool is a second way into the same database). */
  url: string;
  /** The read replicas of that database; a module pool opens the same pool on each, for its reads. */
  replicaUrls?: readonly string[];
  routing: ReadRouting;
  logger: Logger;
  lifecycle: Lifecycle;
}

export interface PoolSettings {
  max: number;
  connectionTimeoutMs?: number;
  statementTimeoutMs?: number;
  options?: string;
}

/** A replica that is down is noticed by its first read (connection refused, or this), which then runs on the primary. */
const REPLICA_CONNECT_TIMEOUT_MS = 2000;

/**
 * Opens the pg pools modules keep beside the DataSource: each closed with the database in the shutdown order, and a
 * connection that fails while idle logged (pg would otherwise crash the process with an unhandled 'error'). With read
 * replicas, each is a RoutedPool: the same pool on every replica, used inside the module's reads (ReadRouting.read).
 */
export function createPoolOpener({ url, replicaUrls = [], routing, logger, lifecycle }: PoolOpenerOptions) {
  return (name: string, settings: PoolSettings): Pool => {
    const config = (connectionString: string, connectionTimeoutMs: number): PoolConfig => ({
      connectionString,
      max: settings.max,
      connectionTimeoutMillis: connectionTimeoutMs,
      ...(settings.statementTimeoutMs === undefined
        ? {}
        : { statement_timeout: settings.statementTimeoutMs }),
      ...(settings.options === undefined ? {} : { options: settings.options }),
    });
    const timeoutMs = settings.connectionTimeoutMs ?? 10_000;
    const replicas = replicaUrls.map((replicaUrl, index) => {
      const replica = new Pool(config(replicaUrl, Math.min(timeoutMs, REPLICA_CONNECT_TIMEOUT_MS)));
      // pg's error carries its client; the message and code say all an operator needs.
      replica.on('error', (error: Error & { code?: string }) =>
        logger.warn(
          { error: error.message, code: error.code, pool: name, replica: index + 1 },
          `${name} replica connection lost`,
        ),
      );
      return replica;
    });
    const pool =
      replicas.length > 0
        ? new RoutedPool(config(url, timeoutMs), routing, replicas, replicaUrls)
        : new Pool(config(url, timeoutMs));
    pool.on('error', (error) => logger.warn({ err: error, pool: name }, `${name} connection failed`));
    lifecycle.register(name, ShutdownPhase.database, () => pool.end());
    return pool;
  };
}
