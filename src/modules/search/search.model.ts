import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { ValidationError, type FieldViolation } from '../../platform/errors/app-error';
import {
  FIELD_CATALOG,
  isTimeZone,
  RECORD_TABLE,
  fieldsFor,
  findField,
  filterViolations,
  type FieldKind,
  type FieldSpec,
  type RecordFilter,
  type RecordType,
} from '../kernel';

export type FacetType = 'TERMS' | 'RANGE' | 'DATE_HISTOGRAM';
export type DateInterval = 'DAY' | 'WEEK' | 'MONTH' | 'QUARTER';

/** Default bucket edges of each RANGE facet (half-open buckets [from, to), open at both ends). */
const RANGE_EDGES: Readonly<Record<RecordType, Readonly<Record<string, readonly number[]>>>> = {
  LEAD: { score: [20, 40, 60, 80], estimatedValue: [1_000, 10_000, 50_000, 100_000] },
  DEAL: { amount: [1_000, 10_000, 50_000, 100_000], probability: [25, 50, 75] },
  ACCOUNT: { annualRevenue: [1e6, 1e7, 1e8, 1e9], employees: [10, 100, 1_000, 10_000] },
};

export function facetTypeOf(kind: FieldKind): FacetType {
  if (kind === 'timestamp' || kind === 'day') return 'DATE_HISTOGRAM';
  if (kind === 'int' || kind === 'number' || kind === 'money') return 'RANGE';
  return 'TERMS';
}

/**
 * The facet configuration of a record type: every field the catalog marks `facet`, its type following from its kind,
 * RANGE facets with their default edges.
 */
export function facetConfig(
  type: RecordType,
): ReadonlyArray<{ field: string; type: FacetType; edges?: readonly number[] }> {
  return Object.values(fieldsFor(type, 'facet')).map((spec) => ({
    field: spec.name,
    type: facetTypeOf(spec.kind),
    ...(facetTypeOf(spec.kind) === 'RANGE' ? { edges: RANGE_EDGES[type][spec.name] ?? [] } : {}),
  }));
}

/** A facet as asked for, checked and with its defaults filled in. */
export interface FacetSpec {
  field: string;
  column: string;
  kind: FieldKind;
  type: FacetType;
  /** TERMS: buckets kept before the rest is summed into `other`. */
  size: number;
  /** RANGE: ascending edges. */
  edges: number[];
  interval: DateInterval;
  timeZone: string;
}

export interface SortTerm {
  field: string;
  column: string;
  kind: FieldKind;
  descending: boolean;
}

/** Where a page starts: the sort values of the row before it (canonical form, see `canonicalSql`) and its id. */
export interface SeekPoint {
  values: Array<string | number | null>;
  id: string;
}

/** A search after validation: everything the engines read; nothing unchecked. */
export interface SearchQuery {
  type: RecordType;
  table: string;
  /** Lower-cased words the text must contain as prefixes (AND), or empty. */
  words: string[];
  /** `to_tsquery('simple', ...)` text for `words`, or null. */
  tsquery: string | null;
  filters: RecordFilter[];
  sort: SortTerm[];
  facets: FacetSpec[];
  page: number;
  pageSize: number;
  after: SeekPoint | null;
  /** Identifies the rows asked for (type, text, filters, sort): the key of windows and cursors. */
  rowsKey: string;
}

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
  const text = input.text ?? '';
  if (text.length > SEARCH_LIMITS.maxTextLength)
    violations.push({
      field: 'input.text',
      rule: `must be at most ${SEARCH_LIMITS.maxTextLength} characters`,
    });
  // Words are letters and digits only: nothing of the tsquery syntax can reach to_tsquery.
  const words = [...new Set((text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).slice(0, 50))];
  if (words.length > SEARCH_LIMITS.maxWords)
    violations.push({ field: 'input.text', rule: `must hold at most ${SEARCH_LIMITS.maxWords} words` });

  const filters = input.filters ?? [];
  violations.push(...filterViolations(type, filters, 'input.filters'));

  const sort: SortTerm[] = [];
  const sortInput = input.sort?.length ? input.sort : DEFAULT_SORT;
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

  const facets: FacetSpec[] = [];
  const facetInput = input.facets ?? [];
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
          rule: `applies to RANGE facets only; ${spec.name} is ${configured.type}`,
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
        rule: `applies to DATE_HISTOGRAM facets only; ${spec.name} is ${configured.type}`,
      });
    if (!INTERVALS.includes(interval))
      violations.push({ field: `${at}.interval`, rule: `must be one of ${INTERVALS.join(', ')}` });
    if (timeZone.length > 64 || !isTimeZone(timeZone))
      violations.push({ field: `${at}.timeZone`, rule: 'must be an IANA time zone such as Europe/Berlin' });
    facets.push({
      field: spec.name,
      column: spec.column,
      kind: spec.kind,
      type: configured.type,
      size,
      edges,
      interval,
      timeZone,
    });
  });

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
  if (violations.length > 0) throw new ValidationError(violations);

  const tsquery = words.length ? words.map((word) => `${word}:*`).join(' & ') : null;
  const rowsKey = createHash('sha256')
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

/** An opaque cursor for the row after which a page starts, bound to the company and the query by an HMAC. */
export function writeCursor(point: SeekPoint, companyId: string, rowsKey: string, secret: string): string {
  const body = Buffer.from(JSON.stringify({ v: point.values, i: point.id })).toString('base64url');
  return `${body}.${cursorMac(body, companyId, rowsKey, secret)}`;
}

function cursorMac(body: string, companyId: string, rowsKey: string, secret: string): string {
  return createHmac('sha256', secret)
    .update(`search-cursor|${companyId}|${rowsKey}|${body}`)
    .digest('base64url')
    .slice(0, 22);
}

function readCursor(
  cursor: string,
  companyId: string,
  rowsKey: string,
  terms: number,
  secret: string,
): SeekPoint {
  const wrong = () =>
    ValidationError.single(
      'input.after',
      'must be a cursor returned by this same search (text, filters and sort)',
    );
  const [body, mac] = cursor.split('.');
  if (!body || !mac || cursor.length > 2000) throw wrong();
  const expected = Buffer.from(cursorMac(body, companyId, rowsKey, secret));
  const given = Buffer.from(mac);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw wrong();
  let parsed: { v?: unknown; i?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as typeof parsed;
  } catch {
    throw wrong();
  }
  if (!Array.isArray(parsed.v) || parsed.v.length !== terms || typeof parsed.i !== 'string') throw wrong();
  return { values: parsed.v as SeekPoint['values'], id: parsed.i };
}

/**
 * The canonical form of a field's value, as both engines read it: text, enums and ids as strings; numbers as numbers;
 * instants as microseconds since 1970 (exact in a double); days as days since 1970.
 */
export function canonicalSql(spec: Pick<FieldSpec, 'kind' | 'column'>, alias: string): string {
  const column = `${alias}.${spec.column}`;
  switch (spec.kind) {
    case 'uuid':
      return `${column}::text`;
    case 'number':
    case 'money':
      return `${column}::float8`;
    case 'timestamp':
      return `(extract(epoch from ${column}) * 1000000)::float8`;
    case 'day':
      return `(${column} - date '1970-01-01')`;
    default:
      return column;
  }
}

/** A canonical value bound back into SQL against the column itself (so its indexes still serve). */
export function canonicalToSql(
  kind: FieldKind,
  value: string | number,
  bind: (value: unknown) => string,
): string {
  switch (kind) {
    case 'timestamp':
      return `${bind(microsToIso(Number(value)))}::timestamptz`;
    case 'day':
      return `${bind(new Date(Number(value) * 86_400_000).toISOString().slice(0, 10))}::date`;
    case 'int':
      return `${bind(Number(value))}::int`;
    case 'number':
    case 'money':
      return `${bind(String(value))}::numeric`;
    case 'uuid':
      return `${bind(String(value))}::uuid`;
    default:
      return `${bind(String(value))}::text COLLATE "C"`;
  }
}

function microsToIso(micros: number): string {
  const millis = Math.floor(micros / 1000);
  const rest = micros - millis * 1000;
  return `${new Date(millis).toISOString().slice(0, 23)}${String(rest).padStart(3, '0')}Z`;
}

/** A column as sorted: text in code-point order (COLLATE "C"), which is how the counting index compares strings. */
export function sortColumnSql(term: SortTerm, alias: string): string {
  const column = `${alias}.${term.column}`;
  return term.kind === 'text' || term.kind === 'enum' ? `${column} COLLATE "C"` : column;
}

/** Every catalog field of a record type with the SQL of its canonical form (for the index build and catch-up). */
export function canonicalColumns(type: RecordType): Array<{ spec: FieldSpec; sql: string }> {
  return Object.values(FIELD_CATALOG[type])
    .filter((spec) => spec.name !== 'id')
    .map((spec) => ({ spec, sql: canonicalSql(spec, 'r') }));
}
