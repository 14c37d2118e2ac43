import type { Pool } from 'pg';
import type { ReadRouting } from '../../platform/db/read-routing';
import { LRUCache } from 'lru-cache';
import type { TieredCache } from '../../platform/cache/tiered.cache';
import type { Principal, RecordType } from '../kernel';
import type { RecordServices } from '../records';
import type { ReadScope, VisibilityService } from '../sharing';
import type { FacetCounts } from './facet-counts';
import type { DataVersion } from './data-version';
import type { LiveReason, SearchIndexes } from './index-registry';
import type { LiveSearch } from './search.live';
import { writeCursor } from './search.cursor';
import { assertVersion, retryOnMovedVersion, type Engine } from './search.engine';
import { IndexEvaluations } from './search.evaluation';
import { facetView, indexFacetCounts, labelled, type FacetNames, type FacetView } from './search.facets';
import type { SeekPoint, SearchQuery } from './search.model';
import { SEARCH_LIMITS, normalizeSearch, type SearchInputShape } from './search.query';

export type FacetSource = 'INDEX' | 'LIVE';

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
  reads: ReadRouting;
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

interface Answer {
  window: Window;
  facets: FacetView[];
  source: FacetSource;
  /** True when the window was computed rather than found in the cache. */
  missed: boolean;
  /** The data version the answer is at (its cache key's). */
  version: DataVersion;
}

/**
 * Faceted search over one record type under the caller's visibility. Totals, facets and result windows come from
 * the process's counting index when it is at the data version Postgres reports, from SQL otherwise; windows and
 * facets are cached per (company, type, data version, visibility key, query), so a write makes them unreachable.
 */
export class SearchService {
  /**
   * Pages of records as loaded, per data version and visibility key: a page asked again is not read again. In this
   * process only (rows hold Dates); a write moves the version, so a page is never stale.
   */
  private readonly pages = new LRUCache<string, object[]>({ max: 2_000, ttl: 60_000 });

  private readonly evaluations: IndexEvaluations;

  constructor(private readonly deps: SearchServiceDeps) {
    this.evaluations = new IndexEvaluations(deps);
  }

  /** The SQL engine (tests observe its statements). */
  get live(): LiveSearch {
    return this.deps.live;
  }

  /** `names` finds owners' and (visibility applied) accounts' names: the request's loaders. */
  async search(principal: Principal, input: SearchInputShape, names: FacetNames): Promise<SearchResultView> {
    // The version, the engine's statements, an index's build or catch-up: all on one server, a replica if it may.
    return this.deps.reads.read(principal, () => this.searchOnce(principal, input, names));
  }

  private async searchOnce(
    principal: Principal,
    input: SearchInputShape,
    names: FacetNames,
  ): Promise<SearchResultView> {
    const started = performance.now();
    const query = normalizeSearch(input, principal.companyId, this.deps.cursorSecret);
    const { visibility, indexes } = this.deps;
    const [{ scope, key: visibilityKey }, readVersion] = await Promise.all([
      visibility.readScopeWithKey(principal, query.type),
      indexes.version(principal.companyId, query.type),
    ]);
    const windowSize = SEARCH_LIMITS.pagesPerWindow * query.pageSize;
    const windowIndex = Math.floor((query.page - 1) / SEARCH_LIMITS.pagesPerWindow);
    const { window, facets, source, missed, version } = await retryOnMovedVersion({
      readVersion,
      versionNow: () => indexes.version(principal.companyId, query.type),
      engineAt: (version) => this.engine(principal.companyId, query.type, version),
      movedToLive: () => this.deps.metrics.live(query.type, 'moving'),
      attempt: (engine) => this.answer(engine, principal.companyId, query, scope, visibilityKey, windowIndex),
    }).finally(() => {
      // Facet buckets and criteria sets the search added count against the memory budget.
      if (this.deps.indexEnabled) indexes.settle(principal.companyId, query.type);
    });

    const offset = (query.page - 1 - windowIndex * SEARCH_LIMITS.pagesPerWindow) * query.pageSize;
    const pageIds = window.ids.slice(offset, offset + query.pageSize);
    const pageKey = `${principal.companyId}:${query.type}:${version}:${visibilityKey}:${query.rowsKey}:${
      query.after ? JSON.stringify(query.after) : '-'
    }:${query.pageSize}:${query.page}`;
    const [items, named] = await Promise.all([
      this.pages.get(pageKey) ??
        this.load(principal, query.type, pageIds).then((rows) => {
          this.pages.set(pageKey, rows);
          return rows;
        }),
      labelled(facets, names),
    ]);
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
      facets: named,
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

  /** The window holding the page, and the facets, from the cache or from `engine` (cached under its version). */
  private async answer(
    engine: Engine,
    companyId: string,
    query: SearchQuery,
    scope: ReadScope,
    visibilityKey: string,
    windowIndex: number,
  ): Promise<Answer> {
    const cacheScope = `${companyId}:${query.type}`;
    const keyBase = `${engine.version}:${visibilityKey}:${query.rowsKey}`;
    const windowSize = SEARCH_LIMITS.pagesPerWindow * query.pageSize;
    const after = query.after ? `${query.after.id}:${JSON.stringify(query.after.values)}` : '-';
    let missed = false;
    const windowAt = (at: number): Promise<Window> =>
      this.deps.cache.getOrCompute(
        cacheScope,
        `w:${keyBase}:${after}:${query.pageSize}:${at}`,
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
    const [window, counted] = await Promise.all([
      windowAt(windowIndex),
      query.facets.length
        ? this.deps.cache.getOrCompute(
            cacheScope,
            `f:${keyBase}:${facetsKey}`,
            this.deps.windowTtlSeconds,
            async (): Promise<{ source: FacetSource; facets: FacetView[] }> => ({
              source: engine.kind === 'index' ? 'INDEX' : 'LIVE',
              facets: await this.facets(engine, query, scope, visibilityKey),
            }),
          )
        : undefined,
    ]);
    return {
      window,
      facets: counted?.facets ?? [],
      source: counted?.source ?? (engine.kind === 'index' ? 'INDEX' : 'LIVE'),
      missed,
      version: engine.version,
    };
  }

  /** Catches this process's index up after a local write, so the next search finds it current. */
  prefetch(companyId: string, type: RecordType): void {
    if (!this.deps.indexEnabled) return;
    void this.deps.indexes.warm(companyId, type).catch(() => undefined);
  }

  /**
   * Deletes change-log entries older than the retention; an index still behind them rebuilds when next used (the
   * version slot records how far its part of the log was pruned).
   */
  async pruneChanges(): Promise<number> {
    const { rowCount } = await this.deps.pool.query(
      `WITH gone AS (
         DELETE FROM search_changes WHERE changed_at < now() - make_interval(secs => $1::float8 / 1000)
         RETURNING company_id, record_type, slot, version)
       UPDATE search_versions v SET pruned_through = greatest(v.pruned_through, g.top)
         FROM (SELECT company_id, record_type, slot, max(version) AS top FROM gone GROUP BY 1, 2, 3) g
        WHERE v.company_id = g.company_id AND v.record_type = g.record_type AND v.slot = g.slot`,
      [this.deps.changeRetentionMs],
    );
    return rowCount ?? 0;
  }

  /** The index if it is at the data version (or can catch up to it), else SQL. */
  private async engine(companyId: string, type: RecordType, version: DataVersion): Promise<Engine> {
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
    const evaluation = await this.evaluations.evaluate(engine, query, scope, visibilityKey);
    const { index } = engine;
    assertVersion(engine, index.version);
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
  ): Promise<FacetView[]> {
    let counts: FacetCounts[];
    if (engine.kind === 'live') {
      counts = await Promise.all(query.facets.map((facet) => this.deps.live.facet(query, scope, facet)));
    } else {
      const evaluation = await this.evaluations.evaluate(engine, query, scope, visibilityKey);
      // The index is written in place by catch-ups: bitsets of one version must not meet columns of another.
      assertVersion(engine, engine.index.version);
      counts = indexFacetCounts(engine.index, evaluation, query);
    }
    return query.facets.map((facet, i) => facetView(facet, counts[i]!));
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
}
