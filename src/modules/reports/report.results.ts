import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Pool } from 'pg';
import type { Counter } from 'prom-client';
import type { RecordType } from '../kernel';
import type { ValidReport } from './report.model';
import type { ReportStatements } from './report.statements';

/** What a cached answer keeps: the aggregates as computed, and when. */
export interface CachedReport<Aggregate> {
  aggregates: Aggregate[];
  computedAt: Date;
}

interface Entry<Aggregate> extends CachedReport<Aggregate> {
  /** The data version (the record type's version slots in the company) the answer was computed at. */
  version: string;
}

export interface ReportResultsDeps {
  /** The reports' pool (the version is read on the server the report reads, inside its read routing). */
  pool: Pool;
  statements: ReportStatements;
  metrics: { results: Counter<'result'> };
  /** Answers kept in this process; 0 keeps none. */
  size: number;
  /** Answers with more rows than this are not kept. */
  maxRows: number;
}

/**
 * The data version of one record type in one company, in one statement: the version slots every committed write to
 * the type's records bumps (`search_versions`, kept by the record tables' statement triggers and the commit-time step;
 * see migration 1765500000000). Two snapshots that read the same vector see the same records of that type, on the
 * primary and on any replica alike.
 */
const VERSION_SQL = `SELECT coalesce(string_agg(slot || ':' || version, ',' ORDER BY slot), '') AS version
  FROM search_versions WHERE company_id = $1 AND record_type = $2`;

/**
 * Report answers kept per (company, visibility key, report), each under the data version it was computed at. A report
 * reads only its record type's records of one company, as the caller's visibility lets them, so an answer computed at
 * data version V for visibility key K is THE answer for every later read that sees version V under key K: a hit is
 * exact, and any write to the type's records (a new version) or any change to what the caller may see (a new key)
 * misses. An answer is kept only when the version read before it was computed is still the version after, so no
 * statement of it can have seen a write the key does not name. Per process, bounded; a rebuild of the company's
 * rollups drops its answers (the figures stay right, but which rollup answered may change).
 */
export class ReportResults<Aggregate extends { rows: readonly unknown[] }> {
  private readonly entries: LRUCache<string, Entry<Aggregate>> | null;
  /** Per company, bumped by `forget`: part of every key, so a company's answers are dropped at once. */
  private readonly generations = new Map<string, number>();
  /** Lookups answered from the cache and computed, since start (for tests and operators). */
  readonly counts = { hits: 0, misses: 0 };

  constructor(private readonly deps: ReportResultsDeps) {
    this.entries = deps.size > 0 ? new LRUCache({ max: deps.size }) : null;
  }

  get enabled(): boolean {
    return this.entries !== null;
  }

  /** Answers held (for tests and operators). */
  get size(): number {
    return this.entries?.size ?? 0;
  }

  /** The data version of the company's records of a type, now (on the server this read is routed to). */
  async version(companyId: string, entityType: RecordType): Promise<string> {
    const { rows } = await this.deps.statements.timed(() =>
      this.deps.pool.query<{ version: string }>(VERSION_SQL, [companyId, entityType]),
    );
    return rows[0]!.version;
  }

  /** The key of a report for a company and visibility key: everything the answer depends on but the data. */
  key(companyId: string, visibilityKey: string, report: ValidReport): string {
    const shape = {
      entityType: report.entityType,
      source: report.source,
      timeZone: report.timeZone,
      filters: report.filters,
      dateRange: report.dateRange
        ? {
            field: report.dateRange.spec.name,
            from: report.dateRange.from?.toISOString() ?? null,
            to: report.dateRange.to?.toISOString() ?? null,
          }
        : null,
      aggregates: report.aggregates.map((a) => ({
        name: a.name,
        type: a.type,
        field: a.field?.name ?? null,
        dimensions: a.dimensions.map((d) => d.key),
      })),
    };
    const digest = createHash('sha256').update(JSON.stringify(shape)).digest('base64url');
    return `${companyId} ${this.generations.get(companyId) ?? 0} ${visibilityKey} ${digest}`;
  }

  /** The answer kept under `key` for exactly this data version, or undefined. */
  get(key: string, version: string): CachedReport<Aggregate> | undefined {
    if (!this.entries) return undefined;
    const entry = this.entries.get(key);
    const hit = entry !== undefined && entry.version === version;
    this.deps.metrics.results.inc({ result: hit ? 'hit' : 'miss' });
    this.counts[hit ? 'hits' : 'misses']++;
    return hit ? entry : undefined;
  }

  /**
   * Keeps an answer computed between two reads of the data version, `before` and `after`: only when they are equal
   * (every statement of the answer then saw that version: snapshots only move forward on a server).
   */
  set(key: string, before: string, after: string, answer: CachedReport<Aggregate>): void {
    if (!this.entries) return;
    const rows = answer.aggregates.reduce((sum, aggregate) => sum + aggregate.rows.length, 0);
    if (before !== after || rows > this.deps.maxRows) {
      this.deps.metrics.results.inc({ result: before !== after ? 'raced' : 'too_large' });
      return;
    }
    this.entries.set(key, { ...answer, version: before });
  }

  /** Drops a company's answers. */
  forget(companyId: string): void {
    this.generations.set(companyId, (this.generations.get(companyId) ?? 0) + 1);
  }
}
