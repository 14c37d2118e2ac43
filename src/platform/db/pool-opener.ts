import { Pool, type PoolConfig, type QueryConfig } from 'pg';
import { ShutdownPhase, type Lifecycle } from '../lifecycle/lifecycle';
import type { Logger } from '../logging/logger';
import type { ConnectionBudget } from './connection-budget';
import type { ReadRouting } from './read-routing';
import { RoutedPool } from './routed-pool';

export interface PoolOpenerOptions {
  /** The database server the pools connect to (a module pool is a second way into the DataSource's database). */
  url: string;
  logger: Logger;
  lifecycle: Lifecycle;
  /** This server's connection budget: it sizes every pool opened here (each declared in its module's pools). */
  budget: ConnectionBudget;
  /** A transaction pooler (PgBouncer) is in front: session settings are applied per transaction instead. */
  transactionPooling?: boolean;
  /** Read replicas of that server, each with its own budget: a module pool opens the same pool on each, for its reads. */
  replicas?: ReadonlyArray<{ url: string; budget: ConnectionBudget }>;
  routing?: ReadRouting;
}

/** Session settings a pool's connections run with (`-c name=value`). */
export type SessionSettings = Readonly<Record<string, string | number>>;

export interface PoolSettings {
  connectionTimeoutMs?: number;
  statementTimeoutMs?: number;
  /** Planner or runtime settings for every statement of the pool, e.g. `{ max_parallel_workers_per_gather: 0 }`. */
  settings?: SessionSettings;
}

const SETTING_NAME = /^[a-z_][a-z0-9_.]*$/;
const SETTING_VALUE = /^[A-Za-z0-9_.-]+$/;

/** A replica that is down is noticed by its first read (connection refused, or this), which then runs on the primary. */
const REPLICA_CONNECT_TIMEOUT_MS = 2000;

/** Pool options carrying session settings as startup parameters (a direct connection: no pooler in front). */
function withStartupSettings(config: PoolConfig, session: Record<string, string>): PoolConfig {
  const { statement_timeout, ...options } = session;
  return {
    ...config,
    ...(statement_timeout === undefined ? {} : { statement_timeout: Number(statement_timeout) }),
    ...(Object.keys(options).length === 0
      ? {}
      : {
          options: Object.entries(options)
            .map(([key, value]) => `-c ${key}=${value}`)
            .join(' '),
        }),
  };
}

/**
 * Opens the pg pools modules keep beside the DataSource, each sized by the server's connection budget: closed with the
 * database in the shutdown order, counted in `crm_db_connections`, and a connection that fails while idle logged (pg
 * would otherwise crash the process with an unhandled 'error').
 *
 * Settings go to Postgres as startup parameters (`statement_timeout`, `options=-c ...`). PgBouncer refuses those, and
 * a session `SET` would leak to whichever client it hands that server session next, so behind a transaction pooler
 * each `pool.query` of a pool with settings runs as `BEGIN; SET LOCAL ...; <query>; COMMIT` (two more round trips).
 * Clients taken with `pool.connect()` there run without them: such a caller scopes what it needs with `SET LOCAL`.
 *
 * With read replicas, each is a RoutedPool: the same pool on every replica (sized by that replica's budget), used
 * inside the module's reads (ReadRouting.read).
 */
export function createPoolOpener({
  url,
  logger,
  lifecycle,
  budget,
  transactionPooling,
  replicas = [],
  routing,
}: PoolOpenerOptions) {
  return (name: string, settings: PoolSettings = {}): Pool => {
    const session: Record<string, string> = {};
    if (settings.statementTimeoutMs !== undefined)
      session.statement_timeout = String(settings.statementTimeoutMs);
    for (const [key, value] of Object.entries(settings.settings ?? {})) {
      if (!SETTING_NAME.test(key) || !SETTING_VALUE.test(String(value)))
        throw new Error(`pool ${name}: setting ${key}=${value} is not a plain name and value`);
      session[key] = String(value);
    }
    const config: PoolConfig = {
      connectionString: url,
      max: budget.sizeOf(name),
      connectionTimeoutMillis: settings.connectionTimeoutMs ?? 10_000,
    };
    const replicaPools = replicas.map((replica, index) => {
      const replicaPool = new Pool(
        withStartupSettings(
          {
            connectionString: replica.url,
            max: replica.budget.sizeOf(name),
            connectionTimeoutMillis: Math.min(config.connectionTimeoutMillis!, REPLICA_CONNECT_TIMEOUT_MS),
          },
          session,
        ),
      );
      // pg's error carries its client; the message and code say all an operator needs.
      replicaPool.on('error', (error: Error & { code?: string }) =>
        logger.warn(
          { error: error.message, code: error.code, pool: name, replica: index + 1 },
          `${name} replica connection lost`,
        ),
      );
      replica.budget.track(name, replicaPool);
      return replicaPool;
    });
    let pool: Pool;
    if (transactionPooling && Object.keys(session).length > 0) {
      pool = new TransactionScopedSettingsPool(config, session);
    } else {
      pool = new Pool(withStartupSettings(config, session));
    }
    pool.on('error', (error) => logger.warn({ err: error, pool: name }, `${name} connection failed`));
    budget.track(name, pool);
    const opened = routing && replicaPools.length > 0 ? new RoutedPool(pool, routing, replicaPools) : pool;
    lifecycle.register(name, ShutdownPhase.database, () => opened.end());
    return opened;
  };
}

/** A pool whose `query` runs each statement in a transaction of its own with the pool's settings (`SET LOCAL`). */
class TransactionScopedSettingsPool extends Pool {
  private readonly begin: string;

  constructor(config: PoolConfig, settings: Record<string, string>) {
    super(config);
    const sets = Object.entries(settings).map(([key, value]) => `SET LOCAL ${key} = '${value}'`);
    this.begin = ['BEGIN', ...sets].join('; ');
  }

  // pg's overloads are typed one by one; this takes the promise forms (text + values, or a config) and refuses the others.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override async query(...args: any[]): Promise<any> {
    const [statement, values] = args as [string | QueryConfig, unknown[] | undefined];
    if (
      args.some((arg) => typeof arg === 'function') ||
      typeof (statement as { submit?: unknown }).submit === 'function'
    )
      throw new Error(
        'a pool with settings behind a transaction pooler takes promise queries only (no callbacks, streams)',
      );
    const client = await this.connect();
    let failed: Error | undefined;
    try {
      await client.query(this.begin);
      const result = await client.query(statement as QueryConfig, values);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => {
        failed = rollbackError;
      });
      throw error;
    } finally {
      client.release(failed);
    }
  }
}
