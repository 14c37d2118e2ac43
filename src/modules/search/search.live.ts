import type { Pool } from 'pg';
import { bindNamed, filtersToSql } from '../kernel';
import type { ReadScope } from '../sharing';
import { searchDocumentSql } from './search.document';
import type { FacetCounts } from './facet-counts';
import {
  canonicalSql,
  canonicalToSql,
  sortColumnSql,
  type FacetSpec,
  type SearchQuery,
  type SeekPoint,
  type SortTerm,
} from './search.model';

const TRUNC_UNIT = { DAY: 'day', WEEK: 'week', MONTH: 'month', QUARTER: 'quarter' } as const;

/** Positional parameters for one statement. */
class Params {
  readonly values: unknown[] = [];
  bind = (value: unknown): string => `$${this.values.push(value)}`;
}

/** The conditions every part of a search shares: tenant and visibility, text, and the filters (all, or all but one field's). */
function whereSql(query: SearchQuery, scope: ReadScope, params: Params, exceptField?: string): string {
  const parts = [bindNamed(scope.predicate('r'), params.bind)];
  if (query.tsquery)
    parts.push(
      `${searchDocumentSql(query.table as 'leads', 'r')} @@ to_tsquery('simple'::regconfig, ${params.bind(query.tsquery)})`,
    );
  const filters = exceptField ? query.filters.filter((f) => f.field !== exceptField) : query.filters;
  if (filters.length) parts.push(filtersToSql(query.type, filters, 'r', params.bind));
  return parts.join(' AND ');
}

/**
 * Rows after a seek point in the sort order, as SQL (keyset pagination: no OFFSET, whatever the page). NULLS LAST in
 * both directions: after a NULL only NULLs (with a greater id) follow.
 */
function seekSql(sort: readonly SortTerm[], after: SeekPoint, bind: (value: unknown) => string): string {
  const idDescending = sort.at(-1)?.descending ?? false;
  const alternatives: string[] = [];
  const equal: string[] = [];
  for (let i = 0; i <= sort.length; i++) {
    if (i === sort.length) {
      alternatives.push([...equal, `r.id ${idDescending ? '<' : '>'} ${bind(after.id)}::uuid`].join(' AND '));
      break;
    }
    const term = sort[i]!;
    const column = sortColumnSql(term, 'r');
    const value = after.values[i] ?? null;
    if (value === null) {
      // Nothing sorts after NULL but NULL.
      equal.push(`${column} IS NULL`);
      continue;
    }
    const bound = canonicalToSql(term.kind, value, bind);
    alternatives.push(
      [...equal, `(${column} ${term.descending ? '<' : '>'} ${bound} OR ${column} IS NULL)`].join(' AND '),
    );
    equal.push(`${column} = ${bound}`);
  }
  return `(${alternatives.map((a) => `(${a})`).join(' OR ')})`;
}

function orderSql(sort: readonly SortTerm[]): string {
  const idDescending = sort.at(-1)?.descending ?? false;
  return [
    ...sort.map((term) => `${sortColumnSql(term, 'r')} ${term.descending ? 'DESC' : 'ASC'} NULLS LAST`),
    `r.id ${idDescending ? 'DESC' : 'ASC'}`,
  ].join(', ');
}

/** The bucket expression of a facet in SQL, giving the same keys as the counting index. */
function bucketSql(facet: FacetSpec, params: Params): string {
  const column = `r.${facet.column}`;
  if (facet.type === 'TERMS') return canonicalSql(facet, 'r');
  if (facet.type === 'RANGE') {
    const edges = facet.edges.map(
      (edge, i) => `WHEN ${column} < ${params.bind(String(edge))}::numeric THEN ${i}`,
    );
    return `CASE WHEN ${column} IS NULL THEN NULL ${edges.join(' ')} ELSE ${facet.edges.length} END`;
  }
  const unit = TRUNC_UNIT[facet.interval];
  const local =
    facet.kind === 'timestamp'
      ? `(${column} AT TIME ZONE ${params.bind(facet.timeZone)}::text)`
      : `${column}::timestamp`;
  return `to_char(date_trunc('${unit}', ${local}), 'YYYY-MM-DD')`;
}

/** Searches answered by SQL alone: the path when the counting index cannot prove it is current, and the reference. */
export class LiveSearch {
  /** Every statement run, for tests that assert the SQL (e.g. no OFFSET when paging deep). */
  onStatement?: (sql: string) => void;

  constructor(private readonly pool: Pool) {}

  private async run<T>(sql: string, params: Params): Promise<T[]> {
    this.onStatement?.(sql);
    return (await this.pool.query(sql, params.values)).rows as T[];
  }

  async total(query: SearchQuery, scope: ReadScope): Promise<number> {
    const params = new Params();
    const [row] = await this.run<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${query.table} r WHERE ${whereSql(query, scope, params)}`,
      params,
    );
    return row?.n ?? 0;
  }

  /** Up to `limit` rows after `after` (or from the start), in order, each with its seek point. */
  async window(
    query: SearchQuery,
    scope: ReadScope,
    after: SeekPoint | null,
    limit: number,
  ): Promise<Array<{ id: string; point: SeekPoint }>> {
    const params = new Params();
    const seek = after ? ` AND ${seekSql(query.sort, after, params.bind)}` : '';
    const values = query.sort.map((term, i) => `${canonicalSql(term, 'r')} AS s${i}`);
    const rows = await this.run<Record<string, string | number | null>>(
      `SELECT r.id::text AS id${values.map((v) => `, ${v}`).join('')} FROM ${query.table} r
        WHERE ${whereSql(query, scope, params)}${seek}
        ORDER BY ${orderSql(query.sort)} LIMIT ${params.bind(limit)}`,
      params,
    );
    return rows.map((row) => ({
      id: String(row.id),
      point: { values: query.sort.map((_, i) => row[`s${i}`] ?? null), id: String(row.id) },
    }));
  }

  /** Counts of one facet under every condition but those on its own field (disjunctive faceting). */
  async facet(query: SearchQuery, scope: ReadScope, facet: FacetSpec): Promise<FacetCounts> {
    const params = new Params();
    const where = whereSql(query, scope, params, facet.field);
    const rows = await this.run<{ k: string | number | null; n: number }>(
      `SELECT ${bucketSql(facet, params)} AS k, count(*)::int AS n FROM ${query.table} r WHERE ${where} GROUP BY 1`,
      params,
    );
    const counted = rows.filter((row) => row.k !== null);
    return {
      keys: counted.map((row) => String(row.k)),
      counts: counted.map((row) => row.n),
      missing: rows.find((row) => row.k === null)?.n ?? 0,
    };
  }
}
