import type { Column } from './index-columns';
import type { SeekPoint, SortTerm } from './search.model';
import { uuidWords } from './uuid-words';

// The counting index's sort order: rows compared term by term (NULLS LAST), ids breaking ties, and the first rows of
// a bitset in that order.

/** Where a top-k scan reads from: the index's id words (four per row) and its columns. */
export interface OrderedRows {
  ids: Uint32Array;
  columns: ReadonlyMap<string, Column>;
}

/**
 * The first `limit` rows of `words` in sort order (NULLS LAST per term, id breaking ties in the last term's
 * direction), after `after` when given: a bounded heap, one pass over the rows.
 */
export function topRows(
  source: OrderedRows,
  words: Uint32Array,
  sort: readonly SortTerm[],
  after: SeekPoint | null,
  limit: number,
): number[] {
  const { compare, isAfter } = rowOrder(source, sort, after);
  const heap = new WorstFirstHeap(compare);
  // The first term as a number (smaller first, NULL last) rejects most rows without a full comparison.
  const key = primaryKey(source.columns, sort[0]);
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
      if (heap.size < limit) {
        heap.push(row);
        if (key && heap.size === limit) topKey = key.at(heap.worst);
      } else if (limit > 0) {
        if (key && rowKey > topKey) continue;
        if ((key && rowKey < topKey) || compare(row, heap.worst) < 0) {
          heap.replaceWorst(row);
          if (key) topKey = key.at(heap.worst);
        }
      }
    }
  }
  return heap.sorted();
}

/**
 * The full sort order of rows: `compare` two rows (negative when the first comes first), and whether a row comes
 * after the seek point (`isAfter`, asked only when there is one).
 */
function rowOrder(
  { ids, columns }: OrderedRows,
  sort: readonly SortTerm[],
  after: SeekPoint | null,
): { compare: (a: number, b: number) => number; isAfter: (row: number) => boolean } {
  const afterId = new Uint32Array(4);
  if (after) uuidWords(after.id.toLowerCase(), afterId, 0);
  const terms = sort.map((term, i) => termOrder(columns, term, after?.values[i] ?? null));
  const idDescending = sort.at(-1)?.descending ?? false;
  const compareIdWords = (at: number, other: Uint32Array, otherAt: number): number => {
    for (let i = 0; i < 4; i++) {
      const x = ids[at + i]!;
      const y = other[otherAt + i]!;
      if (x !== y) return (x < y ? -1 : 1) * (idDescending ? -1 : 1);
    }
    return 0;
  };
  return {
    compare: (a, b) => {
      for (let i = 0; i < terms.length; i++) {
        const order = terms[i]!.rows(a, b);
        if (order !== 0) return order;
      }
      return compareIdWords(a * 4, ids, b * 4);
    },
    isAfter: (row) => {
      for (let i = 0; i < terms.length; i++) {
        const order = terms[i]!.toAfter(row);
        if (order !== 0) return order > 0;
      }
      return compareIdWords(row * 4, afterId, 0) > 0;
    },
  };
}

/** Max-heap on sort order: the worst kept row on top, so a better row replaces it. */
class WorstFirstHeap {
  private readonly rows: number[] = [];

  constructor(private readonly compare: (a: number, b: number) => number) {}

  get size(): number {
    return this.rows.length;
  }

  get worst(): number {
    return this.rows[0]!;
  }

  push(row: number): void {
    const heap = this.rows;
    heap.push(row);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >>> 1;
      if (this.compare(heap[i]!, heap[parent]!) <= 0) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  replaceWorst(row: number): void {
    const heap = this.rows;
    heap[0] = row;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) return;
      const right = left + 1;
      const worse = right < heap.length && this.compare(heap[right]!, heap[left]!) > 0 ? right : left;
      if (this.compare(heap[worse]!, heap[i]!) <= 0) return;
      [heap[i], heap[worse]] = [heap[worse]!, heap[i]!];
      i = worse;
    }
  }

  /** The rows kept, best first (the heap is spent). */
  sorted(): number[] {
    return this.rows.sort(this.compare);
  }
}

/**
 * A sort term as one number per row that orders like the term (NULL last in either direction), or null for text:
 * `at(row)`, and `of(value)` for a seek point's value (NaN when it cannot say).
 */
function primaryKey(
  columns: ReadonlyMap<string, Column>,
  term: SortTerm | undefined,
): { at(row: number): number; of(value: string | number | null): number } | null {
  if (!term) return null;
  const column = columns.get(term.field)!;
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
function termOrder(
  columns: ReadonlyMap<string, Column>,
  term: SortTerm,
  target: string | number | null,
): { rows(a: number, b: number): number; toAfter(row: number): number } {
  const column = columns.get(term.field)!;
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
