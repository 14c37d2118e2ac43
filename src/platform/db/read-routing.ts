import { AsyncLocalStorage } from 'node:async_hooks';
import type { Pool } from 'pg';
import type { Counter } from 'prom-client';
import type { DataSource } from 'typeorm';
import type { Logger } from '../logging/logger';
import type { Metrics } from '../metrics/metrics';
import type { RedisClient } from '../redis/redis.connection';
import { ServiceUnavailableError, classifyDatabaseError } from './db-errors';
import type { ReplicaMonitor, ReplicaState } from './replica-monitor';
import type { WalPosition } from './wal-position';

/** Where a read runs: the primary, or one read replica (its index in DATABASE_REPLICA_URLS). */
export interface ReadTarget {
  readonly name: string;
  readonly replica?: number;
}

export const PRIMARY: ReadTarget = Object.freeze({ name: 'primary' });

/** Whose reads these are: a user of a company (the request's principal, or the user a job runs for). */
export interface Reader {
  readonly userId: string;
  readonly companyId: string;
}

export const ReadMetric = {
  reads: 'crm_db_reads_total',
  replicaLag: 'crm_db_replica_lag_seconds',
  replicaUp: 'crm_db_replica_up',
} as const;

/**
 * The newest WAL position each user has written (read-your-writes): in Redis, so every gateway and worker knows it,
 * and in this process (all it has without Redis). Kept as long as a replica within the lag limit could still be
 * behind it.
 */
export class WriteFloors {
  private readonly local = new Map<string, { position: WalPosition; expiresAt: number }>();

  constructor(
    private readonly redis: RedisClient | undefined,
    private readonly ttlMs: number,
  ) {}

  private key(reader: Reader): string {
    return `crm:reads:floor:${reader.companyId}:${reader.userId}`;
  }

  async raise(reader: Reader, position: WalPosition): Promise<void> {
    const key = this.key(reader);
    const known = this.local.get(key);
    if (!known || known.position < position)
      this.local.set(key, { position, expiresAt: Date.now() + this.ttlMs });
    if (this.local.size > 10_000) this.sweep();
    // Positions compare as text (fixed-width hex): the floor only ever rises, whichever gateway writes last.
    await this.redis?.eval(
      `local current = redis.call('GET', KEYS[1])
       if (not current) or current < ARGV[1] then
         redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
       else
         redis.call('PEXPIRE', KEYS[1], ARGV[2])
       end
       return 1`,
      1,
      key,
      position,
      String(this.ttlMs),
    );
  }

  /** The reader's floor, if any; throws when Redis cannot say (the caller reads from the primary then). */
  async get(reader: Reader): Promise<WalPosition | undefined> {
    const key = this.key(reader);
    const known = this.local.get(key);
    const local = known && known.expiresAt > Date.now() ? known.position : undefined;
    if (!this.redis) return local;
    const shared = (await this.redis.get(key)) ?? undefined;
    return local !== undefined && (shared === undefined || local > shared) ? local : shared;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, value] of this.local) if (value.expiresAt <= now) this.local.delete(key);
  }
}

/** Runs one statement and returns its rows (the DataSource's `query`). */
export type RowQuery = <R>(sql: string, params?: unknown[]) => Promise<R[]>;

/** One connection held for several statements (a transaction, a cursor); released once, with the error that broke it. */
export interface RowClient {
  query: RowQuery;
  release(error?: Error): Promise<void>;
}

/** One of the DataSource's connections as a RowClient (the primary's side of `ReadRouting.connect`). */
export async function dataSourceConnection(dataSource: DataSource): Promise<RowClient> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  return { query: (sql, params) => runner.query(sql, params), release: () => runner.release() };
}

export interface ReadRoutingOptions {
  /** The DataSource's statements, for `query` on the primary. */
  primary: RowQuery;
  /** One of the DataSource's connections, for `connect` on the primary. */
  primaryConnection: () => Promise<RowClient>;
  /** Absent without DATABASE_REPLICA_URLS: every read is the primary's, at no cost. */
  monitor?: ReplicaMonitor;
  /** Per replica, the pool `query` uses inside a read routed there (the DataSource's pool's counterpart). */
  replicaPools?: readonly Pool[];
  floors?: WriteFloors;
  /** The primary's WAL position now. */
  primaryPosition?: () => Promise<WalPosition>;
  logger: Logger;
  metrics: Metrics;
}

/**
 * Sends the reads that tolerate a replica to one, and keeps read-your-writes exact: after a user's write commits, the
 * primary's WAL position is that user's floor, and their reads go to a replica only once it has replayed that far
 * (otherwise to the primary). A read runs inside `read()`; the pools of `RoutedPool` follow the target chosen for it,
 * so every statement of one read (and of one request: the choice is kept per principal object) sees one server.
 * A replica that fails a read with a connection error is skipped and the read runs again on the primary.
 */
export class ReadRouting {
  private readonly scope = new AsyncLocalStorage<ReadTarget>();
  private readonly pinned = new WeakSet<object>();
  private readonly chosen = new WeakMap<object, Promise<ReadTarget>>();
  private readonly reads: Counter<'target'>;

  constructor(private readonly options: ReadRoutingOptions) {
    const { metrics, monitor } = options;
    this.reads = metrics.declare({
      type: 'counter',
      name: ReadMetric.reads,
      help: 'Reads that could go to a replica, by where they ran (primary, or replica)',
      labelNames: ['target'],
    }) as Counter<'target'>;
    // Declared without replicas too (no series then), so dashboards and alerts find them everywhere.
    const perReplica = (value: (replica: ReplicaState) => number) => async () =>
      (monitor?.replicas ?? []).map((replica) => ({
        labels: { replica: replica.name },
        value: value(replica),
      }));
    metrics.declare({
      type: 'gauge',
      name: ReadMetric.replicaLag,
      help: 'How far each read replica is behind the primary (-1 while it is down)',
      labelNames: ['replica'],
      collect: perReplica((replica) => (replica.up ? replica.lagMs / 1000 : -1)),
    });
    metrics.declare({
      type: 'gauge',
      name: ReadMetric.replicaUp,
      help: 'Whether each read replica answers its checks (1) or not (0)',
      labelNames: ['replica'],
      collect: perReplica((replica) => (replica.up ? 1 : 0)),
    });
  }

  /** The target of the read running now; the primary outside any read (writes, and everything else). */
  current(): ReadTarget {
    return this.scope.getStore() ?? PRIMARY;
  }

  /**
   * One statement of a read, where the read runs: for module code that reads through the DataSource (a prepared
   * statement's config, see prepared-statement.ts, passes through as it is).
   */
  async query<R>(sql: string, params: unknown[] = []): Promise<R[]> {
    const replica = this.current().replica;
    const pool = replica === undefined ? undefined : this.options.replicaPools?.[replica];
    if (!pool) return this.options.primary<R>(sql, params);
    return (await pool.query(sql as never, params)).rows as R[];
  }

  /** A connection of its own for a read's transaction or cursor, where the read runs. */
  async connect(): Promise<RowClient> {
    const replica = this.current().replica;
    const pool = replica === undefined ? undefined : this.options.replicaPools?.[replica];
    if (!pool) return this.options.primaryConnection();
    const client = await pool.connect();
    return {
      query: async <R>(sql: string, params?: unknown[]) => (await client.query(sql, params)).rows as R[],
      release: async (error?: Error) => client.release(error),
    };
  }

  /**
   * Runs `run` on the target chosen for `reader` (nested reads keep the outer one's). A replica that turns out to be
   * unreachable is marked down and `run` runs again on the primary, so a replica lost mid-load fails no read
   * (`canRetry` says whether it still may: not once a stream has sent part of its answer).
   */
  async read<T>(
    reader: Reader | undefined,
    run: () => Promise<T>,
    { canRetry = () => true }: { canRetry?: () => boolean } = {},
  ): Promise<T> {
    if (!this.options.monitor || this.scope.getStore()) return run();
    const target = await this.choose(reader);
    if (target.replica === undefined) return this.onPrimary(reader, run);
    this.reads.inc({ target: 'replica' });
    try {
      return await this.scope.run(target, run);
    } catch (error) {
      if (!replicaFailed(error)) throw error;
      this.options.monitor.markDown(target.replica, error);
      if (!canRetry()) throw error;
      if (reader) this.chosen.set(reader, Promise.resolve(PRIMARY));
      return this.onPrimary(reader, run);
    }
  }

  /**
   * A read on the primary: what it saw becomes the reader's floor, so a replica that comes back (or is picked) behind
   * it cannot show them an older view next.
   */
  private async onPrimary<T>(reader: Reader | undefined, run: () => Promise<T>): Promise<T> {
    this.reads.inc({ target: 'primary' });
    const result = await this.scope.run(PRIMARY, run);
    // A mutation's reads are followed by its noteWrite.
    if (reader && !this.pinned.has(reader)) await this.noteWrite(reader);
    return result;
  }

  /** Every read of this principal object (one request: a mutation's own reads) goes to the primary. */
  pinToPrimary(reader: Reader): void {
    if (this.options.monitor) this.pinned.add(reader);
  }

  /**
   * After `reader`'s write committed (or a read of theirs ran on the primary): their later reads, in any process, wait
   * for a replica that has replayed what they saw. Must finish before the answer is sent.
   */
  async noteWrite(reader: Reader): Promise<void> {
    const { monitor, floors, primaryPosition } = this.options;
    if (!monitor || !floors || !primaryPosition) return;
    try {
      await floors.raise(reader, await primaryPosition());
    } catch (error) {
      // Later reads that cannot read the floor go to the primary; one that reads an older floor could miss this
      // write: say so loudly.
      this.options.logger.warn(
        { err: error, userId: reader.userId },
        'could not record a write for read-your-writes; this user may briefly read an older replica',
      );
    }
  }

  private choose(reader: Reader | undefined): Promise<ReadTarget> {
    if (!reader) return Promise.resolve(this.pick(undefined, undefined));
    if (this.pinned.has(reader)) return Promise.resolve(PRIMARY);
    let choice = this.chosen.get(reader);
    if (!choice) {
      choice = this.chooseFor(reader);
      this.chosen.set(reader, choice);
    }
    return choice;
  }

  private async chooseFor(reader: Reader): Promise<ReadTarget> {
    if (this.options.monitor!.usable().length === 0) return PRIMARY;
    let floor: WalPosition | undefined;
    try {
      floor = await this.options.floors?.get(reader);
    } catch {
      return PRIMARY; // Without the floor no replica can be shown to hold this user's writes.
    }
    return this.pick(reader, floor);
  }

  /** A usable replica that has replayed `floor`; the same one for a user while it stays usable (reads move forward). */
  private pick(reader: Reader | undefined, floor: WalPosition | undefined): ReadTarget {
    const eligible = this.options
      .monitor!.usable()
      .filter(
        (replica) => floor === undefined || (replica.replayed !== undefined && replica.replayed >= floor),
      );
    if (eligible.length === 0) return PRIMARY;
    const replica = eligible[reader ? spread(reader.userId) % eligible.length : 0]!;
    return { name: replica.name, replica: replica.index };
  }
}

/** A small, stable number from a user id, to spread users over replicas. */
function spread(id: string): number {
  let hash = 0;
  for (let i = 0; i < id.length; i++) hash = (hash * 31 + id.charCodeAt(i)) | 0;
  return Math.abs(hash);
}

/** The replica could not serve the read at all (down, restarting, or its replay cancelled the statement). */
function replicaFailed(error: unknown): boolean {
  if (classifyDatabaseError(error) instanceof ServiceUnavailableError) return true;
  const message = error instanceof Error ? error.message : '';
  return /conflict with recovery/i.test(message);
}
