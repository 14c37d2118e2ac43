import {
  FIELD_CATALOG,
  fieldsFor,
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
