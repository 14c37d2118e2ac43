import type { FieldSpec } from '../kernel';

// The counting index's columns: one per facet and sort field, a row's value at its row number.

export interface CodeColumn {
  kind: 'code';
  spec: FieldSpec;
  /** Dictionary code per row; -1 is null. */
  codes: Int32Array;
  dict: string[];
  lookup: Map<string, number>;
}

export interface NumberColumn {
  kind: 'number';
  spec: FieldSpec;
  /** NaN is null. */
  values: Float64Array;
  min: number;
  max: number;
}

/** Free text kept for sorting only: UTF-8 bytes in one arena, so rows compare by byte (Postgres's "C" order). */
export interface TextColumn {
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

export type Column = CodeColumn | NumberColumn | TextColumn;

/** Appends a text value to the column's arena as its row's bytes (null: no value). */
export function writeText(column: TextColumn, row: number, value: string | null): void {
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

/** An empty column for a catalog field: free text kept for sorting, dictionary codes, or numbers. */
export function newColumn(spec: FieldSpec): Column {
  // Text that is only sorted on (names) is mostly distinct: a dictionary would cost more than the text.
  if (spec.kind === 'text' && !spec.uses.facet)
    return {
      kind: 'text',
      spec,
      starts: new Uint32Array(0),
      lengths: new Int32Array(0),
      arena: Buffer.alloc(0),
      used: 0,
    };
  return ['text', 'enum', 'uuid'].includes(spec.kind)
    ? { kind: 'code', spec, codes: new Int32Array(0), dict: [], lookup: new Map() }
    : { kind: 'number', spec, values: new Float64Array(0), min: Infinity, max: -Infinity };
}

/** A copy of `old` of length `n`: its values, then zeros. */
export function resized<T extends Uint32Array | Int32Array | Float64Array>(
  old: T,
  make: (n: number) => T,
  n: number,
): T {
  const next = make(n);
  next.set(old.subarray(0, Math.min(old.length, n)));
  return next;
}

/** Grows a column to `capacity` rows; the new rows hold no value. */
export function growColumn(column: Column, capacity: number): void {
  if (column.kind === 'number') {
    const next = new Float64Array(capacity).fill(NaN);
    next.set(column.values);
    column.values = next;
  } else if (column.kind === 'text') {
    column.starts = resized(column.starts, (n) => new Uint32Array(n), capacity);
    const lengths = new Int32Array(capacity).fill(-1);
    lengths.set(column.lengths);
    column.lengths = lengths;
  } else {
    const next = new Int32Array(capacity).fill(-1);
    next.set(column.codes);
    column.codes = next;
  }
}
