import type { Logger } from '../../platform/logging/logger';
import type { RecordType } from '../kernel';
import type { CountingIndex } from './counting-index';
import { IndexBudget, type Admission, type EvictionReason } from './index-budget';

export interface KeepingMetrics {
  evictions(reason: EvictionReason): void;
}

/** The registry's record of one (company, type) key, as far as keeping it is concerned. */
interface KeptEntry {
  index?: CountingIndex;
  building?: Promise<CountingIndex>;
}

/** A build refused room before it loaded: its searches are answered from SQL. */
export class IndexOverBudget extends Error {
  constructor(
    readonly key: string,
    readonly expectedBytes: number,
    readonly why: 'oversized' | 'full',
  ) {
    super(
      why === 'oversized'
        ? `search index ${key} would need ${expectedBytes} bytes, more than the whole budget`
        : `search index ${key} needs ${expectedBytes} bytes the builds in flight hold`,
    );
  }
}

/** How long an index found larger than the whole budget is not tried again. */
const OVERSIZED_RETRY_MS = 10 * 60_000;

/**
 * Bytes a record adds beyond the arrays a new index allocates for its row count (text postings, dictionaries), until
 * a build of the type has been measured in this process (`search.indexMemory` bench: 62 a lead and 48 a deal,
 * rounded up; a reservation too high at worst refuses a build that would have fit).
 */
const EXTRA_BYTES_PER_ROW: Record<RecordType, number> = { LEAD: 70, DEAL: 55, ACCOUNT: 40 };

/** A build of fewer records says little of what one more record costs (dictionaries and headers dominate). */
const LEARN_FROM_ROWS = 10_000;

function keyParts(key: string): { companyId: string; type: string } {
  const at = key.lastIndexOf(':');
  return { companyId: key.slice(0, at), type: key.slice(at + 1) };
}

/**
 * Keeps the registry's indexes within `SEARCH_INDEX_MAX_MB`: reserves a build's expected bytes before it loads (making
 * room by evicting the least recently used), holds each index at its measured bytes once built and after it grows,
 * and drops what does not fit. A dropped index is rebuilt by the next search of its key, which meanwhile (like any
 * key without an index) is answered from SQL.
 */
export class IndexKeeping {
  private readonly budget: IndexBudget;
  /** Keys whose index alone is over the budget, and when to try again. */
  private readonly oversized = new Map<string, number>();
  /** Keys already logged as over the budget (once per process). */
  private readonly loggedOversized = new Set<string>();
  private readonly extraPerRow = new Map<RecordType, number>();
  /** What each build in flight reserved: the bytes its index had when allocated, and its rows. */
  private readonly reservations = new Map<string, { allocatedBytes: number; rows: number }>();

  constructor(
    private readonly entries: Map<string, KeptEntry>,
    private readonly logger: Logger,
    private readonly metrics: KeepingMetrics,
    maxBytes: number,
  ) {
    this.budget = new IndexBudget(maxBytes);
  }

  memory(): { bytes: number; maxBytes: number; held: number; building: number } {
    return { bytes: this.budget.bytes, maxBytes: this.budget.maxBytes, ...this.budget.counts() };
  }

  touch(key: string): void {
    this.budget.touch(key);
  }

  /** True while the key's index is known to be larger than the whole budget. */
  tooLarge(key: string): boolean {
    const retryAt = this.oversized.get(key);
    if (retryAt === undefined) return false;
    if (Date.now() < retryAt) return true;
    this.oversized.delete(key);
    return false;
  }

  /**
   * Before a build of `rows` records loads into `index` (allocated for them): reserves its expected bytes, evicting
   * others, or throws IndexOverBudget.
   */
  reserve(key: string, index: CountingIndex, rows: number): void {
    const allocatedBytes = index.bytes();
    const expected = Math.ceil(
      allocatedBytes + rows * (this.extraPerRow.get(index.type) ?? EXTRA_BYTES_PER_ROW[index.type]),
    );
    const admission = this.budget.reserve(key, expected);
    if (!admission.admitted) {
      if (admission.why === 'oversized') this.markOversized(key, expected, 'expected');
      throw new IndexOverBudget(key, expected, admission.why);
    }
    this.reservations.set(key, { allocatedBytes, rows });
    this.evicted(admission);
  }

  /** A build done: its reservation becomes the index's measured bytes (or the index is dropped). */
  built(key: string, entry: KeptEntry, index: CountingIndex): void {
    const reserved = this.reservations.get(key);
    this.cancel(key);
    const bytes = index.bytes();
    // Learned from builds large enough for per-record costs to outweigh the fixed ones.
    if (reserved && reserved.rows >= LEARN_FROM_ROWS)
      this.extraPerRow.set(index.type, Math.max(0, (bytes - reserved.allocatedBytes) / reserved.rows));
    if (this.entries.get(key) === entry) this.hold(key, bytes);
  }

  /** A build refused room: nothing is held for it, and the next search of the key asks again. */
  refused(key: string, entry: KeptEntry): void {
    this.failed(key, entry);
    if (this.entries.get(key) === entry && !entry.index) this.entries.delete(key);
  }

  /**
   * A build ended without an index: its reservation is given back, and so are the bytes of an index the entry no
   * longer holds (a catch-up too far behind let go of it to rebuild).
   */
  failed(key: string, entry: KeptEntry): void {
    this.cancel(key);
    if (!entry.index) this.budget.release(key);
  }

  private cancel(key: string): void {
    this.reservations.delete(key);
    this.budget.cancel(key);
  }

  /** The key's held index is measured again (after a catch-up or a search grew it). */
  measure(key: string): void {
    const entry = this.entries.get(key);
    if (entry?.index) this.hold(key, entry.index.bytes());
  }

  /** Drops the key's index (its searches go to SQL until a search builds it again); logged when one was held. */
  evict(key: string, reason: EvictionReason): void {
    this.drop(key, this.budget.release(key), reason);
  }

  clear(): void {
    this.budget.clear();
    this.reservations.clear();
  }

  /** Holds the key's index at `bytes`, evicting others; an index that does not fit is dropped (the key holds nothing). */
  private hold(key: string, bytes: number): void {
    const admission = this.budget.hold(key, bytes);
    if (admission.admitted) return this.evicted(admission);
    if (admission.why === 'oversized') this.markOversized(key, bytes, 'measured');
    this.drop(key, bytes, admission.why === 'oversized' ? 'oversized' : 'budget');
  }

  private evicted(admission: Admission & { admitted: true }): void {
    for (const { key, bytes } of admission.evicted) this.drop(key, bytes, 'budget');
  }

  /** Forgets the key's index (a build in flight goes on), counted and logged when one was held. */
  private drop(key: string, bytes: number, reason: EvictionReason): void {
    const entry = this.entries.get(key);
    if (entry && !entry.building) this.entries.delete(key);
    if (!entry?.index) return;
    entry.index = undefined;
    this.metrics.evictions(reason);
    this.logger.info({ ...keyParts(key), bytes, reason }, 'search index evicted');
  }

  /** Logged once per key and process: the company's searches of this type are answered from SQL. */
  private markOversized(key: string, bytes: number, how: 'expected' | 'measured'): void {
    this.oversized.set(key, Date.now() + OVERSIZED_RETRY_MS);
    if (this.loggedOversized.has(key)) return;
    this.loggedOversized.add(key);
    this.logger.warn(
      { ...keyParts(key), bytes, how, maxBytes: this.budget.maxBytes },
      'search index alone is larger than SEARCH_INDEX_MAX_MB: not kept; its searches are answered from SQL',
    );
  }
}
