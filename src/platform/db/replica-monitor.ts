import { Pool } from 'pg';
import type { Logger } from '../logging/logger';
import { redactCredentials } from '../logging/redact';
import { walPosition, type WalPosition } from './wal-position';

export interface ReplicaMonitorOptions {
  replicaUrls: readonly string[];
  /** The primary's WAL position now (`pg_current_wal_lsn()`). */
  primaryPosition: () => Promise<WalPosition>;
  /** A replica further behind than this is not read from. */
  maxLagMs: number;
  /** How often each replica is asked how far it has replayed. */
  checkIntervalMs: number;
  logger: Logger;
}

/** A replica as the last check saw it. */
export interface ReplicaState {
  readonly index: number;
  readonly name: string;
  readonly url: string;
  up: boolean;
  /** Everything up to here is visible on the replica. */
  replayed?: WalPosition;
  /** How long ago the primary had written only what the replica has replayed (0 when it has caught up). */
  lagMs: number;
  /** Why it is not read from, when it is not. */
  problem?: string;
}

/** The primary's position at a check: the replica has replayed `position` once its replay reaches it. */
interface PrimarySample {
  at: number;
  position: WalPosition;
}

/**
 * Knows, for each read replica, whether it is up and how far behind the primary it is. Lag is measured in time the
 * exact way, from the primary's WAL position sampled at every check: a replica whose replay has reached the position
 * the primary had at time t is at most `now - t` behind. (`now() - pg_last_xact_replay_timestamp()` grows on an idle
 * primary, and would skip a replica that is in fact current.)
 */
export class ReplicaMonitor {
  readonly replicas: ReplicaState[];
  private readonly pools: Pool[];
  private readonly samples: PrimarySample[] = [];
  private timer?: NodeJS.Timeout;
  private checking?: Promise<void>;

  constructor(private readonly options: ReplicaMonitorOptions) {
    this.replicas = options.replicaUrls.map((url, index) => ({
      index,
      name: `replica-${index + 1}`,
      url,
      up: false,
      lagMs: Number.POSITIVE_INFINITY,
      problem: 'not checked yet',
    }));
    const timeoutMs = Math.max(250, Math.min(options.checkIntervalMs * 2, 2000));
    this.pools = options.replicaUrls.map((url, index) => {
      const pool = new Pool({
        connectionString: url,
        max: 1,
        connectionTimeoutMillis: timeoutMs,
        statement_timeout: timeoutMs,
        idleTimeoutMillis: 0,
      });
      pool.on('error', (error) =>
        options.logger.debug(
          { err: error, replica: this.replicas[index]!.name },
          'replica check connection lost',
        ),
      );
      return pool;
    });
  }

  /** Checks once (so the first reads already know the replicas), then every interval. */
  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => void this.check(), this.options.checkIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.checking?.catch(() => undefined);
    await Promise.all(this.pools.map((pool) => pool.end().catch(() => undefined)));
  }

  /** Replicas that may be read from now: up, and no further behind than the limit. */
  usable(): ReplicaState[] {
    return this.replicas.filter((replica) => replica.up && replica.lagMs <= this.options.maxLagMs);
  }

  /** A read found the replica unreachable: skip it until a check finds it answering again. */
  markDown(index: number, error: unknown): void {
    const replica = this.replicas[index];
    if (!replica?.up) return;
    replica.up = false;
    replica.problem = error instanceof Error ? error.message : String(error);
    this.options.logger.warn(
      { replica: replica.name, err: error },
      'read replica failed a read; reading from the primary until it answers again',
    );
  }

  check(): Promise<void> {
    this.checking ??= this.checkAll().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async checkAll(): Promise<void> {
    const now = Date.now();
    try {
      this.samples.push({ at: now, position: await this.options.primaryPosition() });
    } catch {
      // Without the primary's position no lag can be known: replicas keep their last state until the next check.
      return;
    }
    // Old enough to tell any replica within the limit from one beyond it.
    const keepMs = Math.max(this.options.maxLagMs * 2, this.options.checkIntervalMs * 4, 10_000);
    while (this.samples.length > 2 && this.samples[0]!.at < now - keepMs) this.samples.shift();
    await Promise.all(this.replicas.map((replica) => this.checkReplica(replica, now)));
  }

  private async checkReplica(replica: ReplicaState, now: number): Promise<void> {
    const wasUp = replica.up;
    try {
      const { rows } = await this.pools[replica.index]!.query<{ recovery: boolean; replayed: string | null }>(
        'SELECT pg_is_in_recovery() AS recovery, pg_last_wal_replay_lsn()::text AS replayed',
      );
      const { recovery, replayed } = rows[0]!;
      if (!recovery || !replayed) {
        // Promoted (or never a standby): its history may have left the primary's, so its positions mean nothing here.
        this.setDown(replica, recovery ? 'has replayed nothing yet' : 'is not in recovery (not a standby)');
        return;
      }
      replica.replayed = walPosition(replayed);
      replica.lagMs = this.lagOf(replica.replayed, now);
      replica.up = true;
      replica.problem =
        replica.lagMs > this.options.maxLagMs
          ? `lags ${replica.lagMs} ms (limit ${this.options.maxLagMs})`
          : undefined;
      if (!wasUp)
        this.options.logger.info(
          { replica: replica.name, url: redactCredentials(replica.url), lagMs: replica.lagMs },
          'read replica answering',
        );
    } catch (error) {
      this.setDown(replica, error instanceof Error ? error.message : String(error));
    }
  }

  private setDown(replica: ReplicaState, problem: string): void {
    if (replica.up || replica.problem !== problem)
      this.options.logger.warn({ replica: replica.name, problem }, 'read replica not used');
    replica.up = false;
    replica.problem = problem;
  }

  /**
   * Time since the newest sample the replica has replayed past (an upper bound: it may have replayed more); beyond
   * the oldest sample's age when it has replayed past none.
   */
  private lagOf(replayed: WalPosition, now: number): number {
    const latest = this.samples.at(-1)!;
    if (replayed >= latest.position) return 0;
    for (let i = this.samples.length - 2; i >= 0; i--) {
      if (replayed >= this.samples[i]!.position) return now - this.samples[i]!.at;
    }
    return now - this.samples[0]!.at + this.options.checkIntervalMs;
  }
}
