import { createHash } from 'node:crypto';
import { ValidationError, type FieldViolation } from '../../platform/errors/app-error';
import {
  isTimeZone,
  RECORD_TABLE,
  fieldsFor,
  findField,
  filterViolations,
  type RecordFilter,
  type RecordType,
} from '../kernel';
import { readCursor } from './search.cursor';
import {
  facetConfig,
  type DateInterval,
  type FacetSpec,
  type SearchQuery,
  type SortTerm,
} from './search.model';

// A search's input checked and normalised into a `SearchQuery`: each part its own step, every violation collected.

export interface SearchInputShape {
  entityType: RecordType;
  text?: string | null;
  filters?: RecordFilter[] | null;
  facets?: Array<{
    field: string;
    size?: number | null;
    edges?: number[] | null;
    interval?: DateInterval | null;
    timeZone?: string | null;
  }> | null;
  sort?: Array<{ field: string; direction: 'ASC' | 'DESC' }> | null;
  page?: number | null;
  pageSize?: number | null;
  after?: string | null;
}

export const SEARCH_LIMITS = {
  maxPageSize: 200,
  defaultPageSize: 20,
  maxTextLength: 500,
  maxWords: 8,
  maxFacets: 10,
  maxTermsSize: 100,
  defaultTermsSize: 10,
  maxEdges: 20,
  /** Pages in one cached result window. */
  pagesPerWindow: 10,
  /** Deepest page by number (its windows are read one after another); `after` goes on from there. */
  maxPage: 500,
} as const;

const DEFAULT_SORT = [{ field: 'createdAt', direction: 'DESC' as const }];
const INTERVALS: readonly DateInterval[] = ['DAY', 'WEEK', 'MONTH', 'QUARTER'];

/**
 * Checks a search input against the field catalog and the limits; one ValidationError names every problem before
 * anything runs. `cursorSecret` signs and checks `after` cursors.
 */
export function normalizeSearch(
  input: SearchInputShape,
  companyId: string,
  cursorSecret: string,
): SearchQuery {
  const type = input.entityType;
  const violations: FieldViolation[] = [];
  const words = textWords(input.text ?? '', violations);
  const filters = input.filters ?? [];
  violations.push(...filterViolations(type, filters, 'input.filters'));
  const sort = sortTerms(type, input.sort, violations);
  const facets = facetSpecs(type, input.facets ?? [], violations);
  const { page, pageSize } = pageOf(input, violations);
  if (violations.length > 0) throw new ValidationError(violations);

  const tsquery = words.length ? words.map((word) => `${word}:*`).join(' & ') : null;
  const rowsKey = rowsKeyOf(type, words, filters, sort);
  const after = input.after ? readCursor(input.after, companyId, rowsKey, sort.length, cursorSecret) : null;
  return {
    type,
    table: RECORD_TABLE[type],
    words,
    tsquery,
    filters,
    sort,
    facets,
    page,
    pageSize,
    after,
    rowsKey,
  };
}

/** The distinct lower-cased words of the text. */
function textWords(text: string, violations: FieldViolation[]): string[] {
  if (text.length > SEARCH_LIMITS.maxTextLength)
    violations.push({
      field: 'input.text',
      rule: `must be at most ${SEARCH_LIMITS.maxTextLength} characters`,
    });
  // Words are letters and digits only: nothing of the tsquery syntax can reach to_tsquery.
  const words = [...new Set((text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).slice(0, 50))];
  if (words.length > SEARCH_LIMITS.maxWords)
    violations.push({ field: 'input.text', rule: `must hold at most ${SEARCH_LIMITS.maxWords} words` });
  return words;
}

/** The sort terms asked for (newest first by default), each a sortable catalog field, none repeated. */
function sortTerms(
  type: RecordType,
  input: SearchInputShape['sort'],
  violations: FieldViolation[],
): SortTerm[] {
  const sort: SortTerm[] = [];
  const sortInput = input?.length ? input : DEFAULT_SORT;
  if (sortInput.length > 3) violations.push({ field: 'input.sort', rule: 'must hold at most 3 fields' });
  sortInput.forEach((term, index) => {
    const spec = findField(type, term.field, 'sort');
    if (!spec) {
      violations.push({
        field: `input.sort[${index}].field`,
        rule: `must be one of ${Object.keys(fieldsFor(type, 'sort')).join(', ')} for ${type}`,
      });
    } else if (sort.some((seen) => seen.field === spec.name)) {
      violations.push({ field: `input.sort[${index}].field`, rule: 'must not repeat' });
    } else {
      sort.push({
        field: spec.name,
        column: spec.column,
        kind: spec.kind,
        descending: term.direction === 'DESC',
      });
    }
  });
  return sort;
}

type FacetInput = NonNullable<SearchInputShape['facets']>[number];

/** The facets asked for, each a configured facet field, none repeated, with its defaults filled in. */
function facetSpecs(type: RecordType, facetInput: FacetInput[], violations: FieldViolation[]): FacetSpec[] {
  const facets: FacetSpec[] = [];
  if (facetInput.length > SEARCH_LIMITS.maxFacets)
    violations.push({ field: 'input.facets', rule: `must hold at most ${SEARCH_LIMITS.maxFacets} facets` });
  const config = facetConfig(type);
  facetInput.forEach((facet, index) => {
    const at = `input.facets[${index}]`;
    const configured = config.find((c) => c.field === facet.field);
    const spec = configured && findField(type, configured.field, 'facet');
    if (!configured || !spec) {
      violations.push({
        field: `${at}.field`,
        rule: `must be one of ${config.map((c) => c.field).join(', ')} for ${type}`,
      });
      return;
    }
    if (facets.some((f) => f.field === spec.name)) {
      violations.push({ field: `${at}.field`, rule: 'must not repeat' });
      return;
    }
    facets.push({
      field: spec.name,
      column: spec.column,
      kind: spec.kind,
      type: configured.type,
      ...facetOptions(facet, configured, { at, name: spec.name }, violations),
    });
  });
  return facets;
}

/** A facet's size, edges, interval and time zone, checked against its type, defaults filled in. */
function facetOptions(
  facet: FacetInput,
  configured: ReturnType<typeof facetConfig>[number],
  { at, name }: { at: string; name: string },
  violations: FieldViolation[],
): Pick<FacetSpec, 'size' | 'edges' | 'interval' | 'timeZone'> {
  const size = facet.size ?? SEARCH_LIMITS.defaultTermsSize;
  if (!Number.isInteger(size) || size < 1 || size > SEARCH_LIMITS.maxTermsSize)
    violations.push({
      field: `${at}.size`,
      rule: `must be an integer from 1 to ${SEARCH_LIMITS.maxTermsSize}`,
    });
  const edges = facet.edges ?? [...(configured.edges ?? [])];
  if (facet.edges != null) {
    if (configured.type !== 'RANGE')
      violations.push({
        field: `${at}.edges`,
        rule: `applies to RANGE facets only; ${name} is ${configured.type}`,
      });
    else if (
      edges.length === 0 ||
      edges.length > SEARCH_LIMITS.maxEdges ||
      edges.some((edge, i) => !Number.isFinite(edge) || (i > 0 && edge <= edges[i - 1]!))
    )
      violations.push({
        field: `${at}.edges`,
        rule: `must be 1 to ${SEARCH_LIMITS.maxEdges} finite numbers in strictly ascending order`,
      });
  }
  const interval = facet.interval ?? 'MONTH';
  const timeZone = facet.timeZone ?? 'UTC';
  if ((facet.interval != null || facet.timeZone != null) && configured.type !== 'DATE_HISTOGRAM')
    violations.push({
      field: `${at}.${facet.interval != null ? 'interval' : 'timeZone'}`,
      rule: `applies to DATE_HISTOGRAM facets only; ${name} is ${configured.type}`,
    });
  if (!INTERVALS.includes(interval))
    violations.push({ field: `${at}.interval`, rule: `must be one of ${INTERVALS.join(', ')}` });
  if (timeZone.length > 64 || !isTimeZone(timeZone))
    violations.push({ field: `${at}.timeZone`, rule: 'must be an IANA time zone such as Europe/Berlin' });
  return { size, edges, interval, timeZone };
}

/** The page number and size, within the limits. */
function pageOf(input: SearchInputShape, violations: FieldViolation[]): { page: number; pageSize: number } {
  const page = input.page ?? 1;
  if (!Number.isInteger(page) || page < 1 || page > SEARCH_LIMITS.maxPage)
    violations.push({
      field: 'input.page',
      rule: `must be an integer from 1 to ${SEARCH_LIMITS.maxPage} (continue further with after: endCursor)`,
    });
  const pageSize = input.pageSize ?? SEARCH_LIMITS.defaultPageSize;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > SEARCH_LIMITS.maxPageSize)
    violations.push({
      field: 'input.pageSize',
      rule: `must be an integer from 1 to ${SEARCH_LIMITS.maxPageSize}`,
    });
  return { page, pageSize };
}

/** Identifies the rows asked for (type, text, filters, sort) whatever their order: the key of windows and cursors. */
function rowsKeyOf(type: RecordType, words: string[], filters: RecordFilter[], sort: SortTerm[]): string {
  return createHash('sha256')
    .update(
      JSON.stringify({
        type,
        words: [...words].sort(),
        filters: filters.map((f) => JSON.stringify([f.field, f.op, f.value, f.values, f.from, f.to])).sort(),
        sort: sort.map((s) => [s.field, s.descending]),
      }),
    )
    .digest('base64url')
    .slice(0, 22);
}
