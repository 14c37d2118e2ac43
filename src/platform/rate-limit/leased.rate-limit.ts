import type { RateLimitBucket, RateLimitCount, RateLimitSpend, RateLimitStore } from './rate-limit.store';

export interface LeasedRateLimitOptions {
  /**
   * The share of a quota one process may take from the shared counter ahead of use (0.02: 2 %). A key's lease is
   * `share x quota` points at most, and at most an eighth of what the shared counter had left at the last call, so
   * leases shrink as a window fills and every process falls back to exact counting near the quota. 0: never lease.
   */
  share: number;
  /** Default Date.now (tests move time). */
  now?: () => number;
}

/** Points this process took from a key's shared counter and has not spent yet; they lapse with the window. */
interface Lease {
  quota: number;
  available: number;
  /** The shared counter's count after the last batch, less what this process has spent of it since (an estimate). */
  consumed: number;
  /** What the shared counter had left after the last batch. */
  sharedRemaining: number;
  expiresAt: number;
}

/** Below this many points a lease is not worth its bookkeeping: the process counts each operation on the store. */
const MIN_LEASE = 2;
/** A lease is at most this fraction of what the shared counter had left, so the last points stay for everyone. */
const REMAINING_DIVISOR = 8;
/** Past this many keys the expired leases are swept on the next batch. */
const SWEEP_AT = 10_000;

/**
 * Counts most operations without a round trip: each process takes a key's points from the shared store in batches
 * (one consume of what the operation needs plus a lease) and spends the lease locally until it runs out or its
 * window ends. Never admits more than the quota across processes: every admitted point was taken from the shared
 * counter first. What it costs is precision the other way: another process may be refused while this one still holds
 * unspent points, at most `share x quota` per process and key, and less near the quota. A quota too small to lease
 * from (`share x quota < 2`) is counted exactly, operation by operation.
 */
export class LeasedRateLimitStore implements RateLimitStore {
  readonly driver: RateLimitStore['driver'];
  private readonly leases = new Map<string, Lease>();
  private readonly batches = new Map<string, Promise<unknown>>();
  private readonly now: () => number;

  constructor(
    private readonly inner: RateLimitStore,
    private readonly options: LeasedRateLimitOptions,
  ) {
    this.driver = inner.driver;
    this.now = options.now ?? Date.now;
  }

  async consume(bucket: RateLimitBucket, key: string, points: number): Promise<RateLimitCount> {
    const id = leaseId(bucket, key);
    const local = this.spendFromLease(id, points);
    if (local) return local;
    // Another operation of this key is taking a batch: its lease may cover this one too.
    const batch = this.batches.get(id);
    if (batch) {
      await batch.catch(() => undefined);
      const covered = this.spendFromLease(id, points);
      if (covered) return covered;
    }
    const taking = this.takeBatch(bucket, key, id, points);
    this.batches.set(id, taking);
    try {
      return await taking;
    } finally {
      if (this.batches.get(id) === taking) this.batches.delete(id);
    }
  }

  spendLocally(spends: readonly RateLimitSpend[]): boolean {
    for (let i = 0; i < spends.length; i++) {
      const { bucket, key, points } = spends[i]!;
      const lease = this.liveLease(leaseId(bucket, key));
      if (lease && lease.available >= points) {
        lease.available -= points;
        lease.consumed += points;
        continue;
      }
      // All or none: give back what this call took so far (the same lease may be named twice).
      for (let j = i - 1; j >= 0; j--) {
        const spent = spends[j]!;
        const taken = this.leases.get(leaseId(spent.bucket, spent.key))!;
        taken.available += spent.points;
        taken.consumed -= spent.points;
      }
      return false;
    }
    return true;
  }

  async refund(bucket: RateLimitBucket, key: string, points: number): Promise<void> {
    const lease = this.liveLease(leaseId(bucket, key));
    if (!lease) return this.inner.refund(bucket, key, points);
    // Points of a lease (or that would refill one) stay with this process, counted in the shared store all along.
    lease.available += points;
    lease.consumed -= points;
  }

  async peek(bucket: RateLimitBucket, key: string): Promise<RateLimitCount> {
    const count = await this.inner.peek(bucket, key);
    const unspent = this.liveLease(leaseId(bucket, key))?.available ?? 0;
    if (unspent === 0) return count;
    const consumed = Math.max(0, count.consumed - unspent);
    return { ...count, consumed, remaining: Math.max(0, bucket.quota - consumed) };
  }

  private liveLease(id: string): Lease | undefined {
    const lease = this.leases.get(id);
    if (lease && lease.expiresAt <= this.now()) {
      this.leases.delete(id);
      return undefined;
    }
    return lease;
  }

  private spendFromLease(id: string, points: number): RateLimitCount | undefined {
    const lease = this.liveLease(id);
    if (!lease || lease.available < points) return undefined;
    lease.available -= points;
    lease.consumed += points;
    return {
      admitted: true,
      consumed: lease.consumed,
      remaining: Math.max(0, lease.quota - lease.consumed),
      resetMs: lease.expiresAt - this.now(),
    };
  }

  private leaseSize(bucket: RateLimitBucket, sharedRemaining: number | undefined): number {
    let size = Math.floor(bucket.quota * this.options.share);
    if (sharedRemaining !== undefined) size = Math.min(size, Math.floor(sharedRemaining / REMAINING_DIVISOR));
    return size >= MIN_LEASE ? size : 0;
  }

  /**
   * One consume on the shared counter of what the operation needs beyond this process's unspent points, plus a new
   * lease. Over the quota, the lease shrinks to what fits (the excess refunded at once); when not even the operation
   * fits, the lease is given back and the refusal stands with the operation's points counted, as the store's contract
   * says (the caller refunds them).
   */
  private async takeBatch(
    bucket: RateLimitBucket,
    key: string,
    id: string,
    points: number,
  ): Promise<RateLimitCount> {
    const old = this.liveLease(id);
    const have = old?.available ?? 0;
    const need = points - have;
    const size = this.leaseSize(bucket, old?.sharedRemaining);
    // The old lease's points now belong to this operation: spent if it is admitted, refunded with it if not.
    if (old) old.available = 0;
    // The counter's window ends `resetMs` after Redis answered, so no earlier than that long after the call began:
    // a lease timed from here never outlives the points it holds.
    const calledAt = this.now();
    const count = await this.inner.consume(bucket, key, need + size);
    let lease = size;
    if (!count.admitted) {
      const over = count.consumed - bucket.quota;
      lease = Math.max(0, size - over);
      const giveBack = Math.min(size, over);
      if (giveBack > 0) await this.inner.refund(bucket, key, giveBack);
      if (over > size) {
        this.leases.delete(id);
        return { ...count, consumed: count.consumed - size, remaining: 0 };
      }
    }
    // What the shared counter holds for operations (this one included), without the lease this process keeps.
    const consumed = count.consumed - size;
    if (size > 0) {
      if (this.leases.size >= SWEEP_AT) this.sweep();
      this.leases.set(id, {
        quota: bucket.quota,
        available: lease,
        consumed,
        sharedRemaining: Math.max(0, bucket.quota - consumed - lease),
        expiresAt: calledAt + count.resetMs,
      });
    } else {
      this.leases.delete(id);
    }
    return {
      admitted: true,
      consumed,
      remaining: Math.max(0, bucket.quota - consumed),
      resetMs: count.resetMs,
    };
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, lease] of this.leases) if (lease.expiresAt <= now) this.leases.delete(id);
  }
}

function leaseId(bucket: RateLimitBucket, key: string): string {
  return `${bucket.name}|${bucket.quota}|${bucket.windowSeconds}|${key}`;
}
