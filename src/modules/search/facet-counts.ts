import { forEachRow } from './bitset';
import type { NumberColumn } from './index-columns';
import type { FacetSpec } from './search.model';
import { bucketBoundaries, bucketDayOf, bucketSpan, dayKey, MAX_BOUNDARIES } from './search.dates';

// Facet counts of the counting index: what a count over a bitset returns, and the buckets of RANGE and
// DATE_HISTOGRAM facets over a number column.

/** Raw counts of a facet over a set of rows; labels and ordering are the service's. */
export interface FacetCounts {
  /** TERMS: values; RANGE: bucket indexes ("0" for below the first edge); DATE_HISTOGRAM: bucket keys. */
  keys: readonly string[];
  /** The count of each key (zero for keys no row holds). */
  counts: ArrayLike<number>;
  missing: number;
}

/** How a RANGE or DATE_HISTOGRAM facet buckets a value: the shape's id, its keys, and a value's bucket. */
export interface BucketShape {
  id: string;
  /** Whether the bucket boundaries depend on the column's range (date facets). */
  ranged: boolean;
  keys: string[];
  of: (value: number) => number;
}

/** The buckets of a facet over the column's values now, or null when a date facet spans too many to cut in advance. */
export function bucketShape(column: NumberColumn, facet: FacetSpec): BucketShape | null {
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
  return { id, ranged, keys, of };
}

/** A DATE_HISTOGRAM facet's counts found row by row, for dates too spread out to cut buckets in advance. */
export function countDatesByRow(words: Uint32Array, column: NumberColumn, facet: FacetSpec): FacetCounts {
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
