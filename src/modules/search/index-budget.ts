/** Why an index left the process (the `crm_search_index_evictions_total` label). */
export type EvictionReason = 'budget' | 'idle' | 'oversized';

/** An index the budget gave up to make room: the caller drops it. */
export interface Eviction {
  key: string;
  bytes: number;
}

export type Admission =
  { admitted: true; evicted: Eviction[] } | { admitted: false; why: 'oversized' | 'full' };

interface Account {
  /** Measured bytes of the index held for the key (0: none). */
  heldBytes: number;
  /** Expected bytes of a build of the key in flight (0: none); never evicted. */
  buildingBytes: number;
}

/**
 * The byte budget of the counting indexes of one process, by (company, type) key, least recently used first. It only
 * counts and chooses: the registry measures, builds and drops. The sum of held indexes and builds in flight never
 * passes `maxBytes`: a build reserves its expected size before it loads, and making room evicts the least recently
 * used held indexes (never one being built, never the key asking).
 */
export class IndexBudget {
  /** In use order, least recent first: a use re-inserts its key. */
  private readonly accounts = new Map<string, Account>();
  private total = 0;

  constructor(readonly maxBytes: number) {
    if (!(maxBytes > 0)) throw new Error(`index budget must be positive, got ${maxBytes}`);
  }

  /** Held and reserved bytes now. */
  get bytes(): number {
    return this.total;
  }

  /** Keys holding an index, and builds in flight. */
  counts(): { held: number; building: number } {
    let held = 0;
    let building = 0;
    for (const account of this.accounts.values()) {
      if (account.heldBytes > 0) held++;
      if (account.buildingBytes > 0) building++;
    }
    return { held, building };
  }

  heldBytes(key: string): number {
    return this.accounts.get(key)?.heldBytes ?? 0;
  }

  /** The key was used: it becomes the most recently used. */
  touch(key: string): void {
    const account = this.accounts.get(key);
    if (!account) return;
    this.accounts.delete(key);
    this.accounts.set(key, account);
  }

  /** Room for a build of `key` expected to hold `bytes`, or why not (nothing is evicted when refused). */
  reserve(key: string, bytes: number): Admission {
    if (bytes > this.maxBytes) return { admitted: false, why: 'oversized' };
    const account = this.account(key);
    const evicted = this.makeRoom(bytes - account.buildingBytes, key);
    if (!evicted) return { admitted: false, why: 'full' };
    this.total += bytes - account.buildingBytes;
    account.buildingBytes = bytes;
    this.touch(key);
    return { admitted: true, evicted };
  }

  /** A build of `key` ended (done or failed): its reservation is given back. */
  cancel(key: string): void {
    const account = this.accounts.get(key);
    if (!account) return;
    this.total -= account.buildingBytes;
    account.buildingBytes = 0;
    if (account.heldBytes === 0) this.accounts.delete(key);
  }

  /**
   * `key` now holds an index of `bytes` (a finished build, or a held index measured again): others are evicted until
   * it fits. Refused, the key holds nothing and the caller drops its index (a build in flight keeps its reservation).
   */
  hold(key: string, bytes: number): Admission {
    const account = this.account(key);
    this.total -= account.heldBytes;
    account.heldBytes = 0;
    if (bytes > this.maxBytes) return this.refuse(key, account, 'oversized');
    const evicted = this.makeRoom(bytes, key);
    if (!evicted) return this.refuse(key, account, 'full');
    account.heldBytes = bytes;
    this.total += bytes;
    this.touch(key);
    return { admitted: true, evicted };
  }

  /** The key's index is gone (dropped by the caller); a build in flight keeps its reservation. Returns its bytes. */
  release(key: string): number {
    const account = this.accounts.get(key);
    if (!account) return 0;
    const bytes = account.heldBytes;
    this.total -= bytes;
    account.heldBytes = 0;
    if (account.buildingBytes === 0) this.accounts.delete(key);
    return bytes;
  }

  clear(): void {
    this.accounts.clear();
    this.total = 0;
  }

  private account(key: string): Account {
    let account = this.accounts.get(key);
    if (!account) {
      account = { heldBytes: 0, buildingBytes: 0 };
      this.accounts.set(key, account);
    }
    return account;
  }

  private refuse(key: string, account: Account, why: 'oversized' | 'full'): Admission {
    if (account.buildingBytes === 0) this.accounts.delete(key);
    return { admitted: false, why };
  }

  /**
   * Evicts least recently used held indexes (not `except`'s, not those of builds in flight) until `bytes` more fit;
   * null, evicting nothing, when they cannot.
   */
  private makeRoom(bytes: number, except: string): Eviction[] | null {
    let over = this.total + bytes - this.maxBytes;
    if (over <= 0) return [];
    const chosen: Eviction[] = [];
    for (const [key, account] of this.accounts) {
      if (key === except || account.buildingBytes > 0 || account.heldBytes === 0) continue;
      chosen.push({ key, bytes: account.heldBytes });
      over -= account.heldBytes;
      if (over <= 0) break;
    }
    if (over > 0) return null;
    for (const { key } of chosen) this.release(key);
    return chosen;
  }
}
