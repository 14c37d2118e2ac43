import type { Pool } from 'pg';
import { LRUCache } from 'lru-cache';
import { searchDocumentSql } from '../../../migrations/1765200000000-search';
import type { TieredCache } from '../../platform/cache/tiered.cache';
import { bindNamed, filtersToSql, type Principal, type RecordType } from '../kernel';
import type { RecordServices } from '../records';
import { criteriaToSql, type ReadScope, type VisibilityService } from '../sharing';
import { bucketRange } from './search.dates';
import { andInto, orInto, popcount, type CountingIndex, type FacetCounts } from './search.index';
import type { LiveReason, SearchIndexes } from './search.indexes';
import type { LiveSearch } from './search.live';
import {
  SEARCH_LIMITS,
  normalizeSearch,
  writeCursor,
  type FacetSpec,
  type FacetType,
  type SearchInputShape,
  type SearchQuery,
  type SeekPoint,
} from './search.model';

export type FacetSource = 'INDEX' | 'LIVE';

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

export interface SearchResultView {
  total: number;
  page: number;
  pageSize: number;
  items: object[];
  facets: FacetView[];
  tookMs: number;
  facetSource: FacetSource;
  window: 'HIT' | 'MISS';
  endCursor: string | null;
  hasNextPage: boolean;
}

export interface SearchMetrics {
  duration(entity: RecordType, source: FacetSource, seconds: number): void;
  live(entity: RecordType, reason: LiveReason): void;
}

export interface SearchServiceDeps {
  pool: Pool;
  visibility: VisibilityService;
  records: RecordServices;
  cache: TieredCache;
  indexes: SearchIndexes;
  live: LiveSearch;
  cursorSecret: string;
  windowTtlSeconds: number;
  indexEnabled: boolean;
  changeRetentionMs: number;
  metrics: SearchMetrics;
}

/** A window of several pages: ordered ids, where each page ends, and the total. */
interface Window {
  ids: string[];
  pageEnds: SeekPoint[];
  total: number;
}

/** The bitsets of one query at one index version (candidate = base AND every filter). */
interface Evaluation {
  version: number;
  base: Uint32Array;
  filters: Uint32Array[];
  candidate: Uint32Array;
  total: number;
}

type Engine = { kind: 'index'; index: CountingIndex; version: number } | { kind: 'live'; version: number };

class VersionMoved extends Error {}

/**
 * Faceted search over one record type under the caller's visibility. Totals, facets and result windows come from
 * the process's counting index when it is at the data version Postgres reports, from SQL otherwise; windows and
 * facets are cached per (company, type, data version, visibility key, query), so a write makes them unreachable.
 */
export class SearchService {
  private readonly evaluations = new LRUCache<string, Evaluation>({ max: 16 });
  /** Rows matched by SQL conditions the index has no column for (text, some filters), per index version. */
  private readonly sqlSets = new LRUCache<string, string[]>({ max: 64 });

  constructor(private readonly deps: SearchServiceDeps) {}

  /** The SQL engine (tests observe its statements). */
  get live(): LiveSearch {
    return this.deps.live;
  }

  async search(principal: Principal, input: SearchInputShape): Promise<SearchResultView> {
    const started = performance.now();
    const query = normalizeSearch(input, principal.companyId, this.deps.cursorSecret);
    const { visibility, indexes } = this.deps;
    const [scope, visibilityKey, readVersion] = await Promise.all([
      visibility.readScope(principal, query.type),
      visibility.visibilityKey(principal, query.type),
      indexes.version(principal.companyId, query.type),
    ]);
    const engine = await this.engine(principal.companyId, query.type, readVersion);
    const cacheScope = `${principal.companyId}:${query.type}`;
    const keyBase = `${engine.version}:${visibilityKey}:${query.rowsKey}`;
    const windowSize = SEARCH_LIMITS.pagesPerWindow * query.pageSize;
    const windowIndex = Math.floor((query.page - 1) / SEARCH_LIMITS.pagesPerWindow);
    let missed = false;
    let source: FacetSource = engine.kind === 'index' ? 'INDEX' : 'LIVE';

    const windowAt = (at: number): Promise<Window> =>
      this.deps.cache.getOrCompute(
        cacheScope,
        `w:${keyBase}:${query.after ? `${query.after.id}:${JSON.stringify(query.after.values)}` : '-'}:${query.pageSize}:${at}`,
        this.deps.windowTtlSeconds,
        async () => {
          missed = true;
          const previous = at > 0 ? await windowAt(at - 1) : null;
          if (previous && previous.ids.length < windowSize)
            return { ids: [], pageEnds: [], total: previous.total };
          // Keyset from the previous window's last row: never an OFFSET, however deep the page.
          const start = previous ? previous.pageEnds.at(-1)! : query.after;
          return this.window(engine, query, scope, visibilityKey, start, windowSize, previous?.total);
        },
      );

    const facetsKey = JSON.stringify(
      query.facets.map((f) => [f.field, f.size, f.edges, f.interval, f.timeZone]),
    );
    const facetsAt = () =>
      this.deps.cache.getOrCompute(
        cacheScope,
        `f:${keyBase}:${facetsKey}`,
        this.deps.windowTtlSeconds,
        async (): Promise<{ source: FacetSource; facets: FacetView[] }> => ({
          source: engine.kind === 'index' ? 'INDEX' : 'LIVE',
          facets: await this.facets(engine, query, scope, visibilityKey, principal),
        }),
      );

    let window: Window;
    let facets: FacetView[] = [];
    try {
      const [found, counted] = await Promise.all([
        windowAt(windowIndex),
        query.facets.length ? facetsAt() : undefined,
      ]);
      window = found;
      if (counted) {
        facets = counted.facets;
        source = counted.source;
      }
    } catch (error) {
      if (!(error instanceof VersionMoved)) throw error;
      // The index moved on while SQL sets were read: answer this one from SQL.
      this.deps.metrics.live(query.type, 'moving');
      const liveEngine: Engine = { kind: 'live', version: readVersion };
      const start = query.after;
      const windows: Window[] = [];
      for (let at = 0; at <= windowIndex; at++) {
        const previous = windows.at(-1);
        if (previous && previous.ids.length < windowSize) break;
        windows.push(
          await this.window(
            liveEngine,
            query,
            scope,
            visibilityKey,
            previous?.pageEnds.at(-1) ?? start,
            windowSize,
          ),
        );
      }
      window = windows[windowIndex] ?? { ids: [], pageEnds: [], total: windows[0]?.total ?? 0 };
      facets = await this.facets(liveEngine, query, scope, visibilityKey, principal);
      source = 'LIVE';
      missed = true;
    }

    const offset = (query.page - 1 - windowIndex * SEARCH_LIMITS.pagesPerWindow) * query.pageSize;
    const pageIds = window.ids.slice(offset, offset + query.pageSize);
    const items = await this.load(principal, query.type, pageIds);
    const pageEnd = window.pageEnds[Math.floor(offset / query.pageSize)];
    const hasNextPage =
      window.ids.length > offset + query.pageSize ||
      (window.ids.length === windowSize && pageIds.length === query.pageSize);
    const tookMs = Math.round((performance.now() - started) * 100) / 100;
    this.deps.metrics.duration(query.type, source, tookMs / 1000);
    return {
      total: window.total,
      page: query.page,
      pageSize: query.pageSize,
      items,
      facets,
      tookMs,
      facetSource: source,
      window: missed ? 'MISS' : 'HIT',
      endCursor:
        pageIds.length && pageEnd
          ? writeCursor(pageEnd, principal.companyId, query.rowsKey, this.deps.cursorSecret)
          : null,
      hasNextPage,
    };
  }

  /** Catches this process's index up after a local write, so the next search finds it current. */
  prefetch(companyId: string, type: RecordType): void {
    if (!this.deps.indexEnabled) return;
    void this.deps.indexes.warm(companyId, type).catch(() => undefined);
  }

  /**
   * Deletes change-log entries older than the retention; an index still behind them rebuilds when next used (the
   * versions row records how far the log was pruned).
   */
  async pruneChanges(): Promise<number> {
    const { rowCount } = await this.deps.pool.query(
      `WITH gone AS (
         DELETE FROM search_changes WHERE changed_at < now() - make_interval(secs => $1::float8 / 1000)
         RETURNING company_id, record_type, version)
       UPDATE search_versions v SET pruned_through = greatest(v.pruned_through, g.top)
         FROM (SELECT company_id, record_type, max(version) AS top FROM gone GROUP BY 1, 2) g
        WHERE v.company_id = g.company_id AND v.record_type = g.record_type`,
      [this.deps.changeRetentionMs],
    );
    return rowCount ?? 0;
  }

  /** The index if it is at the data version (or can catch up to it), else SQL. */
  private async engine(companyId: string, type: RecordType, version: number): Promise<Engine> {
    if (!this.deps.indexEnabled) {
      this.deps.metrics.live(type, 'disabled');
      return { kind: 'live', version };
    }
    const found = await this.deps.indexes.current(companyId, type, version);
    if ('index' in found) return { kind: 'index', index: found.index, version: found.index.version };
    this.deps.metrics.live(type, found.reason);
    return { kind: 'live', version };
  }

  private async window(
    engine: Engine,
    query: SearchQuery,
    scope: ReadScope,
    visibilityKey: string,
    after: SeekPoint | null,
    size: number,
    knownTotal?: number,
  ): Promise<Window> {
    const pageEndsOf = <T>(rows: T[], point: (row: T) => SeekPoint) =>
      rows.filter((_, i) => (i + 1) % query.pageSize === 0 || i === rows.length - 1).map(point);
    if (engine.kind === 'live') {
      const [rows, total] = await Promise.all([
        this.deps.live.window(query, scope, after, size),
        knownTotal ?? this.deps.live.total(query, scope),
      ]);
      return { ids: rows.map((row) => row.id), pageEnds: pageEndsOf(rows, (row) => row.point), total };
    }
    const evaluation = await this.evaluate(engine, query, scope, visibilityKey);
    const { index } = engine;
    const rows = index.top(evaluation.candidate, query.sort, after, size);
    return {
      ids: rows.map((row) => index.idOf(row)),
      pageEnds: pageEndsOf(rows, (row) => index.seekPoint(row, query.sort)),
      total: evaluation.total,
    };
  }

  private async facets(
    engine: Engine,
    query: SearchQuery,
    scope: ReadScope,
    visibilityKey: string,
    principal: Principal,
  ): Promise<FacetView[]> {
    let counts: FacetCounts[];
    if (engine.kind === 'live') {
      counts = await Promise.all(query.facets.map((facet) => this.deps.live.facet(query, scope, facet)));
    } else {
      const evaluation = await this.evaluate(engine, query, scope, visibilityKey);
      counts = query.facets.map((facet) => {
        // Disjunctive: every condition but those on the facet's own field.
        const own = query.filters
          .map((filter, i) => (filter.field === facet.field ? i : -1))
          .filter((i) => i >= 0);
        let words = evaluation.candidate;
        if (own.length) {
          words = new Uint32Array(evaluation.base);
          evaluation.filters.forEach((bits, i) => own.includes(i) || andInto(words, bits));
        }
        return engine.index.facet(words, facet);
      });
    }
    return Promise.all(query.facets.map((facet, i) => this.facetView(facet, counts[i]!, principal)));
  }

  private async facetView(facet: FacetSpec, counted: FacetCounts, principal: Principal): Promise<FacetView> {
    if (facet.type === 'RANGE') {
      const buckets = facet.edges.concat([NaN]).map((edge, i) => {
        const from = i === 0 ? null : String(facet.edges[i - 1]);
        const to = Number.isNaN(edge) ? null : String(edge);
        const key = `${from ?? '*'}..${to ?? '*'}`;
        return { key, label: key, from, to, count: counted.counts.get(String(i)) ?? 0 };
      });
      return { field: facet.field, type: facet.type, buckets, other: 0, missing: counted.missing };
    }
    if (facet.type === 'DATE_HISTOGRAM') {
      const instants = facet.kind === 'timestamp';
      const buckets = [...counted.counts.entries()]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([key, count]) => ({
          key,
          label: key,
          ...bucketRange(key, instants, facet.interval, facet.timeZone),
          count,
        }));
      return { field: facet.field, type: facet.type, buckets, other: 0, missing: counted.missing };
    }
    const ranked = [...counted.counts.entries()].sort(([ka, a], [kb, b]) => b - a || (ka < kb ? -1 : 1));
    const top = ranked.slice(0, facet.size);
    const other = ranked.slice(facet.size).reduce((sum, [, n]) => sum + n, 0);
    const labels = await this.labels(
      facet,
      top.map(([key]) => key),
      principal,
    );
    return {
      field: facet.field,
      type: facet.type,
      buckets: top.map(([key, count]) => ({
        key,
        label: labels.get(key) ?? key,
        from: null,
        to: null,
        count,
      })),
      other,
      missing: counted.missing,
    };
  }

  /** Names for owner and account keys: a user's name; an account's name only when the caller may read it. */
  private async labels(facet: FacetSpec, keys: string[], principal: Principal): Promise<Map<string, string>> {
    const labels = new Map<string, string>();
    if (!keys.length) return labels;
    if (facet.field === 'ownerId') {
      const { rows } = await this.deps.pool.query<{ id: string; name: string }>(
        'SELECT id::text, name FROM users WHERE company_id = $1 AND id = ANY($2::uuid[])',
        [principal.companyId, keys],
      );
      for (const row of rows) labels.set(row.id, row.name);
    } else if (facet.field === 'accountId') {
      const accounts = await this.deps.records.accounts.loadReadable(principal, keys);
      accounts.forEach((account, i) => account && labels.set(keys[i]!, account.name));
    }
    return labels;
  }

  /** The page's records in window order, read again under the caller's visibility. */
  private async load(principal: Principal, type: RecordType, ids: string[]): Promise<object[]> {
    if (!ids.length) return [];
    const service =
      type === 'LEAD'
        ? this.deps.records.leads
        : type === 'DEAL'
          ? this.deps.records.deals
          : this.deps.records.accounts;
    const rows = (await service.byIds(principal, ids)) as Array<{ id: string }>;
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  /**
   * The query's bitsets at the index's version: visibility (owners, criteria rules, manual shares), text, filters.
   * What the index has no column for is read from SQL in a statement that also reads the data version; if the index
   * moved past it meanwhile the answer would mix versions, so that throws VersionMoved.
   */
  private async evaluate(
    engine: Extract<Engine, { kind: 'index' }>,
    query: SearchQuery,
    scope: ReadScope,
    visibilityKey: string,
  ): Promise<Evaluation> {
    const { index } = engine;
    const key = `${index.companyId}:${index.type}:${engine.version}:${visibilityKey}:${query.rowsKey}`;
    const cached = this.evaluations.get(key);
    if (cached) return cached;

    const sqlSet = async (
      name: string,
      condition: (bind: (v: unknown) => string) => string,
    ): Promise<string[]> => {
      const setKey = `${index.companyId}:${index.type}:${engine.version}:${name}`;
      const known = this.sqlSets.get(setKey);
      if (known) return known;
      const values: unknown[] = [];
      const sql = condition((value) => `$${values.push(value) + 2}`);
      const found = await this.deps.indexes.idsWhere(index.companyId, index.type, sql, values);
      if (found.version !== engine.version) throw new VersionMoved();
      this.sqlSets.set(setKey, found.ids);
      return found.ids;
    };

    const text = query.tsquery
      ? await sqlSet(
          `text:${query.tsquery}`,
          (bind) =>
            `${searchDocumentSql(query.table as 'leads', 'r')} @@ to_tsquery('simple'::regconfig, ${bind(query.tsquery)})`,
        )
      : null;
    const sqlFilters = new Map<number, string[]>();
    for (const [i, filter] of query.filters.entries()) {
      if (index.canFilter(filter)) continue;
      sqlFilters.set(
        i,
        await sqlSet(`filter:${JSON.stringify(filter)}`, (bind) =>
          filtersToSql(query.type, [filter], 'r', bind),
        ),
      );
    }
    const criteria: string[] = [];
    if (!scope.everything) {
      for (const rule of scope.criteriaRules) {
        const ruleKey = JSON.stringify(rule.conditions);
        criteria.push(ruleKey);
        if (index.hasCriteria(ruleKey)) continue;
        const ids = await sqlSet(`criteria:${ruleKey}`, (bind) => {
          const named: Record<string, unknown> = {};
          const sql = criteriaToSql(query.type, [...rule.conditions], 'r', 'crit_', named);
          return bindNamed({ sql, params: named }, bind);
        });
        if (index.version !== engine.version) throw new VersionMoved();
        if (!index.hasCriteria(ruleKey)) index.setCriteria(ruleKey, [...rule.conditions], ids);
      }
    }
    let shared: string[] = [];
    if (scope.shareGrantees) {
      const { rows } = await this.deps.pool.query<{ id: string }>(
        `SELECT DISTINCT record_id::text AS id FROM record_shares
          WHERE company_id = $1 AND object_type = $2
            AND ((grantee_type = 'USER' AND grantee_id = $3) OR (grantee_type = 'GROUP' AND grantee_id = ANY($4::uuid[])))`,
        [index.companyId, index.type, scope.shareGrantees.userId, scope.shareGrantees.groupIds],
      );
      shared = rows.map((row) => row.id);
    }
    // From here on nothing awaits: the index cannot change under the computation.
    if (index.version !== engine.version) throw new VersionMoved();
    let base: Uint32Array;
    if (scope.everything) base = index.alive();
    else {
      base = index.ownedBy(scope.ownerIds);
      for (const ruleKey of criteria) orInto(base, index.criteriaWords(ruleKey)!);
      if (shared.length) orInto(base, index.rowsOf(shared));
      andInto(base, index.alive());
    }
    if (text) andInto(base, index.rowsOf(text));
    const filters = query.filters.map((filter, i) => {
      const ids = sqlFilters.get(i);
      return ids ? index.rowsOf(ids) : index.filter(filter);
    });
    const candidate = new Uint32Array(base);
    for (const bits of filters) andInto(candidate, bits);
    const evaluation = { version: engine.version, base, filters, candidate, total: popcount(candidate) };
    this.evaluations.set(key, evaluation);
    return evaluation;
  }
}
