import type { FacetCounts } from './facet-counts';
import type { CountingIndex } from './counting-index';
import { andInto } from './bitset';
import { bucketRange } from './search.dates';
import type { Evaluation } from './search.evaluation';
import type { FacetSpec, FacetType, SearchQuery } from './search.model';

// A search's facets as the caller sees them: counted buckets (cacheable), then named for the caller.

export interface FacetBucketView {
  key: string;
  label: string;
  from: string | null;
  to: string | null;
  count: number;
}

export interface FacetView {
  field: string;
  type: FacetType;
  buckets: FacetBucketView[];
  /** TERMS: records in values past the top `size`. */
  other: number;
  /** Records without a value. */
  missing: number;
}

/**
 * Names for owner and account buckets, looked up per request (an account's name only when the caller may read the
 * account: a deal's visibility says nothing of its account's), so never taken from the shared cache.
 */
export interface FacetNames {
  users(ids: string[]): Promise<Array<{ name: string } | null | Error>>;
  accounts(ids: string[]): Promise<Array<{ name: string } | null | Error>>;
}

/**
 * The facets' counts over the evaluation's rows, each disjunctive: every condition but those on the facet's own
 * field.
 */
export function indexFacetCounts(
  index: CountingIndex,
  evaluation: Evaluation,
  query: SearchQuery,
): FacetCounts[] {
  return query.facets.map((facet) => {
    const own = query.filters
      .map((filter, i) => (filter.field === facet.field ? i : -1))
      .filter((i) => i >= 0);
    let words = evaluation.candidate;
    if (own.length) {
      words = new Uint32Array(evaluation.base);
      evaluation.filters.forEach((bits, i) => own.includes(i) || andInto(words, bits));
    }
    return index.facet(words, facet);
  });
}

/** Buckets without names: what may be cached, since names depend on more than the record type's visibility. */
export function facetView(facet: FacetSpec, counted: FacetCounts): FacetView {
  const countOf = (key: string) => {
    const at = counted.keys.indexOf(key);
    return at < 0 ? 0 : counted.counts[at]!;
  };
  if (facet.type === 'RANGE') {
    const buckets = facet.edges.concat([NaN]).map((edge, i) => {
      const from = i === 0 ? null : String(facet.edges[i - 1]);
      const to = Number.isNaN(edge) ? null : String(edge);
      const key = `${from ?? '*'}..${to ?? '*'}`;
      return { key, label: key, from, to, count: countOf(String(i)) };
    });
    return { field: facet.field, type: facet.type, buckets, other: 0, missing: counted.missing };
  }
  if (facet.type === 'DATE_HISTOGRAM') {
    const instants = facet.kind === 'timestamp';
    const buckets = counted.keys
      .map((key, i) => [key, counted.counts[i]!] as const)
      .filter(([, count]) => count > 0)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, count]) => ({
        key,
        label: key,
        ...bucketRange(key, instants, facet.interval, facet.timeZone),
        count,
      }));
    return { field: facet.field, type: facet.type, buckets, other: 0, missing: counted.missing };
  }
  const top = topTerms(counted, facet.size);
  let other = 0;
  for (let i = 0; i < counted.counts.length; i++) other += counted.counts[i]!;
  for (const [, n] of top) other -= n;
  return {
    field: facet.field,
    type: facet.type,
    buckets: top.map(([key, count]) => ({
      key,
      label: key,
      from: null,
      to: null,
      count,
    })),
    other,
    missing: counted.missing,
  };
}

/**
 * Names the owner and account buckets for this caller: a user's name; an account's name only when the caller may
 * read the account (a deal's visibility says nothing of its account's), so never from the shared cache.
 */
export async function labelled(facets: FacetView[], names: FacetNames): Promise<FacetView[]> {
  return Promise.all(
    facets.map(async (facet) => {
      if (facet.field !== 'ownerId' && facet.field !== 'accountId') return facet;
      const keys = facet.buckets.map((bucket) => bucket.key);
      const found = await (facet.field === 'ownerId' ? names.users(keys) : names.accounts(keys));
      return {
        ...facet,
        buckets: facet.buckets.map((bucket, i) => {
          const named = found[i];
          return { ...bucket, label: named && !(named instanceof Error) ? named.name : bucket.key };
        }),
      };
    }),
  );
}

/**
 * The `size` largest counts (ties by key), without sorting every value: an account facet has one per account.
 */
function topTerms({ keys, counts }: FacetCounts, size: number): Array<[string, number]> {
  const before = (a: [string, number], b: [string, number]) => a[1] > b[1] || (a[1] === b[1] && a[0] < b[0]);
  const top: Array<[string, number]> = [];
  for (let i = 0; i < keys.length; i++) {
    const count = counts[i]!;
    if (count === 0) continue;
    const last = top.length === size ? top[size - 1]! : undefined;
    if (last && (count < last[1] || (count === last[1] && keys[i]! >= last[0]))) continue;
    const entry: [string, number] = [keys[i]!, count];
    let at = top.length === size ? size - 1 : top.length;
    while (at > 0 && before(entry, top[at - 1]!)) {
      top[at] = top[at - 1]!;
      at--;
    }
    top[at] = entry;
  }
  return top;
}
