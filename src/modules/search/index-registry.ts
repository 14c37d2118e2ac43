import type { Pool, PoolClient } from 'pg';
import type { Logger } from '../../platform/logging/logger';
import { RECORD_TABLE, type RecordType } from '../kernel';
import { CountingIndex, type CanonicalRow } from './counting-index';
import { covers, versionSlots, type DataVersion } from './data-version';
import { IndexKeeping, IndexOverBudget, type KeepingMetrics } from './index-keeping';
import { searchDocumentSql } from './search.document';
import { canonicalColumns } from './search.model';

/** Why a search was answered from SQL instead of the counting index (the metric's `reason` label). */
export type LiveReason =
  'building' | 'build_failed' | 'catch_up_failed' | 'moving' | 'disabled' | 'over_budget';

export interface IndexMetrics extends KeepingMetrics {
  rebuilds(entity: RecordType, result: 'ok' | 'failed', seconds: number): void;
}

export interface IndexOptions {
  /** Longest a search waits for a first build before answering from SQL. */
  buildWaitMs: number;
  /** A catch-up that would re-read more records than this rebuilds instead. */
  maxCatchUp: number;
  /** Indexes not searched for this long are dropped. */
  idleMs: number;
  /** Bytes the indexes held and being built may take in all; the least recently used are evicted to stay within. */
  maxBytes: number;
  /**
   * Read the records' lexemes on a second connection of this pool (same snapshot) while the columns load, when one is
   * free: a build never waits for it (two builds must never each hold one connection waiting for another).
   */
  lexemePool?: Pool;
}

/** A connection of `pool` if it has one free now (idle, or room for a new one), without waiting. */
async function connectIfFree(pool: Pool): Promise<PoolClient | undefined> {
  const free = pool.waitingCount === 0 && (pool.idleCount > 0 || pool.totalCount < pool.options.max);
  return free ? pool.connect() : undefined;
}

interface Entry {
  index?: CountingIndex;
  building?: Promise<CountingIndex>;
  catchingUp?: Promise<CountingIndex>;
  failed?: boolean;
  /** The last build was refused room in the budget. */
  overBudget?: boolean;
  usedAt: number;
}

const BUILD_BATCH = 20_000;

/** One build in progress: what it reads, and the first failure of any of its streams (which stops the others). */
interface BuildState {
  companyId: string;
  type: RecordType;
  failure: unknown;
}

/** A record's search-document lexemes, space-separated (the parser never puts a space in a lexeme). */
function lexemesSql(type: RecordType): string {
  return `array_to_string(tsvector_to_array(${searchDocumentSql(RECORD_TABLE[type] as 'leads', 'r')}), ' ')`;
}

/** The version slots' counts (a `DataVersion`) of `slots`, rows of search_versions. */
const SLOTS_VERSION_SQL = `coalesce(string_agg(slot || ':' || version, ',' ORDER BY slot), '')`;

/** Statement of the data version, in the same snapshot as whatever follows in the statement. */
const VERSION_SQL = `(SELECT ${SLOTS_VERSION_SQL} FROM search_versions WHERE company_id = $1 AND record_type = $2)`;

/**
 * The counting indexes this process holds, one per (company, record type), built on first use and kept current by
 * re-reading the records the change log names: every answer from an index is at a version read from Postgres.
 */
export class SearchIndexes {
  private readonly entries = new Map<string, Entry>();
  private readonly sweep: NodeJS.Timeout;
  private readonly keeping: IndexKeeping;

  constructor(
    private readonly pool: Pool,
    private readonly logger: Logger,
    private readonly metrics: IndexMetrics,
    private readonly options: IndexOptions,
  ) {
    this.keeping = new IndexKeeping(this.entries, logger, metrics, options.maxBytes);
    this.sweep = setInterval(() => this.dropIdle(), Math.max(1000, Math.min(options.idleMs, 60_000)));
    this.sweep.unref();
  }

  stop(): void {
    clearInterval(this.sweep);
    this.entries.clear();
    this.keeping.clear();
  }

  /** Bytes held and reserved, the budget, and how many indexes are held and building (for the gauges). */
  memory(): { bytes: number; maxBytes: number; held: number; building: number } {
    return this.keeping.memory();
  }

  /** Measures a held index again after a search (facet buckets and criteria sets grow it), evicting others to fit. */
  settle(companyId: string, type: RecordType): void {
    this.keeping.measure(`${companyId}:${type}`);
  }

  /** The data version now. */
  async version(companyId: string, type: RecordType): Promise<DataVersion> {
    const { rows } = await this.pool.query<{ version: string }>(`SELECT ${VERSION_SQL} AS version`, [
      companyId,
      type,
    ]);
    return rows[0]!.version;
  }

  /**
   * The index at `version` or later, or why not. A missing index starts building (waited for briefly); a stale one
   * catches up from the change log first.
   */
  async current(
    companyId: string,
    type: RecordType,
    version: DataVersion,
  ): Promise<{ index: CountingIndex } | { reason: LiveReason }> {
    const key = `${companyId}:${type}`;
    if (this.keeping.tooLarge(key)) return { reason: 'over_budget' };
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { usedAt: Date.now() };
      this.entries.set(key, entry);
    }
    entry.usedAt = Date.now();
    this.keeping.touch(key);
    if (!entry.index) {
      if (entry.failed) return { reason: 'build_failed' };
      const building = (entry.building ??= this.startBuild(key, entry, companyId, type));
      const built = await Promise.race([
        building,
        new Promise<undefined>((resolve) =>
          setTimeout(() => resolve(undefined), this.options.buildWaitMs).unref(),
        ),
      ]).catch(() => undefined);
      if (!built)
        return { reason: entry.failed ? 'build_failed' : entry.overBudget ? 'over_budget' : 'building' };
    }
    // Built, then dropped at once for the budget (or evicted since).
    const index = entry.index;
    if (!index) return { reason: 'over_budget' };
    if (covers(index.version, version)) return { index };
    try {
      const caughtUp = await (entry.catchingUp ??= this.catchUp(entry, index).finally(() => {
        entry.catchingUp = undefined;
      }));
      if (caughtUp !== entry.index) return { reason: 'building' };
      return covers(caughtUp.version, version) ? { index: caughtUp } : { reason: 'moving' };
    } catch (error) {
      this.logger.warn({ err: error, companyId, type }, 'search index catch-up failed; answering from SQL');
      return { reason: 'catch_up_failed' };
    }
  }

  /** Catches a held index up (after a write in this process); builds nothing. */
  async warm(companyId: string, type: RecordType): Promise<void> {
    if (!this.entries.get(`${companyId}:${type}`)?.index) return;
    await this.current(companyId, type, await this.version(companyId, type));
  }

  /** Rebuilds now, replacing the held index when done (the old one keeps answering meanwhile). */
  async rebuild(companyId: string, type: RecordType): Promise<CountingIndex> {
    const key = `${companyId}:${type}`;
    const entry = this.entries.get(key) ?? { usedAt: Date.now() };
    this.entries.set(key, entry);
    return (entry.building ??= this.startBuild(key, entry, companyId, type));
  }

  private startBuild(key: string, entry: Entry, companyId: string, type: RecordType): Promise<CountingIndex> {
    const started = process.hrtime.bigint();
    return this.build(companyId, type)
      .then((index) => {
        entry.index = index;
        entry.failed = false;
        entry.overBudget = false;
        this.metrics.rebuilds(type, 'ok', Number(process.hrtime.bigint() - started) / 1e9);
        this.keeping.built(key, entry, index);
        return index;
      })
      .catch((error: unknown) => {
        if (error instanceof IndexOverBudget) {
          entry.overBudget = true;
          this.keeping.refused(key, entry);
          throw error;
        }
        this.keeping.failed(key, entry);
        entry.failed = true;
        this.metrics.rebuilds(type, 'failed', Number(process.hrtime.bigint() - started) / 1e9);
        this.logger.error(
          { err: error, companyId, type },
          'search index build failed; searches answer from SQL',
        );
        // Try again on a later search, not in a loop.
        setTimeout(() => {
          if (this.entries.get(key) === entry && !entry.index) this.entries.delete(key);
        }, 30_000).unref();
        throw error;
      })
      .finally(() => {
        entry.building = undefined;
      });
  }

  /** Reads every record of the company in one REPEATABLE READ snapshot, with the version it is at. */
  private async build(companyId: string, type: RecordType): Promise<CountingIndex> {
    const started = Date.now();
    const client = await this.pool.connect();
    // Postgres spends most of a build making the search documents' lexemes: on a server (not the embedded database,
    // which has one connection) a second connection reads them from the same snapshot, on another core.
    let lexemeClient: PoolClient | undefined;
    const build: BuildState = { companyId, type, failure: undefined };
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      if (this.options.lexemePool) {
        lexemeClient = await connectIfFree(this.options.lexemePool);
        if (lexemeClient) await this.shareSnapshot(client, lexemeClient);
      }
      const { rows } = await client.query<{ version: string; n: number }>(
        `SELECT ${VERSION_SQL} AS version, (SELECT count(*)::int FROM ${RECORD_TABLE[type]} WHERE company_id = $1) AS n`,
        [companyId, type],
      );
      const { version, n } = rows[0]!;
      const index = new CountingIndex(companyId, type, n);
      this.keeping.reserve(`${companyId}:${type}`, index, n);
      const loaded = await this.loadRecords(build, index, n, client, lexemeClient);
      await client.query('COMMIT');
      await lexemeClient?.query('COMMIT');
      index.text.finish();
      index.version = version;
      this.logger.info(
        {
          companyId,
          type,
          rows: loaded,
          version: index.version,
          ms: Date.now() - started,
          bytes: index.bytes(),
        },
        'search index built',
      );
      return index;
    } catch (error) {
      build.failure ??= error;
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      // A failed connection is not given back to the pool (a build refused room did not fail); nor is the lexeme one
      // (its transaction may be open still).
      client.release(
        build.failure instanceof Error && !(build.failure instanceof IndexOverBudget)
          ? build.failure
          : undefined,
      );
      lexemeClient?.release(build.failure === undefined ? undefined : true);
    }
  }

  /** Opens `reader` in the snapshot of `client`'s transaction (exported), for a second stream of the same build. */
  private async shareSnapshot(client: PoolClient, reader: PoolClient): Promise<void> {
    const { rows } = await client.query<{ snapshot: string }>('SELECT pg_export_snapshot() AS snapshot');
    const snapshot = rows[0]!.snapshot;
    if (!/^[0-9A-F-]+$/i.test(snapshot)) throw new Error(`unexpected snapshot id ${snapshot}`);
    await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await reader.query(`SET TRANSACTION SNAPSHOT '${snapshot}'`);
  }

  /**
   * Streams every record into the index: columns (and lexemes) on `client`; with `lexemeClient`, the lexemes there
   * at once. A failed stream stops the other. Returns the records loaded.
   */
  private async loadRecords(
    build: BuildState,
    index: CountingIndex,
    n: number,
    client: PoolClient,
    lexemeClient: PoolClient | undefined,
  ): Promise<number> {
    const { type } = build;
    const columns = canonicalColumns(type).filter(({ spec }) => index.columns.has(spec.name));
    const lexemesApart = lexemeClient !== undefined;
    const settled = await Promise.allSettled(
      [
        this.drain(build, client, {
          cursor: 'search_build',
          select: `r.id::text${columns.map((c) => `, ${c.sql}`).join('')}${lexemesApart ? '' : `, ${lexemesSql(type)}`}`,
          take: (values) => {
            const row: CanonicalRow = { id: values[0] as string };
            columns.forEach(({ spec }, i) => (row[spec.name] = values[i + 1] as string | number | null));
            if (!lexemesApart) row.__lexemes = values[columns.length + 1] as string | null;
            index.upsert(row, false);
          },
          progressOf: n,
        }),
        lexemeClient &&
          this.drain(build, lexemeClient, {
            cursor: 'search_lexemes',
            select: `r.id::text, ${lexemesSql(type)}`,
            take: (values) => index.text.add(index.reserve(values[0] as string), values[1] as string | null),
          }),
      ].map((stream) =>
        Promise.resolve(stream).catch((error: unknown) => {
          build.failure ??= error;
          throw error;
        }),
      ),
    );
    const rejected = settled.find((result) => result.status === 'rejected');
    if (rejected) throw rejected.reason;
    return (settled[0] as PromiseFulfilledResult<number>).value;
  }

  /** Reads one stream of a build through a cursor in batches, handing each row to `take`; returns the rows read. */
  private async drain(
    build: BuildState,
    on: PoolClient,
    stream: {
      cursor: string;
      select: string;
      take: (values: unknown[]) => void;
      /** Logs progress every 200,000 rows, of this many. */
      progressOf?: number;
    },
  ): Promise<number> {
    const { companyId, type } = build;
    await on.query(
      `DECLARE ${stream.cursor} NO SCROLL CURSOR FOR SELECT ${stream.select} FROM ${RECORD_TABLE[type]} r WHERE r.company_id = $1`,
      [companyId],
    );
    let loaded = 0;
    let logged = 0;
    for (;;) {
      // The other stream failed: stop reading, so nothing is left running on the connection.
      if (build.failure !== undefined) return loaded;
      const batch = await on.query<unknown[]>({
        text: `FETCH ${BUILD_BATCH} FROM ${stream.cursor}`,
        rowMode: 'array',
      });
      batch.rows.forEach(stream.take);
      loaded += batch.rows.length;
      if (stream.progressOf !== undefined && loaded - logged >= 200_000) {
        logged = loaded;
        this.logger.info({ companyId, type, loaded, of: stream.progressOf }, 'search index build progress');
      }
      if (batch.rows.length < BUILD_BATCH) return loaded;
    }
  }

  /**
   * Re-reads the records logged since the index's version (in each slot, past the slot's count there), with the
   * version, in one statement (one snapshot), and applies them; too many, or a log pruned past the index, rebuilds
   * instead.
   */
  private async catchUp(entry: Entry, index: CountingIndex): Promise<CountingIndex> {
    const { companyId, type } = index;
    const columns = canonicalColumns(type);
    const seen = versionSlots(index.version);
    const { rows } = await this.pool.query<Record<string, string | number | boolean | null>>(
      `WITH seen AS (SELECT * FROM unnest($3::int[], $4::bigint[]) AS s(slot, version)),
            slots AS (SELECT v.slot, v.version, v.pruned_through, coalesce(seen.version, 0) AS seen
                        FROM search_versions v LEFT JOIN seen ON seen.slot = v.slot
                       WHERE v.company_id = $1 AND v.record_type = $2),
            state AS (SELECT ${SLOTS_VERSION_SQL} AS version, coalesce(bool_or(pruned_through > seen), false) AS pruned
                        FROM slots),
            changed AS (SELECT DISTINCT c.record_id FROM slots s
                          JOIN search_changes c ON c.company_id = $1 AND c.record_type = $2 AND c.slot = s.slot
                                               AND c.version > s.seen
                         LIMIT $5)
       SELECT s.version AS "__version", s.pruned AS "__pruned", c.record_id::text AS "__changed",
              r.id::text AS id${columns.map((c) => `, ${c.sql} AS "${c.spec.name}"`).join('')},
              ${lexemesSql(type)} AS "__lexemes"
         FROM state s LEFT JOIN changed c ON true
         LEFT JOIN ${RECORD_TABLE[type]} r ON r.id = c.record_id AND r.company_id = $1`,
      [companyId, type, [...seen.keys()], [...seen.values()].map(String), this.options.maxCatchUp + 1],
    );
    const first = rows[0];
    if (!first) return index;
    const version = String(first.__version);
    if (first.__pruned === true || rows.length > this.options.maxCatchUp) {
      this.logger.info(
        { companyId, type, from: index.version, to: version },
        'search index too far behind the change log: rebuilding',
      );
      const key = `${companyId}:${type}`;
      entry.index = undefined;
      await this.rebuild(companyId, type).catch(() => undefined);
      return this.entries.get(key)?.index ?? index;
    }
    // Not past the index (a replica behind the server it last caught up on): nothing to apply.
    if (version === index.version || !covers(version, index.version)) return index;
    // Every criteria set held is re-evaluated for each changed record: keep only those in use.
    index.dropIdleCriteria(30 * 60_000);
    for (const row of rows) {
      if (row.__changed === null) continue;
      if (row.id === null) index.remove(String(row.__changed));
      else index.upsert(row as CanonicalRow, true);
    }
    index.version = version;
    if (this.entries.get(`${companyId}:${type}`) === entry && entry.index === index)
      this.keeping.measure(`${companyId}:${type}`);
    // Rows written since the build are kept apart in the text postings; past a share of the rows, build afresh
    // (the current index answers meanwhile).
    if (index.text.changedRows > Math.max(50_000, index.rows * 0.05) && !entry.building)
      void this.rebuild(companyId, type).catch(() => undefined);
    return index;
  }

  /**
   * The ids meeting a SQL condition over `r`, and the version they were read at (one snapshot): for what the index
   * has no column for (text, some filters, criteria rules when first used).
   */
  async idsWhere(
    companyId: string,
    type: RecordType,
    condition: string,
    params: unknown[],
  ): Promise<{ version: DataVersion; ids: string[] }> {
    const { rows } = await this.pool.query<{ version: string; ids: string | null }>(
      `SELECT ${VERSION_SQL} AS version, string_agg(r.id::text, ',') AS ids
         FROM ${RECORD_TABLE[type]} r WHERE r.company_id = $1 AND ${condition}`,
      [companyId, type, ...params],
    );
    const row = rows[0]!;
    return { version: row.version, ids: row.ids ? row.ids.split(',') : [] };
  }

  private dropIdle(): void {
    const now = Date.now();
    for (const [key, entry] of this.entries)
      if (!entry.building && now - entry.usedAt > this.options.idleMs) this.keeping.evict(key, 'idle');
  }
}
