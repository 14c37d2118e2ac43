import type { DataSource, EntityManager } from 'typeorm';
import type { Logger } from '../../../platform/logging/logger';
import type { VectorBackendName, VectorDocument, VectorHit, VectorQuery } from '../vector.model';
import { filterSql, type VectorStore } from '../vector.store';
import { byScoreThenId } from './fallback.backend';
import type { RebuildProgress, VectorBackend } from './vector-backend';

const TABLE = 'vector_search_index';
/** Serialises creating the table and its index across processes. */
const SETUP_LOCK = 0x76656374; // 'vect'

interface HitRow {
  doc_id: string;
  entity_type: VectorHit['entityType'];
  record_id: string | null;
  metadata: Record<string, unknown>;
  score: number;
}

const toLiteral = (vector: Float32Array) => `[${Array.from(vector).join(',')}]`;

export interface PgvectorOptions {
  dimension: number;
  /** HNSW candidate list at query time; raised to the number of candidates asked for (pgvector caps it at 1000). */
  efSearch: number;
}

/**
 * pgvector in the same Postgres: `vector_search_index` with an HNSW index (cosine), written in the same transaction as
 * the source of truth so it never lags it. Filtered queries use iterative index scans (pgvector >= 0.8) so selective
 * filters still fill k, and fall back to an exact scan of the filtered rows when the index comes back short.
 */
export class PgvectorBackend implements VectorBackend {
  readonly name: VectorBackendName = 'PGVECTOR';
  /** Known to exist in this database (set by `check`); until then each write asks the catalog. */
  private present = false;
  private iterativeScan = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly store: VectorStore,
    private readonly options: PgvectorOptions,
    private readonly logger: Logger,
  ) {}

  async check(): Promise<void> {
    const [extension] = await this.dataSource.query<Array<{ extversion: string }>>(
      "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
    );
    if (!extension) {
      this.present = false;
      throw new Error('the vector extension is not installed in this database');
    }
    const [major = 0, minor = 0] = extension.extversion.split('.').map(Number);
    this.iterativeScan = major > 0 || minor >= 8;
    // Every check: a table dropped meanwhile is made again (and every company marked for rebuild).
    await this.ensureTable();
    const [column] = await this.dataSource.query<Array<{ dims: number }>>(
      `SELECT atttypmod AS dims FROM pg_attribute WHERE attrelid = '${TABLE}'::regclass AND attname = 'embedding'`,
    );
    if (column?.dims !== this.options.dimension) {
      throw new Error(
        `${TABLE} holds ${column?.dims}-dimensional vectors but VECTOR_DIMENSION is ${this.options.dimension}: ` +
          `drop the table and reindex (npm run vectors:reindex -- --backend pgvector)`,
      );
    }
    await this.dataSource.query(`SELECT 1 FROM ${TABLE} LIMIT 1`);
  }

  readonly mirror = async (
    manager: EntityManager,
    companyId: string,
    upserts: readonly VectorDocument[],
    deletes: readonly string[],
    seq: number,
  ): Promise<void> => {
    if (!this.present) {
      const [{ found }] = await manager.query<[{ found: string | null }]>('SELECT to_regclass($1) AS found', [
        TABLE,
      ]);
      if (!found) return;
    }
    // A failure here must not lose the source-of-truth write: undo just this part and mark the company stale.
    await manager.query('SAVEPOINT pgvector_mirror');
    try {
      await this.writeRows(manager, companyId, upserts, deletes);
      await manager.query('RELEASE SAVEPOINT pgvector_mirror');
    } catch (error) {
      await manager.query('ROLLBACK TO SAVEPOINT pgvector_mirror');
      this.logger.warn({ err: error, companyId }, 'pgvector index write failed: company marked for rebuild');
      await this.store.markStale(
        this.name,
        companyId,
        `write failed: ${(error as Error).message}`,
        seq,
        manager,
      );
    }
  };

  async search(query: VectorQuery): Promise<VectorHit[]> {
    return this.dataSource.transaction(async (manager) => {
      const params: unknown[] = [query.companyId, toLiteral(query.vector), query.limit];
      const bind = (value: unknown) => `$${params.push(value)}`;
      const where = `v.company_id = $1${filterSql(query.entityTypes, query.metadata, bind)}`;
      await manager.query("SELECT set_config('hnsw.ef_search', $1, true)", [
        String(Math.min(1000, Math.max(this.options.efSearch, query.limit))),
      ]);
      if (this.iterativeScan)
        await manager.query("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)");
      const select = `SELECT v.doc_id, v.entity_type, v.record_id, v.metadata, 1 - (v.embedding <=> $2::vector) AS score
                        FROM ${TABLE} v WHERE ${where}`;
      let rows = await manager.query<HitRow[]>(
        `${select} ORDER BY v.embedding <=> $2::vector LIMIT $3`,
        params,
      );
      if (rows.length < query.limit) {
        // The graph walk stopped short (a selective filter): the matching rows are few, so rank them all exactly.
        rows = await manager.query<HitRow[]>(
          `${select} ORDER BY (v.embedding <=> $2::vector) + 0 LIMIT $3`,
          params,
        );
      }
      return byScoreThenId(
        rows.map((row) => ({
          docId: row.doc_id,
          score: Number(row.score),
          entityType: row.entity_type,
          recordId: row.record_id,
          metadata: row.metadata,
        })),
      );
    });
  }

  async rebuild(
    companyId: string,
    progress?: RebuildProgress,
  ): Promise<{ documents: number; throughSeq: number }> {
    const total = await this.store.count(companyId);
    const result = await this.dataSource.transaction(async (manager) => {
      // Writes of the company wait for the rebuild (they bump this row first), so none can interleave with the copy.
      await manager.query(
        'INSERT INTO vector_companies (company_id) VALUES ($1) ON CONFLICT (company_id) DO NOTHING',
        [companyId],
      );
      const [{ seq }] = await manager.query<[{ seq: string }]>(
        'SELECT seq FROM vector_companies WHERE company_id = $1 FOR UPDATE',
        [companyId],
      );
      await manager.query(`DELETE FROM ${TABLE} WHERE company_id = $1`, [companyId]);
      const [{ n }] = await manager.query<[{ n: number }]>(
        `WITH copied AS (
           INSERT INTO ${TABLE} (company_id, doc_id, entity_type, record_id, embedding, metadata)
           SELECT company_id, doc_id, entity_type, record_id, embedding::vector, metadata
             FROM vector_documents WHERE company_id = $1 AND embedding IS NOT NULL
           RETURNING 1)
         SELECT count(*)::int AS n FROM copied`,
        [companyId],
      );
      progress?.(n, total);
      return { documents: n, throughSeq: Number(seq) };
    });
    // Fresh statistics, so the planner prices the HNSW walk against a scan of the company's rows correctly.
    await this.dataSource.query(`ANALYZE ${TABLE}`);
    return result;
  }

  private async writeRows(
    manager: EntityManager,
    companyId: string,
    upserts: readonly VectorDocument[],
    deletes: readonly string[],
  ): Promise<void> {
    if (upserts.length > 0) {
      await manager.query(
        `INSERT INTO ${TABLE} (company_id, doc_id, entity_type, record_id, embedding, metadata)
         SELECT $1, u.doc_id, u.entity_type, u.record_id, u.embedding::vector, u.metadata
           FROM jsonb_to_recordset($2::jsonb)
                AS u(doc_id text, entity_type text, record_id uuid, embedding text, metadata jsonb)
         ON CONFLICT (company_id, doc_id) DO UPDATE
            SET entity_type = EXCLUDED.entity_type, record_id = EXCLUDED.record_id, embedding = EXCLUDED.embedding,
                metadata = EXCLUDED.metadata, indexed_at = now()`,
        [
          companyId,
          JSON.stringify(
            upserts.map((doc) => ({
              doc_id: doc.docId,
              entity_type: doc.entityType,
              record_id: doc.recordId,
              embedding: toLiteral(doc.embedding),
              metadata: doc.metadata,
            })),
          ),
        ],
      );
    }
    if (deletes.length > 0) {
      await manager.query(`DELETE FROM ${TABLE} WHERE company_id = $1 AND doc_id = ANY($2::text[])`, [
        companyId,
        deletes,
      ]);
    }
  }

  /**
   * Creates the table and its HNSW index once per database. Companies that already have vectors are marked stale in
   * the same transaction, so nothing is served from the empty index until the repair job has filled it.
   */
  private async ensureTable(): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock($1)', [SETUP_LOCK]);
      const [{ found }] = await manager.query<[{ found: string | null }]>('SELECT to_regclass($1) AS found', [
        TABLE,
      ]);
      if (found) return;
      await manager.query(`
        CREATE TABLE ${TABLE} (
          company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
          doc_id varchar(255) NOT NULL,
          entity_type text NOT NULL,
          record_id uuid,
          embedding vector(${this.options.dimension}) NOT NULL,
          metadata jsonb NOT NULL DEFAULT '{}',
          indexed_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (company_id, doc_id)
        )`);
      await manager.query(
        `CREATE INDEX ${TABLE}_hnsw ON ${TABLE} USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)`,
      );
      await this.store.markAllStale(this.name, 'pgvector index created', manager);
      this.logger.info({ dimension: this.options.dimension }, 'pgvector index table created');
    });
    this.present = true;
  }
}
