import { LRUCache } from 'lru-cache';
import { bindNamed, filtersToSql } from '../kernel';
import { criteriaToSql, type ReadScope, type VisibilityService } from '../sharing';
import { andInto, orInto, popcount } from './bitset';
import type { DataVersion } from './data-version';
import { searchDocumentSql } from './search.document';
import { assertVersion, type IndexEngine } from './search.engine';
import type { SearchIndexes } from './index-registry';
import type { SearchQuery } from './search.model';

/** The bitsets of one query at one index version (candidate = base AND every filter). */
export interface Evaluation {
  version: DataVersion;
  base: Uint32Array;
  filters: Uint32Array[];
  candidate: Uint32Array;
  total: number;
}

export interface EvaluationDeps {
  indexes: SearchIndexes;
  visibility: VisibilityService;
}

/** What a query needs from SQL before its bitsets can be combined in memory. */
interface SqlParts {
  /** Rows matching the text, when the index's postings cannot answer it; else null. */
  text: string[] | null;
  /** Rows matching each filter the index has no column for, by the filter's position. */
  filters: Map<number, string[]>;
  /** The keys of the criteria rules that share records with the caller, their sets held by the index. */
  criteria: string[];
  /** Records manual shares give the caller. */
  shared: string[];
}

/** A query's bitsets over a counting index, computed once per index version and visibility, and the SQL sets they use. */
export class IndexEvaluations {
  /** In flight or done: the window and the facets of one search ask at once, and must not evaluate twice. */
  private readonly evaluations = new LRUCache<string, Promise<Evaluation>>({ max: 16 });
  /** Rows matched by SQL conditions the index has no column for (text, some filters), per index version. */
  private readonly sqlSets = new LRUCache<string, string[]>({ max: 64 });

  constructor(private readonly deps: EvaluationDeps) {}

  /**
   * The query's bitsets at the index's version: visibility (owners, criteria rules, manual shares), text, filters.
   * What the index has no column for is read from SQL in a statement that also reads the data version; if the index
   * moved past it meanwhile the answer would mix versions, so that throws VersionMoved.
   */
  async evaluate(
    engine: IndexEngine,
    query: SearchQuery,
    scope: ReadScope,
    visibilityKey: string,
  ): Promise<Evaluation> {
    const { index } = engine;
    // Bitsets hold row numbers, which belong to one index: a rebuild at the same version numbers rows anew.
    const key = `${index.companyId}:${index.type}:${index.generation}:${engine.version}:${visibilityKey}:${query.rowsKey}`;
    let pending = this.evaluations.get(key);
    if (!pending) {
      const started = this.compute(engine, query, scope);
      pending = started;
      this.evaluations.set(key, started);
      started.catch(() => {
        if (this.evaluations.get(key) === started) this.evaluations.delete(key);
      });
    }
    const evaluation = await pending;
    // The index is written in place by catch-ups: its bitsets must still describe it.
    assertVersion(engine, index.version);
    return evaluation;
  }

  private async compute(engine: IndexEngine, query: SearchQuery, scope: ReadScope): Promise<Evaluation> {
    const parts: SqlParts = {
      text: await this.textIds(engine, query),
      filters: await this.filterIds(engine, query),
      criteria: await this.criteriaKeys(engine, query, scope),
      // Manual shares, as ids: sharing reads its own table.
      shared: await this.deps.visibility.sharedRecordIds(scope, engine.index.type),
    };
    // From here on nothing awaits: the index cannot change under the computation.
    assertVersion(engine, engine.index.version);
    return combine(engine, query, scope, parts);
  }

  /** The ids meeting a SQL condition at the engine's version, cached per version. */
  private async sqlSet(
    engine: IndexEngine,
    name: string,
    condition: (bind: (v: unknown) => string) => string,
  ): Promise<string[]> {
    const { index } = engine;
    const setKey = `${index.companyId}:${index.type}:${engine.version}:${name}`;
    const known = this.sqlSets.get(setKey);
    if (known) return known;
    const values: unknown[] = [];
    const sql = condition((value) => `$${values.push(value) + 2}`);
    const found = await this.deps.indexes.idsWhere(index.companyId, index.type, sql, values);
    assertVersion(engine, found.version);
    this.sqlSets.set(setKey, found.ids);
    return found.ids;
  }

  private async textIds(engine: IndexEngine, query: SearchQuery): Promise<string[] | null> {
    // Words of ASCII letters and digits are one lexeme each, lower-cased alike here and in Postgres: the index's
    // own postings answer them. Any other word is matched by the GIN index.
    const inMemoryText = query.words.every((word) => /^[a-z0-9]+$/.test(word));
    if (!query.tsquery || inMemoryText) return null;
    return this.sqlSet(
      engine,
      `text:${query.tsquery}`,
      (bind) =>
        `${searchDocumentSql(query.table as 'leads', 'r')} @@ to_tsquery('simple'::regconfig, ${bind(query.tsquery)})`,
    );
  }

  private async filterIds(engine: IndexEngine, query: SearchQuery): Promise<Map<number, string[]>> {
    const sqlFilters = new Map<number, string[]>();
    for (const [i, filter] of query.filters.entries()) {
      if (engine.index.canFilter(filter)) continue;
      sqlFilters.set(
        i,
        await this.sqlSet(engine, `filter:${JSON.stringify(filter)}`, (bind) =>
          filtersToSql(query.type, [filter], 'r', bind),
        ),
      );
    }
    return sqlFilters;
  }

  /** The keys of the scope's criteria rules, each rule's set stored in the index (read from SQL when new). */
  private async criteriaKeys(engine: IndexEngine, query: SearchQuery, scope: ReadScope): Promise<string[]> {
    const { index } = engine;
    const criteria: string[] = [];
    if (scope.everything) return criteria;
    for (const rule of scope.criteriaRules) {
      const ruleKey = JSON.stringify(rule.conditions);
      criteria.push(ruleKey);
      if (index.hasCriteria(ruleKey)) continue;
      const ids = await this.sqlSet(engine, `criteria:${ruleKey}`, (bind) => {
        const named: Record<string, unknown> = {};
        const sql = criteriaToSql(query.type, [...rule.conditions], 'r', 'crit_', named);
        return bindNamed({ sql, params: named }, bind);
      });
      assertVersion(engine, index.version);
      if (!index.hasCriteria(ruleKey)) index.setCriteria(ruleKey, [...rule.conditions], ids);
    }
    return criteria;
  }
}

/** The query's bitsets from the index and the parts read from SQL, in memory (nothing awaits). */
function combine(engine: IndexEngine, query: SearchQuery, scope: ReadScope, parts: SqlParts): Evaluation {
  const { index } = engine;
  let base: Uint32Array;
  if (scope.everything) base = index.alive();
  else {
    base = index.ownedBy(scope.ownerIds);
    for (const ruleKey of parts.criteria) orInto(base, index.criteriaWords(ruleKey)!);
    if (parts.shared.length) orInto(base, index.rowsOf(parts.shared));
    andInto(base, index.alive());
  }
  if (parts.text) andInto(base, index.rowsOf(parts.text));
  else if (query.tsquery)
    for (const word of query.words) andInto(base, index.text.match(word, index.wordCount));
  const filters = query.filters.map((filter, i) => {
    const ids = parts.filters.get(i);
    return ids ? index.rowsOf(ids) : index.filter(filter);
  });
  const candidate = new Uint32Array(base);
  for (const bits of filters) andInto(candidate, bits);
  return { version: engine.version, base, filters, candidate, total: popcount(candidate) };
}
