import { criteriaMatch, type CriteriaCondition } from '../sharing';
import { FIELD_CATALOG, type RecordFilter, type RecordType } from '../kernel';
import { andInto, popcount, tallyCodes } from './bitset';
import type { DataVersion } from './data-version';
import { bucketShape, countDatesByRow, type BucketShape, type FacetCounts } from './facet-counts';
import {
  growColumn,
  newColumn,
  resized,
  writeText,
  type CodeColumn,
  type Column,
  type NumberColumn,
} from './index-columns';
import { filterRows } from './index-filters';
import { topRows } from './index-order';
import type { FacetSpec, SeekPoint, SortTerm } from './search.model';
import { TextPostings } from './search.text';
import { ARRAY_SLOT_BYTES, MAP_ENTRY_BYTES, stringBytes, typedBytes } from './heap-sizes';
import { hex8, uuidWords } from './uuid-words';

/**
 * A record as the index reads it: the id, each field's canonical value (see `canonicalSql`) by field name, and
 * `__lexemes`, its search document's lexemes separated by spaces.
 */
export type CanonicalRow = { id: string } & Record<string, string | number | null>;

/** A facet's bucket per row, kept while searches ask for it (precomputed facets). */
interface BucketCodes extends Omit<BucketShape, 'id'> {
  field: string;
  codes: Int32Array;
  usedAt: number;
}

const MAX_BUCKET_CODES = 8;

const EMPTY = -1;

/**
 * The counting index of one company's records of one type, in this process: a dense row number per record, a
 * column per facet and sort field (dictionary codes or doubles), an alive bitset and, per criteria rule in use, the
 * bitset of the rows it matches. Queries AND bitsets and count; a write re-reads the record and overwrites its row.
 * About 80 bytes a lead (see README); it is rebuilt from Postgres, never persisted.
 */
let generations = 0;

export class CountingIndex {
  /** Tells this index from one rebuilt at the same version: row numbers mean nothing across the two. */
  readonly generation = ++generations;
  /** The data version (`search_versions`' slots) the index reflects. */
  version: DataVersion = '';
  /** Rows in use (alive or deleted); row numbers are never reused until a rebuild. */
  size = 0;
  private capacity = 0;
  private idWords = new Uint32Array(0);
  private slots = new Int32Array(0);
  private aliveWords = new Uint32Array(0);
  private aliveCount = 0;
  readonly columns = new Map<string, Column>();
  private readonly criteria = new Map<
    string,
    { conditions: CriteriaCondition[]; words: Uint32Array; usedAt: number }
  >();
  private readonly scratch = new Uint32Array(4);
  /** The rows of each lexeme of the records' search documents. */
  readonly text = new TextPostings();
  private readonly buckets = new Map<string, BucketCodes>();
  /** Estimated bytes of the code columns' dictionaries (their strings, list slots and lookup entries). */
  private dictionaryBytes = 0;

  constructor(
    readonly companyId: string,
    readonly type: RecordType,
    expectedRows = 0,
  ) {
    for (const spec of Object.values(FIELD_CATALOG[type])) {
      if (spec.name === 'id' || !(spec.uses.facet || spec.uses.sort)) continue;
      this.columns.set(spec.name, newColumn(spec));
    }
    this.grow(Math.max(1024, Math.ceil(expectedRows * 1.1)));
  }

  get rows(): number {
    return this.aliveCount;
  }

  /** Words in a bitset over the current rows. */
  get wordCount(): number {
    return (this.capacity + 31) >>> 5;
  }

  /**
   * Bytes the index holds: its typed arrays as allocated (spare capacity included), and estimates of the strings and
   * maps beside them (see heap-sizes.ts). Cheap: the dictionaries' and the overlay's shares are kept as they grow.
   */
  bytes(): number {
    let total =
      typedBytes(this.idWords) +
      typedBytes(this.slots) +
      typedBytes(this.aliveWords) +
      this.text.bytes() +
      this.dictionaryBytes;
    for (const column of this.columns.values()) {
      if (column.kind === 'number') total += typedBytes(column.values);
      else if (column.kind === 'text')
        total += typedBytes(column.starts) + typedBytes(column.lengths) + typedBytes(column.arena);
      else total += typedBytes(column.codes);
    }
    for (const [key, set] of this.criteria)
      total += typedBytes(set.words) + MAP_ENTRY_BYTES + stringBytes(key) + 200 * set.conditions.length;
    for (const codes of this.buckets.values())
      total += typedBytes(codes.codes) + MAP_ENTRY_BYTES + codes.keys.length * 64;
    return total;
  }

  private grow(capacity: number): void {
    this.idWords = resized(this.idWords, (n) => new Uint32Array(n), capacity * 4);
    const words = (capacity + 31) >>> 5;
    this.aliveWords = resized(this.aliveWords, (n) => new Uint32Array(n), words);
    for (const set of this.criteria.values())
      set.words = resized(set.words, (n) => new Uint32Array(n), words);
    for (const column of this.columns.values()) growColumn(column, capacity);
    this.capacity = capacity;
    this.buckets.clear();
    let slotCount = 1;
    while (slotCount < capacity * 1.34) slotCount <<= 1;
    this.slots = new Int32Array(slotCount).fill(EMPTY);
    for (let row = 0; row < this.size; row++) this.place(row);
  }

  private hashAt(at: number): number {
    // v4 UUIDs are random in their first word; mixing in the last covers ids made otherwise.
    return (Math.imul(this.idWords[at]! ^ this.idWords[at + 3]!, 0x9e3779b1) >>> 0) & (this.slots.length - 1);
  }

  private place(row: number): void {
    let slot = this.hashAt(row * 4);
    while (this.slots[slot] !== EMPTY) slot = (slot + 1) & (this.slots.length - 1);
    this.slots[slot] = row;
  }

  /** The row of an id, or -1 (deleted records keep their row until a rebuild; see `isAlive`). */
  rowOf(id: string): number {
    const key = this.scratch;
    if (!uuidWords(id.toLowerCase(), key, 0)) return -1;
    let slot = (Math.imul(key[0]! ^ key[3]!, 0x9e3779b1) >>> 0) & (this.slots.length - 1);
    for (;;) {
      const row = this.slots[slot]!;
      if (row === EMPTY) return -1;
      const at = row * 4;
      const ids = this.idWords;
      if (ids[at] === key[0] && ids[at + 1] === key[1] && ids[at + 2] === key[2] && ids[at + 3] === key[3])
        return row;
      slot = (slot + 1) & (this.slots.length - 1);
    }
  }

  idOf(row: number): string {
    const at = row * 4;
    const a = hex8(this.idWords[at]!);
    const b = hex8(this.idWords[at + 1]!);
    const c = hex8(this.idWords[at + 2]!);
    const d = hex8(this.idWords[at + 3]!);
    return `${a}-${b.slice(0, 4)}-${b.slice(4)}-${c.slice(0, 4)}-${c.slice(4)}${d}`;
  }

  isAlive(row: number): boolean {
    return (this.aliveWords[row >>> 5]! & (1 << (row & 31))) !== 0;
  }

  /** The row of an id, appended (not alive until `upsert`) when the id is new. */
  reserve(id: string): number {
    let row = this.rowOf(id);
    if (row < 0) {
      if (this.size === this.capacity) this.grow(Math.ceil(this.capacity * 1.5));
      row = this.size++;
      if (!uuidWords(id.toLowerCase(), this.idWords, row * 4)) throw new Error(`not a uuid: ${id}`);
      this.place(row);
    }
    return row;
  }

  /** Writes a record's row (appending a new one for a new id). `full` rows carry every field, for criteria sets. */
  upsert(record: CanonicalRow, full: boolean): void {
    const row = this.reserve(record.id);
    if (!this.isAlive(row)) {
      this.aliveWords[row >>> 5]! |= 1 << (row & 31);
      this.aliveCount++;
    }
    if ('__lexemes' in record)
      this.text.add(row, record.__lexemes === null ? null : String(record.__lexemes));
    for (const [name, column] of this.columns) {
      const value = record[name] ?? null;
      if (column.kind === 'number') {
        const number = value === null ? NaN : Number(value);
        column.values[row] = number;
        if (number < column.min || number > column.max) {
          // Date buckets were cut for the old range.
          for (const [id, codes] of this.buckets)
            if (codes.field === name && codes.ranged) this.buckets.delete(id);
          column.min = Math.min(column.min, number);
          column.max = Math.max(column.max, number);
        }
        for (const codes of this.buckets.values())
          if (codes.field === name) codes.codes[row] = number !== number ? -1 : codes.of(number);
      } else if (column.kind === 'text') {
        writeText(column, row, value === null ? null : String(value));
      } else {
        column.codes[row] = value === null ? -1 : this.codeFor(column, String(value));
      }
    }
    if (full) {
      const fields = this.criteriaView(record);
      for (const set of this.criteria.values()) {
        if (criteriaMatch(this.type, set.conditions, fields)) set.words[row >>> 5]! |= 1 << (row & 31);
        else set.words[row >>> 5]! &= ~(1 << (row & 31));
      }
    }
  }

  remove(id: string): void {
    const row = this.rowOf(id);
    if (row < 0 || !this.isAlive(row)) return;
    this.aliveWords[row >>> 5]! &= ~(1 << (row & 31));
    this.aliveCount--;
    this.text.remove(row);
    for (const set of this.criteria.values()) set.words[row >>> 5]! &= ~(1 << (row & 31));
  }

  private codeFor(column: CodeColumn, value: string): number {
    let code = column.lookup.get(value);
    if (code === undefined) {
      code = column.dict.length;
      column.dict.push(value);
      column.lookup.set(value, code);
      // One string, in the list and as the map's key.
      this.dictionaryBytes += stringBytes(value) + ARRAY_SLOT_BYTES + MAP_ENTRY_BYTES;
    }
    return code;
  }

  /** A record's fields as sharing's `criteriaMatch` reads them (instants as Dates at ms precision, days as text). */
  private criteriaView(record: CanonicalRow): Record<string, unknown> {
    const view: Record<string, unknown> = {};
    for (const spec of Object.values(FIELD_CATALOG[this.type])) {
      const value = record[spec.name];
      if (value === undefined || value === null) view[spec.name] = null;
      else if (spec.kind === 'timestamp') view[spec.name] = new Date(Math.floor(Number(value) / 1000));
      else if (spec.kind === 'day')
        view[spec.name] = new Date(Number(value) * 86_400_000).toISOString().slice(0, 10);
      else view[spec.name] = value;
    }
    return view;
  }

  // ---- criteria rule sets ----

  hasCriteria(key: string): boolean {
    return this.criteria.has(key);
  }

  /** Stores the rows a criteria rule matches (computed in SQL at this index's version) and keeps it current. */
  setCriteria(key: string, conditions: CriteriaCondition[], ids: readonly string[]): void {
    const words = new Uint32Array(this.wordCount);
    for (const id of ids) {
      const row = this.rowOf(id);
      if (row >= 0) words[row >>> 5]! |= 1 << (row & 31);
    }
    this.criteria.set(key, { conditions, words, usedAt: Date.now() });
  }

  criteriaWords(key: string): Uint32Array | undefined {
    const set = this.criteria.get(key);
    if (set) set.usedAt = Date.now();
    return set?.words;
  }

  /** Forgets criteria sets no search used for `idleMs` (rules deleted or changed leave theirs behind). */
  dropIdleCriteria(idleMs: number): void {
    const now = Date.now();
    for (const [key, set] of this.criteria) if (now - set.usedAt > idleMs) this.criteria.delete(key);
  }

  // ---- bitsets for a query ----

  alive(): Uint32Array {
    return new Uint32Array(this.aliveWords);
  }

  /** Alive rows owned by any of `ownerIds`. */
  ownedBy(ownerIds: readonly string[]): Uint32Array {
    const column = this.columns.get('ownerId') as CodeColumn;
    const allowed = new Uint8Array(column.dict.length);
    for (const id of ownerIds) {
      const code = column.lookup.get(id);
      if (code !== undefined) allowed[code] = 1;
    }
    const words = new Uint32Array(this.wordCount);
    const codes = column.codes;
    for (let row = 0; row < this.size; row++) {
      const code = codes[row]!;
      if (code >= 0 && allowed[code] === 1) words[row >>> 5]! |= 1 << (row & 31);
    }
    return andInto(words, this.aliveWords);
  }

  /** Alive rows among the given ids. */
  rowsOf(ids: readonly string[]): Uint32Array {
    const words = new Uint32Array(this.wordCount);
    for (const id of ids) {
      const row = this.rowOf(id);
      if (row >= 0) words[row >>> 5]! |= 1 << (row & 31);
    }
    return andInto(words, this.aliveWords);
  }

  /** True when the index holds a column for the filter's field (otherwise the service evaluates it in SQL). */
  canFilter(filter: RecordFilter): boolean {
    const column = this.columns.get(filter.field);
    // Lower-casing beyond ASCII is Postgres's to decide (its lower() and JavaScript's differ at the edges).
    if (filter.op === 'PREFIX' && !/^[\p{ASCII}]*$/u.test(String(filter.value))) return false;
    return column !== undefined && column.kind !== 'text';
  }

  /** Alive rows that meet one validated filter, with SQL's semantics (NULL never matches, except NE and IS_NULL). */
  filter(filter: RecordFilter): Uint32Array {
    const column = this.columns.get(filter.field);
    if (!column || column.kind === 'text') throw new Error(`no filter column for ${filter.field}`);
    return andInto(filterRows(column, filter, this.size, new Uint32Array(this.wordCount)), this.aliveWords);
  }

  // ---- counting ----

  facet(words: Uint32Array, facet: FacetSpec): FacetCounts {
    const column = this.columns.get(facet.field);
    if (!column || column.kind === 'text') throw new Error(`no facet column for ${facet.field}`);
    // Slot 0 of each tally counts the rows without a value.
    if (column.kind === 'code') {
      const tally = tallyCodes(words, column.codes, new Int32Array(column.dict.length + 1));
      return { keys: column.dict, counts: tally.subarray(1), missing: tally[0]! };
    }
    if (column.min > column.max) return { keys: [], counts: [], missing: popcount(words) };
    const buckets = this.bucketCodes(column, facet);
    if (buckets) {
      const tally = tallyCodes(words, buckets.codes, new Int32Array(buckets.keys.length + 1));
      return { keys: buckets.keys, counts: tally.subarray(1), missing: tally[0]! };
    }
    // Dates spread over centuries: bucket each row (fewer rows than boundaries).
    return countDatesByRow(words, column, facet);
  }

  /**
   * Each row's bucket of a RANGE or DATE_HISTOGRAM facet, computed on first use and kept current by `upsert` (the
   * few facet shapes in use are kept; null when a date facet spans too many buckets to cut in advance).
   */
  private bucketCodes(column: NumberColumn, facet: FacetSpec): BucketCodes | null {
    const shape = bucketShape(column, facet);
    if (!shape) return null;
    const { id, ranged, keys, of } = shape;
    let entry = this.buckets.get(id);
    if (!entry) {
      const codes = new Int32Array(this.capacity).fill(-1);
      const values = column.values;
      for (let row = 0; row < this.size; row++) {
        const value = values[row]!;
        if (value === value) codes[row] = of(value);
      }
      entry = { field: facet.field, ranged, codes, keys, of, usedAt: 0 };
      if (this.buckets.size >= MAX_BUCKET_CODES) {
        const oldest = [...this.buckets.entries()].sort(([, a], [, b]) => a.usedAt - b.usedAt)[0]!;
        this.buckets.delete(oldest[0]);
      }
      this.buckets.set(id, entry);
    }
    entry.usedAt = Date.now();
    return entry;
  }

  /** The first `limit` rows of `words` in sort order, after `after` when given (see `topRows`). */
  top(words: Uint32Array, sort: readonly SortTerm[], after: SeekPoint | null, limit: number): number[] {
    return topRows({ ids: this.idWords, columns: this.columns }, words, sort, after, limit);
  }

  /** The canonical sort values of a row (for a cursor). */
  seekPoint(row: number, sort: readonly SortTerm[]): SeekPoint {
    return {
      values: sort.map((term) => {
        const column = this.columns.get(term.field)!;
        if (column.kind === 'text') {
          const length = column.lengths[row]!;
          const start = column.starts[row]!;
          return length < 0 ? null : column.arena.toString('utf8', start, start + length);
        }
        if (column.kind === 'code') {
          const code = column.codes[row]!;
          return code < 0 ? null : column.dict[code]!;
        }
        const value = column.values[row]!;
        return value !== value ? null : value;
      }),
      id: this.idOf(row),
    };
  }
}
