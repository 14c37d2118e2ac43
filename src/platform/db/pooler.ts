import { Client } from 'pg';
import type { Logger } from '../logging/logger';

/** `DATABASE_POOLER`: what sits between this process and Postgres. */
export type PoolerSetting = 'auto' | 'pgbouncer' | 'none';

/**
 * Whether consecutive transactions of one client connection may run on different server sessions: a transaction (or
 * statement) pooler such as PgBouncer in `pool_mode = transaction`. Decided by what the server's sessions do, not by a
 * name: client A runs a statement and lets go of its session; client B then opens a transaction. Direct to Postgres,
 * B always has a backend of its own and A keeps its one; behind a transaction pooler B is handed the session A just
 * released (a pooler reuses its most recently idle server connection), or A's next statement lands on another one.
 * Session pooling keeps every client on its session, so it counts as none (nothing breaks there).
 */
export async function detectTransactionPooler(url: string, timeoutMs = 5000): Promise<boolean> {
  const a = new Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  const b = new Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  const pid = async (client: Client) =>
    (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const probe = async () => {
    await a.connect();
    await b.connect();
    // A few rounds: another client of the pooler may take the released session first.
    for (let round = 0; round < 3; round++) {
      const first = await pid(a);
      await b.query('BEGIN');
      const other = await pid(b);
      const again = await pid(a);
      await b.query('ROLLBACK');
      if (other === first || again !== first) return true;
    }
    return false;
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([probe(), timeout]);
  } finally {
    clearTimeout(timer);
    await Promise.all([a.end().catch(() => undefined), b.end().catch(() => undefined)]);
  }
}

/** Postgres's answers when a named statement meets a session that did not prepare it (or prepared it already). */
const PREPARED_STATEMENT_ERRORS = new Set(['26000', '42P05']);

function isPreparedStatementError(error: unknown): boolean {
  const { code, driverError } = error as { code?: string; driverError?: { code?: string } };
  return PREPARED_STATEMENT_ERRORS.has(code ?? driverError?.code ?? '');
}

/**
 * What the process knows about a transaction pooler in front of one database server, and what follows from it for
 * statements: named prepared statements live in one server session, and PgBouncer before 1.21 does not carry them
 * across the sessions it hands a client (`prepared statement "..." does not exist`). Behind one, statements run
 * unnamed (parsed and planned on every call). With DATABASE_POOLER=auto and no pooler detected they run named, and the
 * first such error still switches this server to unnamed statements for good (and the statement is run again,
 * unnamed): a pooler the start-up probe could not see costs one retry, never an error.
 */
export class PoolerPolicy {
  private named: boolean;
  private fellBack = false;

  constructor(
    readonly options: {
      /** A transaction pooler is in front (declared, or detected at start). */
      transactionPooling: boolean;
      /** Whether named statements may be used at all (not on the embedded database's single session). */
      namedStatements: boolean;
      /** Fall back to unnamed statements on a prepared-statement error (DATABASE_POOLER=auto). */
      fallback: boolean;
      logger: Logger;
      server?: string;
    },
  ) {
    this.named = options.namedStatements && !options.transactionPooling;
  }

  get transactionPooling(): boolean {
    return this.options.transactionPooling || this.fellBack;
  }

  /** Whether statements run named (prepared once per connection) now. */
  get namedStatements(): boolean {
    return this.named;
  }

  /** Runs `query` named when statements may be named, unnamed otherwise (and after the fallback). */
  async run<T>(query: (named: boolean) => Promise<T>): Promise<T> {
    if (!this.named) return query(false);
    try {
      return await query(true);
    } catch (error) {
      if (!this.options.fallback || !isPreparedStatementError(error)) throw error;
      if (this.named) {
        this.named = false;
        this.fellBack = true;
        this.options.logger.warn(
          { err: error, server: this.options.server ?? 'primary' },
          'a named prepared statement failed the way it does behind a transaction pooler (PgBouncer): statements run unnamed from now on; set DATABASE_POOLER=pgbouncer to start that way',
        );
      }
      return query(false);
    }
  }
}
