import { performance } from 'node:perf_hooks';
import { AppError, ErrorCode } from '../../platform/errors/app-error';
import type { ReadRouting } from '../../platform/db/read-routing';
import type { Logger } from '../../platform/logging/logger';
import { bindNamed, RECORD_TABLE, RecordType, type Principal, type ServiceRegistry } from '../kernel';
import type { FallbackBackend } from './backends/fallback.backend';
import type { VectorBackend } from './backends/vector-backend';
import type { VectorBackendHealth } from './vector.health';
import type { Embedder } from './vector.math';
import type { VectorBackendName, VectorHit, VectorQuery } from './vector.model';
import { parseSimilar, type SimilarInput } from './vector.query';
import type { VectorMetrics, VectorSettings } from './vector.options';
import type { VectorStore } from './vector.store';

/** A hit the caller may see; `record` is the readable CRM record it stands for (null for free documents). */
export interface SimilarHit extends VectorHit {
  backend: VectorBackendName;
  record: (object & { id: string }) | null;
}

export interface VectorSearchDeps {
  reads: ReadRouting;
  store: VectorStore;
  fallback: FallbackBackend;
  health: VectorBackendHealth;
  embedder: Embedder;
  records: ServiceRegistry['records'];
  visibility: ServiceRegistry['visibility'];
  logger: Logger;
  metrics: VectorMetrics;
  settings: VectorSettings;
}

const RECORD_SERVICE = { LEAD: 'leads', DEAL: 'deals', ACCOUNT: 'accounts' } as const;

/** A backend's own failure (as opposed to Postgres failing while checking visibility): the query moves on. */
class BackendFailure extends Error {
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.name = 'BackendFailure';
  }
}

/**
 * The query path: the first healthy backend that is up to date for the company answers (moving down the list when
 * one fails), in candidate rounds checked against the caller's visibility, ending in an exact ranking in Postgres.
 */
export class VectorSearch {
  constructor(private readonly deps: VectorSearchDeps) {}

  async similar(principal: Principal, input: SimilarInput): Promise<SimilarHit[]> {
    const parsed = parseSimilar(principal, input, this.deps.settings, this.deps.embedder);
    return this.deps.reads.read(principal, () => this.similarOnce(principal, parsed));
  }

  private async similarOnce(
    principal: Principal,
    { query, k, minScore }: ReturnType<typeof parseSimilar>,
  ): Promise<SimilarHit[]> {
    const started = performance.now();
    const failures: string[] = [];
    const candidates = this.deps.health.candidates();
    for (const [index, backend] of candidates.entries()) {
      if (backend !== this.deps.fallback && (await this.deps.store.isStale(backend.name, query.companyId)))
        continue;
      try {
        const { hits, answeredBy } = await this.visibleTopK(backend, principal, query, k, minScore);
        this.deps.metrics.duration.observe(
          { backend: answeredBy.toLowerCase() },
          (performance.now() - started) / 1000,
        );
        return hits.map((hit) => ({ ...hit, backend: answeredBy }));
      } catch (error) {
        // Only the backend's own failure moves the query on; Postgres errors (visibility, records) surface as they are.
        if (!(error instanceof BackendFailure)) throw error;
        const reason = error.message;
        failures.push(`${backend.name}: ${reason}`);
        this.deps.health.set(backend, reason);
        const next = candidates[index + 1]?.name ?? 'none';
        this.deps.metrics.fallbacks.inc({ from: backend.name.toLowerCase(), to: next.toLowerCase() });
        this.deps.logger.warn(
          { err: error, backend: backend.name, next },
          'vector query failed; trying the next backend',
        );
      }
    }
    this.deps.logger.error({ failures }, 'no vector backend could answer');
    throw new AppError(
      ErrorCode.SERVICE_UNAVAILABLE,
      'No vector backend can answer right now; vectorBackend shows each one’s health',
    );
  }

  /**
   * The k best hits the principal may read. Asks the backend for more candidates each round while visibility filters
   * too many out; past `maxCandidates` it ranks exactly in Postgres with the visibility inside the SQL, so k readable
   * hits come back whenever k exist.
   */
  private async visibleTopK(
    backend: VectorBackend,
    principal: Principal,
    query: VectorQuery,
    k: number,
    minScore: number | undefined,
  ): Promise<{ hits: Array<Omit<SimilarHit, 'backend'>>; answeredBy: VectorBackendName }> {
    const types = this.recordTypesOf(query);
    const seesAll = (
      await Promise.all(
        types.map(async (type) => (await this.deps.visibility.compiled(principal, type)).readAll),
      )
    ).every(Boolean);
    const cap = this.deps.settings.maxCandidates;
    let limit = seesAll ? k : Math.min(k * 4, cap);
    for (;;) {
      const candidates = await backend.search({ ...query, limit }).catch((error: unknown) => {
        throw new BackendFailure(error);
      });
      let exhausted = candidates.length < limit;
      const scored = candidates.filter((hit) => minScore === undefined || hit.score >= minScore);
      if (scored.length < candidates.length) exhausted = true;
      const readable = await this.readable(principal, scored);
      if (readable.length >= k || exhausted) return { hits: readable.slice(0, k), answeredBy: backend.name };
      if (limit >= cap) break;
      limit = Math.min(limit * 4, cap);
    }
    const where = await this.visibilitySql(principal, types);
    const exact = await this.deps.fallback
      .searchStreamed({ ...query, limit: k }, where)
      .catch((error: unknown) => {
        throw new BackendFailure(error);
      });
    const readable = await this.readable(
      principal,
      exact.filter((hit) => minScore === undefined || hit.score >= minScore),
    );
    return { hits: readable.slice(0, k), answeredBy: this.deps.fallback.name };
  }

  /** The hits the principal may read, in order, each with its record loaded (one query per record type). */
  private async readable(
    principal: Principal,
    hits: readonly VectorHit[],
  ): Promise<Array<Omit<SimilarHit, 'backend'>>> {
    const loaded = new Map<string, object & { id: string }>();
    await Promise.all(
      Object.values(RecordType).map(async (type) => {
        const ids = hits.filter((hit) => hit.entityType === type && hit.recordId).map((hit) => hit.recordId!);
        if (ids.length === 0) return;
        const rows = await this.deps.records[RECORD_SERVICE[type]].byIds(principal, ids);
        for (const row of rows) {
          // The GraphQL union tells Lead, Deal and Account apart by this tag (rows are fresh from this query).
          Object.defineProperty(row, '__recordType', { value: type });
          loaded.set(`${type}:${row.id}`, row);
        }
      }),
    );
    return hits.flatMap((hit): Array<Omit<SimilarHit, 'backend'>> => {
      if (!hit.recordId) return [{ ...hit, record: null }];
      const record = loaded.get(`${hit.entityType}:${hit.recordId}`);
      return record ? [{ ...hit, record }] : [];
    });
  }

  /** `v` rows the principal may read: free documents, and record documents whose record they can read. */
  private async visibilitySql(
    principal: Principal,
    types: readonly RecordType[],
  ): Promise<(bind: (value: unknown) => string) => string> {
    const predicates = await Promise.all(
      types.map(async (type, index) => ({
        type,
        alias: `vr${index}`,
        predicate: await this.deps.visibility.readPredicate(principal, type, `vr${index}`),
      })),
    );
    return (bind) =>
      `(v.record_id IS NULL${predicates
        .map(
          ({ type, alias, predicate }) =>
            ` OR (v.entity_type = ${bind(type)}::text AND EXISTS (SELECT 1 FROM ${RECORD_TABLE[type]} ${alias}` +
            ` WHERE ${alias}.id = v.record_id AND ${bindNamed(predicate, bind)}))`,
        )
        .join('')})`;
  }

  private recordTypesOf(query: VectorQuery): RecordType[] {
    const all = Object.values(RecordType) as RecordType[];
    return query.entityTypes ? all.filter((type) => query.entityTypes!.includes(type)) : all;
  }
}
