import { criteriaMatch, type CriteriaCondition } from '../sharing';
import { FIELD_CATALOG, bindableValue, type FieldSpec, type RecordFilter, type RecordType } from '../kernel';
import { bucketBoundaries, bucketDayOf, bucketSpan, dayKey, keyDay, MAX_BOUNDARIES } from './search.dates';
import type { FacetSpec, SeekPoint, SortTerm } from './search.model';
import { TextPostings } from './search.text';

/**
 * A record as the index reads it: the id, each field's canonical value (see `canonicalSql`) by field name, and
 * `__lexemes`, its search document's lexemes separated by spaces.
 */
export type CanonicalRow = { id: string } & Record<string, string | number | null>;

interface CodeColumn {
  kind: 'code';
  spec: FieldSpec;
  /** Dictionary code per row; -1 is null. */
  codes: Int32Array;
  dict: string[];
  lookup: Map<string, number>;
}

interface NumberColumn {
  kind: 'number';
  spec: FieldSpec;
  /** NaN is null. */
  values: Float64Array;
  min: number;
  max: number;
}

/** Free text kept for sorting only: UTF-8 bytes in one arena, so rows compare by byte (Postgres's "C" order). */
interface TextColumn {
  kind: 'text';
  spec: FieldSpec;
  /** Where each row's bytes start in the arena. */
  starts: Uint32Array;
  /** Byte length per row; -1 is null. */
  lengths: Int32Array;
  arena: Buffer;
  /** Arena bytes written (values rewritten by updates leave garbage until a rebuild). */
  used: number;
}

type Column = CodeColumn | NumberColumn | TextColumn;

/** Raw counts of a facet over a set of rows; labels and ordering are the service's. */
export interface FacetCounts {
  /** TERMS: values; RANGE: bucket indexes ("0" for below the first edge); DATE_HISTOGRAM: bucket keys. */
  keys: readonly string[];
  /** The count of each key (zero for keys no row holds). */
  counts: ArrayLike<number>;
  missing: number;
}

/** A facet's bucket per row, kept while searches ask for it (precomputed facets). */
interface BucketCodes {
  field: string;
  /** Whether the bucket boundaries depend on the column's range (date facets). */
  ranged: boolean;
  codes: Int32Array;
  keys: string[];
  of: (value: number) => number;
  usedAt: number;
}

const MAX_BUCKET_CODES = 8;

const EMPTY = -1;

// ---- dense bitsets over row numbers (32 rows a word) ----

export function popcount(words: Uint32Array): number {
  let total = 0;
  for (let i = 0; i < words.length; i++) {
    let v = words[i]!;
    v -= (v >>> 1) & 0x55555555;
    v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
    total += (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) | 0;
  }
  return total;
}

/** `target &= other`, where `other` may be shorter (rows past its end are absent). */
export function andInto(target: Uint32Array, other: Uint32Array): Uint32Array {
  const n = Math.min(target.length, other.length);
  for (let i = 0; i < n; i++) target[i]! &= other[i]!;
  target.fill(0, n);
  return target;
}

export function orInto(target: Uint32Array, other: Uint32Array): Uint32Array {
  const n = Math.min(target.length, other.length);
  for (let i = 0; i < n; i++) target[i]! |= other[i]!;
  return target;
}

function forEachRow(words: Uint32Array, visit: (row: number) => void): void {
  for (let w = 0; w < words.length; w++) {
    let word = words[w]!;
    while (word !== 0) {
      const lowest = word & -word;
      visit((w << 5) + 31 - Math.clz32(lowest));
      word ^= lowest;
    }
  }
}

/** Parses a UUID's 32 hex digits into four unsigned words, in byte order (so word order is Postgres's uuid order). */
function uuidWords(id: string, into: Uint32Array, at: number): boolean {
  if (id.length !== 36) return false;
  const w0 = parseInt(id.slice(0, 8), 16);
  const w1 = parseInt(id.slice(9, 13) + id.slice(14, 18), 16);
  const w2 = parseInt(id.slice(19, 23) + id.slice(24, 28), 16);
  const w3 = parseInt(id.slice(28, 36), 16);
  if (Number.isNaN(w0 + w1 + w2 + w3)) return false;
  into[at] = w0;
  into[at + 1] = w1;
  into[at + 2] = w2;
  into[at + 3] = w3;
  return true;
}

function hex8(word: number): string {
  return word.toString(16).padStart(8, '0');
}

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
  /** The data version (`search_versions`) the index reflects. */
  version = 0;
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

  constructor(
    readonly companyId: string,
    readonly type: RecordType,
    expectedRows = 0,
  ) {
    for (const spec of Object.values(FIELD_CATALOG[type])) {
      if (spec.name === 'id' || !(spec.uses.facet || spec.uses.sort)) continue;
      // Text that is only sorted on (names) is mostly distinct: a dictionary would cost more than the text.
      const column: Column =
        spec.kind === 'text' && !spec.uses.facet
          ? {
              kind: 'text',
              spec,
              starts: new Uint32Array(0),
              lengths: new Int32Array(0),
              arena: Buffer.alloc(0),
              used: 0,
            }
          : ['text', 'enum', 'uuid'].includes(spec.kind)
            ? { kind: 'code', spec, codes: new Int32Array(0), dict: [], lookup: new Map() }
            : { kind: 'number', spec, values: new Float64Array(0), min: Infinity, max: -Infinity };
      this.columns.set(spec.name, column);
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

  /** Bytes held by the index's arrays (dictionary strings estimated at 2 bytes a character plus 40). */
  bytes(): number {
    let total =
      this.idWords.byteLength + this.slots.byteLength + this.aliveWords.byteLength + this.text.bytes();
    for (const column of this.columns.values()) {
      if (column.kind === 'number') total += column.values.byteLength;
      else if (column.kind === 'text')
        total += column.starts.byteLength + column.lengths.byteLength + column.arena.byteLength;
      else {
        total += column.codes.byteLength;
        for (const value of column.dict) total += 40 + value.length * 2 + 48;
      }
    }
    for (const set of this.criteria.values()) total += set.words.byteLength;
    for (const codes of this.buckets.values()) total += codes.codes.byteLength;
    return total;
  }

  private grow(capacity: number): void {
    const copy = <T extends Uint32Array | Int32Array | Float64Array>(
      old: T,
      make: (n: number) => T,
      n: number,
    ) => {
      const next = make(n);
      next.set(old.subarray(0, Math.min(old.length, n)));
      return next;
    };
    this.idWords = copy(this.idWords, (n) => new Uint32Array(n), capacity * 4);
    const words = (capacity + 31) >>> 5;
    this.aliveWords = copy(this.aliveWords, (n) => new Uint32Array(n), words);
    for (const set of this.criteria.values()) set.words = copy(set.words, (n) => new Uint32Array(n), words);
    for (const column of this.columns.values()) {
      if (column.kind === 'number') {
        const next = new Float64Array(capacity).fill(NaN);
        next.set(column.values);
        column.values = next;
      } else if (column.kind === 'text') {
        column.starts = copy(column.starts, (n) => new Uint32Array(n), capacity);
        const lengths = new Int32Array(capacity).fill(-1);
        lengths.set(column.lengths);
        column.lengths = lengths;
      } else {
        const next = new Int32Array(capacity).fill(-1);
        next.set(column.codes);
        column.codes = next;
      }
    }
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
    const words = new Uint32Array(this.wordCount);
    if (column.kind === 'code') {
      const test = codeTest(column.spec, filter);
      const allowed = new Uint8Array(column.dict.length + 1);
      column.dict.forEach((value, code) => (allowed[code] = test(value) ? 1 : 0));
      allowed[column.dict.length] = test(null) ? 1 : 0;
      const nullCode = column.dict.length;
      const codes = column.codes;
      for (let row = 0; row < this.size; row++) {
        const code = codes[row]!;
        if (allowed[code < 0 ? nullCode : code] === 1) words[row >>> 5]! |= 1 << (row & 31);
      }
    } else {
      const [low, high, nullMatches, set, negate] = numberTest(column.spec, filter);
      const values = column.values;
      for (let row = 0; row < this.size; row++) {
        const value = values[row]!;
        let hit: boolean;
        if (value !== value) hit = nullMatches;
        else if (set) hit = set.has(value) !== negate;
        else hit = value >= low && value <= high;
        if (hit) words[row >>> 5]! |= 1 << (row & 31);
      }
    }
    return andInto(words, this.aliveWords);
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
    const instants = column.spec.kind === 'timestamp';
    const offsets = new Map<number, number>();
    const counts = new Map<string, number>();
    let missing = 0;
    const values = column.values;
    forEachRow(words, (row) => {
      const value = values[row]!;
      if (value !== value) missing++;
      else {
        const key = dayKey(bucketDayOf(value, instants, facet.interval, facet.timeZone, offsets));
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    });
    return { keys: [...counts.keys()], counts: [...counts.values()], missing };
  }

  /**
   * Each row's bucket of a RANGE or DATE_HISTOGRAM facet, computed on first use and kept current by `upsert` (the
   * few facet shapes in use are kept; null when a date facet spans too many buckets to cut in advance).
   */
  private bucketCodes(column: NumberColumn, facet: FacetSpec): BucketCodes | null {
    let id: string;
    let keys: string[];
    let of: (value: number) => number;
    const ranged = facet.type !== 'RANGE';
    if (!ranged) {
      const edges = Float64Array.from(facet.edges);
      id = `${facet.field}|${facet.edges.join(',')}`;
      keys = facet.edges.concat([0]).map((_, i) => String(i));
      of = (value) => {
        let bucket = 0;
        while (bucket < edges.length && value >= edges[bucket]!) bucket++;
        return bucket;
      };
    } else {
      const instants = column.spec.kind === 'timestamp';
      if (bucketSpan(column.min, column.max, instants, facet.interval) > MAX_BOUNDARIES) return null;
      const boundaries = bucketBoundaries(column.min, column.max, instants, facet.interval, facet.timeZone);
      const starts = boundaries.starts;
      id = `${facet.field}|${facet.interval}|${facet.timeZone}`;
      keys = boundaries.keys;
      of = (value) => {
        let lo = 0;
        let hi = starts.length - 1;
        while (lo < hi) {
          const mid = (lo + hi + 1) >>> 1;
          if (starts[mid]! <= value) lo = mid;
          else hi = mid - 1;
        }
        return lo;
      };
    }
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

  /**
   * The first `limit` rows of `words` in sort order (NULLS LAST per term, id breaking ties in the last term's
   * direction), after `after` when given: a bounded heap, one pass over the rows.
   */
  top(words: Uint32Array, sort: readonly SortTerm[], after: SeekPoint | null, limit: number): number[] {
    const afterId = new Uint32Array(4);
    if (after) uuidWords(after.id.toLowerCase(), afterId, 0);
    const terms = sort.map((term, i) => this.termOrder(term, after?.values[i] ?? null));
    const idDescending = sort.at(-1)?.descending ?? false;
    const ids = this.idWords;
    const compareIdWords = (at: number, other: Uint32Array, otherAt: number): number => {
      for (let i = 0; i < 4; i++) {
        const x = ids[at + i]!;
        const y = other[otherAt + i]!;
        if (x !== y) return (x < y ? -1 : 1) * (idDescending ? -1 : 1);
      }
      return 0;
    };
    const compare = (a: number, b: number): number => {
      for (let i = 0; i < terms.length; i++) {
        const order = terms[i]!.rows(a, b);
        if (order !== 0) return order;
      }
      return compareIdWords(a * 4, ids, b * 4);
    };
    const isAfter = (row: number): boolean => {
      for (let i = 0; i < terms.length; i++) {
        const order = terms[i]!.toAfter(row);
        if (order !== 0) return order > 0;
      }
      return compareIdWords(row * 4, afterId, 0) > 0;
    };
    // Max-heap on sort order: the worst kept row on top.
    const heap: number[] = [];
    const siftDown = (start: number) => {
      let i = start;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) return;
        const right = left + 1;
        const worse = right < heap.length && compare(heap[right]!, heap[left]!) > 0 ? right : left;
        if (compare(heap[worse]!, heap[i]!) <= 0) return;
        [heap[i], heap[worse]] = [heap[worse]!, heap[i]!];
        i = worse;
      }
    };
    // The first term as a number (smaller first, NULL last) rejects most rows without a full comparison.
    const key = this.primaryKey(sort[0]);
    const afterKey = key && after ? key.of(after.values[0] ?? null) : undefined;
    let topKey = Infinity;
    for (let w = 0; w < words.length; w++) {
      let word = words[w]!;
      const base = w << 5;
      while (word !== 0) {
        const lowest = word & -word;
        const row = base + 31 - Math.clz32(lowest);
        word ^= lowest;
        const rowKey = key ? key.at(row) : 0;
        // Most rows lose to the worst row kept on the first key alone.
        if (rowKey > topKey && !after) continue;
        if (after) {
          if (afterKey === undefined || Number.isNaN(afterKey)) {
            if (!isAfter(row)) continue;
          } else if (rowKey < afterKey || (rowKey === afterKey && !isAfter(row))) continue;
        }
        if (heap.length < limit) {
          heap.push(row);
          let i = heap.length - 1;
          while (i > 0) {
            const parent = (i - 1) >>> 1;
            if (compare(heap[i]!, heap[parent]!) <= 0) break;
            [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
            i = parent;
          }
          if (key && heap.length === limit) topKey = key.at(heap[0]!);
        } else if (limit > 0) {
          if (key && rowKey > topKey) continue;
          if ((key && rowKey < topKey) || compare(row, heap[0]!) < 0) {
            heap[0] = row;
            siftDown(0);
            if (key) topKey = key.at(heap[0]);
          }
        }
      }
    }
    return heap.sort(compare);
  }

  /**
   * A sort term as one number per row that orders like the term (NULL last in either direction), or null for text:
   * `at(row)`, and `of(value)` for a seek point's value (NaN when it cannot say).
   */
  private primaryKey(
    term: SortTerm | undefined,
  ): { at(row: number): number; of(value: string | number | null): number } | null {
    if (!term) return null;
    const column = this.columns.get(term.field)!;
    const sign = term.descending ? -1 : 1;
    if (column.kind === 'number') {
      const values = column.values;
      return {
        at: (row) => {
          const value = values[row]!;
          return value !== value ? Infinity : sign * value;
        },
        of: (value) => (value === null ? Infinity : sign * Number(value)),
      };
    }
    if (column.kind === 'code') {
      // Enums: rank the few values once.
      const sorted = [...column.dict].sort();
      const rank = new Float64Array(column.dict.length);
      column.dict.forEach((value, code) => (rank[code] = sign * sorted.indexOf(value)));
      const codes = column.codes;
      return {
        at: (row) => {
          const code = codes[row]!;
          return code < 0 ? Infinity : rank[code]!;
        },
        of: (value) => {
          if (value === null) return Infinity;
          const code = column.lookup.get(String(value));
          return code === undefined ? NaN : rank[code]!;
        },
      };
    }
    return null;
  }

  /**
   * How rows compare on one sort term (NULLS LAST in either direction), with each other and with a seek point's
   * value: negative when the row comes first.
   */
  private termOrder(
    term: SortTerm,
    target: string | number | null,
  ): { rows(a: number, b: number): number; toAfter(row: number): number } {
    const column = this.columns.get(term.field)!;
    const direction = term.descending ? -1 : 1;
    const order = (x: string | number, y: string | number) => (x === y ? 0 : x < y ? -direction : direction);
    if (column.kind === 'text') {
      const { starts, lengths, arena } = column;
      const wanted = target === null ? null : Buffer.from(String(target), 'utf8');
      return {
        rows: (a, b) => {
          const la = lengths[a]!;
          const lb = lengths[b]!;
          if (la < 0 || lb < 0) return la < 0 ? (lb < 0 ? 0 : 1) : -1;
          return arena.compare(arena, starts[b], starts[b]! + lb, starts[a], starts[a]! + la) * direction;
        },
        toAfter: (row) => {
          const length = lengths[row]!;
          if (length < 0 || wanted === null) return length < 0 ? (wanted === null ? 0 : 1) : -1;
          return arena.compare(wanted, 0, wanted.length, starts[row], starts[row]! + length) * direction;
        },
      };
    }
    if (column.kind === 'code') {
      // Enums only: their values are ASCII, so JavaScript's order is the byte order.
      const { codes, dict } = column;
      return {
        rows: (a, b) => {
          const ca = codes[a]!;
          const cb = codes[b]!;
          if (ca === cb) return 0;
          if (ca < 0 || cb < 0) return ca < 0 ? 1 : -1;
          return order(dict[ca]!, dict[cb]!);
        },
        toAfter: (row) => {
          const code = codes[row]!;
          if (code < 0 || target === null) return code < 0 ? (target === null ? 0 : 1) : -1;
          return order(dict[code]!, target);
        },
      };
    }
    const values = column.values;
    const wanted = target === null ? NaN : Number(target);
    return {
      rows: (a, b) => {
        const x = values[a]!;
        const y = values[b]!;
        if (x !== x || y !== y) return x !== x ? (y !== y ? 0 : 1) : -1;
        return order(x, y);
      },
      toAfter: (row) => {
        const x = values[row]!;
        if (x !== x || wanted !== wanted) return x !== x ? (wanted !== wanted ? 0 : 1) : -1;
        return order(x, wanted);
      },
    };
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

// The tallies below walk a bitset's rows inline (no callback per row): they are the hot loops of a search.

function tallyCodes(words: Uint32Array, codes: Int32Array, tally: Int32Array): Int32Array {
  for (let w = 0; w < words.length; w++) {
    let word = words[w]!;
    const base = w << 5;
    if (word === 0xffffffff) {
      // A full word (most of them when nearly every row matches): no bit to find.
      for (let row = base; row < base + 32; row++) tally[codes[row]! + 1]!++;
      continue;
    }
    while (word !== 0) {
      const lowest = word & -word;
      tally[codes[base + 31 - Math.clz32(lowest)]! + 1]!++;
      word ^= lowest;
    }
  }
  return tally;
}

function writeText(column: TextColumn, row: number, value: string | null): void {
  if (value === null) {
    column.lengths[row] = -1;
    return;
  }
  const bytes = Buffer.byteLength(value, 'utf8');
  if (column.used + bytes > column.arena.length) {
    const arena = Buffer.allocUnsafe(Math.max(column.arena.length * 2, column.used + bytes, 4096));
    column.arena.copy(arena, 0, 0, column.used);
    column.arena = arena;
  }
  column.arena.write(value, column.used, 'utf8');
  column.starts[row] = column.used;
  column.lengths[row] = bytes;
  column.used += bytes;
}

/** A filter on a dictionary-coded column as a test of one value (null for NULL). */
function codeTest(spec: FieldSpec, filter: RecordFilter): (value: string | null) => boolean {
  const normalize = (v: unknown) => (spec.kind === 'uuid' ? String(v).toLowerCase() : String(v));
  switch (filter.op) {
    case 'EQ': {
      const wanted = normalize(filter.value);
      return (value) => value !== null && value === wanted;
    }
    case 'NE': {
      const unwanted = normalize(filter.value);
      return (value) => value === null || value !== unwanted;
    }
    case 'IN': {
      const wanted = new Set((filter.values ?? []).map(normalize));
      return (value) => value !== null && wanted.has(value);
    }
    case 'PREFIX': {
      const prefix = String(filter.value).toLowerCase();
      return (value) => value !== null && value.toLowerCase().startsWith(prefix);
    }
    case 'IS_NULL':
      return (value) => (value === null) === filter.value;
    default:
      throw new Error(`${filter.op} does not apply to ${spec.name}`);
  }
}

/** A filter value in a number column's canonical unit. */
function canonicalNumber(spec: FieldSpec, value: unknown): number {
  if (spec.kind === 'timestamp') return Date.parse(String(bindableValue('timestamp', value))) * 1000;
  if (spec.kind === 'day') return keyDay(String(value));
  return Number(value);
}

/** [low, high, nullMatches, set, negate]: a row matches when in [low, high], or (with a set) when in the set xor negate. */
function numberTest(
  spec: FieldSpec,
  filter: RecordFilter,
): [number, number, boolean, Set<number> | null, boolean] {
  const value = (v: unknown) => canonicalNumber(spec, v);
  switch (filter.op) {
    case 'EQ':
      return [0, 0, false, new Set([value(filter.value)]), false];
    case 'NE':
      return [0, 0, true, new Set([value(filter.value)]), true];
    case 'IN':
      return [0, 0, false, new Set((filter.values ?? []).map(value)), false];
    case 'GTE':
      return [value(filter.value), Infinity, false, null, false];
    case 'LTE':
      return [-Infinity, value(filter.value), false, null, false];
    case 'RANGE':
      return [
        filter.from == null ? -Infinity : value(filter.from),
        filter.to == null ? Infinity : value(filter.to),
        false,
        null,
        false,
      ];
    case 'IS_NULL':
      return filter.value
        ? [Infinity, -Infinity, true, null, false]
        : [-Infinity, Infinity, false, null, false];
    default:
      throw new Error(`${filter.op} does not apply to ${spec.name}`);
  }
}
