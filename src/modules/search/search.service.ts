import type { Pool } from 'pg';
import { LRUCache } from 'lru-cache';
import type { TieredCache } from '../../platform/cache/tiered.cache';
import { bindNamed, filtersToSql, type Principal, type RecordType } from '../kernel';
import type { RecordServices } from '../records';
import { criteriaToSql, type ReadScope, type VisibilityService } from '../sharing';
import { bucketRange } from './search.dates';
import { searchDocumentSql } from './search.document';
import { andInto, orInto, popcount } from './bitset';
import type { CountingIndex } from './counting-index';
import type { FacetCounts } from './facet-counts';
import type { LiveReason, SearchIndexes } from './index-registry';
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

/**
 * Names for owner and account buckets, looked up per request (an account's name only when the caller may read the
 * account: a deal's visibility says nothing of its account's), so never taken from the shared cache.
 */
export interface FacetNames {
  users(ids: string[]): Promise<Array<{ name: string } | null | Error>>;
  accounts(ids: string[]): Promise<Array<{ name: string } | null | Error>>;
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

interface Answer {
  window: Window;
  facets: FacetView[];
  source: FacetSource;
  /** True when the window was computed rather than found in the cache. */
  missed: boolean;
  /** The data version the answer is at (its cache key's). */
  version: number;
}

type Engine = { kind: 'index'; index: CountingIndex; version: number } | { kind: 'live'; version: number };

class VersionMoved extends Error {}

/**
 * Faceted search over one record type under the caller's visibility. Totals, facets and result windows come from
 * the process's counting index when it is at the data version Postgres reports, from SQL otherwise; windows and
 * facets are cached per (company, type, data version, visibility key, query), so a write makes them unreachable.
 */
export class SearchService {
  /** In flight or done: the window and the facets of one search ask at once, and must not evaluate twice. */
  private readonly evaluations = new LRUCache<string, Promise<Evaluation>>({ max: 16 });
  /** Rows matched by SQL conditions the index has no column for (text, some filters), per index version. */
  private readonly sqlSets = new LRUCache<string, string[]>({ max: 64 });
  /**
   * Pages of records as loaded, per data version and visibility key: a page asked again is not read again. In this
   * process only (rows hold Dates); a write moves the version, so a page is never stale.
   */
  private readonly pages = new LRUCache<string, object[]>({ max: 2_000, ttl: 60_000 });

  constructor(private readonly deps: SearchServiceDeps) {}

  /** The SQL engine (tests observe its statements). */
  get live(): LiveSearch {
    return this.deps.live;
  }

  /** `names` finds owners' and (visibility applied) accounts' names: the request's loaders. */
  async search(principal: Principal, input: SearchInputShape, names: FacetNames): Promise<SearchResultView> {
    const started = performance.now();
    const query = normalizeSearch(input, principal.companyId, this.deps.cursorSecret);
    const { visibility, indexes } = this.deps;
    const [{ scope, key: visibilityKey }, readVersion] = await Promise.all([
      visibility.readScopeWithKey(principal, query.type),
      indexes.version(principal.companyId, query.type),
    ]);
    const windowSize = SEARCH_LIMITS.pagesPerWindow * query.pageSize;
    const windowIndex = Math.floor((query.page - 1) / SEARCH_LIMITS.pagesPerWindow);
    const answer = (engine: Engine) =>
      this.answer(engine, principal.companyId, query, scope, visibilityKey, windowIndex);
    let answered: Answer;
    try {
      answered = await answer(await this.engine(principal.companyId, query.type, readVersion));
    } catch (error) {
      if (!(error instanceof VersionMoved)) throw error;
      // The index moved on while this search read from it: once more at the new version, then from SQL.
      try {
        const version = await indexes.version(principal.companyId, query.type);
        answered = await answer(await this.engine(principal.companyId, query.type, version));
      } catch (again) {
        if (!(again instanceof VersionMoved)) throw again;
        this.deps.metrics.live(query.type, 'moving');
        answered = await answer({ kind: 'live', version: readVersion });
      }
    }
    const { window, facets, source, missed, version } = answered;

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
      this.labelled(facets, names),
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
    if (index.version !== engine.version) throw new VersionMoved();
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
      const evaluation = await this.evaluate(engine, query, scope, visibilityKey);
      // The index is written in place by catch-ups: bitsets of one version must not meet columns of another.
      if (engine.index.version !== engine.version) throw new VersionMoved();
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
    return query.facets.map((facet, i) => this.facetView(facet, counts[i]!));
  }

  /** Buckets without names: what may be cached, since names depend on more than the record type's visibility. */
  private facetView(facet: FacetSpec, counted: FacetCounts): FacetView {
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
  private async labelled(facets: FacetView[], names: FacetNames): Promise<FacetView[]> {
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
    // Bitsets hold row numbers, which belong to one index: a rebuild at the same version numbers rows anew.
    const key = `${index.companyId}:${index.type}:${index.generation}:${engine.version}:${visibilityKey}:${query.rowsKey}`;
    let pending = this.evaluations.get(key);
    if (!pending) {
      const started = this.computeEvaluation(engine, query, scope);
      pending = started;
      this.evaluations.set(key, started);
      started.catch(() => {
        if (this.evaluations.get(key) === started) this.evaluations.delete(key);
      });
    }
    const evaluation = await pending;
    // The index is written in place by catch-ups: its bitsets must still describe it.
    if (index.version !== engine.version) throw new VersionMoved();
    return evaluation;
  }

  private async computeEvaluation(
    engine: Extract<Engine, { kind: 'index' }>,
    query: SearchQuery,
    scope: ReadScope,
  ): Promise<Evaluation> {
    const { index } = engine;

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

    // Words of ASCII letters and digits are one lexeme each, lower-cased alike here and in Postgres: the index's
    // own postings answer them. Any other word is matched by the GIN index.
    const inMemoryText = query.words.every((word) => /^[a-z0-9]+$/.test(word));
    const text =
      query.tsquery && !inMemoryText
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
    // Manual shares, as ids: sharing reads its own table.
    const shared = await this.deps.visibility.sharedRecordIds(scope, index.type);
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
    else if (query.tsquery)
      for (const word of query.words) andInto(base, index.text.match(word, index.wordCount));
    const filters = query.filters.map((filter, i) => {
      const ids = sqlFilters.get(i);
      return ids ? index.rowsOf(ids) : index.filter(filter);
    });
    const candidate = new Uint32Array(base);
    for (const bits of filters) andInto(candidate, bits);
    return { version: engine.version, base, filters, candidate, total: popcount(candidate) };
  }
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
