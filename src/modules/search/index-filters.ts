import { bindableValue, type FieldSpec, type RecordFilter } from '../kernel';
import { keyDay } from './search.dates';
import type { CodeColumn, NumberColumn } from './index-columns';

/**
 * Sets in `words` the bits of the rows among the first `rows` that meet one validated filter on a coded or number
 * column, with SQL's semantics (NULL never matches, except NE and IS_NULL); alive or not is the caller's to apply.
 */
export function filterRows(
  column: CodeColumn | NumberColumn,
  filter: RecordFilter,
  rows: number,
  words: Uint32Array,
): Uint32Array {
  if (column.kind === 'code') {
    const test = codeTest(column.spec, filter);
    const allowed = new Uint8Array(column.dict.length + 1);
    column.dict.forEach((value, code) => (allowed[code] = test(value) ? 1 : 0));
    allowed[column.dict.length] = test(null) ? 1 : 0;
    const nullCode = column.dict.length;
    const codes = column.codes;
    for (let row = 0; row < rows; row++) {
      const code = codes[row]!;
      if (allowed[code < 0 ? nullCode : code] === 1) words[row >>> 5]! |= 1 << (row & 31);
    }
  } else {
    const [low, high, nullMatches, set, negate] = numberTest(column.spec, filter);
    const values = column.values;
    for (let row = 0; row < rows; row++) {
      const value = values[row]!;
      let hit: boolean;
      if (value !== value) hit = nullMatches;
      else if (set) hit = set.has(value) !== negate;
      else hit = value >= low && value <= high;
      if (hit) words[row >>> 5]! |= 1 << (row & 31);
    }
  }
  return words;
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
