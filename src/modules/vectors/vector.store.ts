import type { DataSource, EntityManager } from 'typeorm';
import { dataSourceConnection, type ReadRouting } from '../../platform/db/read-routing';
import type { MetadataFilter, VectorDocument, VectorEntityType } from './vector.model';

/** How long a write may stay on its way to another system's index before it counts as lost. */
export const PENDING_GRACE_MS = 30_000;

/** A stored row as read back: a live document, or a tombstone (`embedding` null) left by a delete. */
export interface StoredVector {
  docId: string;
  entityType: VectorEntityType;
  recordId: string | null;
  embedding: Float32Array | null;
  metadata: Record<string, unknown>;
  seq: number;
}

export interface CompanySeq {
  /** Sequence of the company's last committed write (0: none yet). */
  seq: number;
  /** Tombstones at or below this were purged: a copy older than it must reload instead of following. */
  purgedSeq: number;
}

/** Called inside the write's transaction with the rows just written, so a same-database index commits with them. */
export type MirrorWrite = (
  manager: EntityManager,
  companyId: string,
  upserts: readonly VectorDocument[],
  deletes: readonly string[],
  seq: number,
) => Promise<void>;

interface Row {
  doc_id: string;
  entity_type: VectorEntityType;
  record_id: string | null;
  /** `array_send(embedding)`: Postgres's binary array format, ~20x cheaper to read than the `{...}` text form. */
  embedding: Buffer | null;
  metadata: Record<string, unknown>;
  seq: string;
}

const ROW_COLUMNS = 'doc_id, entity_type, record_id, array_send(embedding) AS embedding, metadata, seq';

/**
 * Decodes a one-dimensional real[] in Postgres's binary array format: ndim, has-nulls flag, element type, then per
 * dimension its length and lower bound, then per element a 4-byte length and a big-endian float4.
 */
export function decodeFloat4Array(buffer: Buffer): Float32Array {
  const dimensions = buffer.readInt32BE(0);
  if (dimensions === 0) return new Float32Array(0);
  if (dimensions !== 1) throw new Error(`expected a one-dimensional real[], got ${dimensions} dimensions`);
  const length = buffer.readInt32BE(12);
  const values = new Float32Array(length);
  for (let i = 0, offset = 24; i < length; i++, offset += 8) values[i] = buffer.readFloatBE(offset);
  return values;
}

function toStored(row: Row): StoredVector {
  return {
    docId: row.doc_id,
    entityType: row.entity_type,
    recordId: row.record_id,
    embedding: row.embedding ? decodeFloat4Array(row.embedding) : null,
    metadata: row.metadata,
    seq: Number(row.seq),
  };
}

/** SQL for entity-type and metadata filters over `vector_documents` aliased `v`; values are bound through `bind`. */
export function filterSql(
  entityTypes: readonly VectorEntityType[] | undefined,
  metadata: readonly MetadataFilter[],
  bind: (value: unknown) => string,
): string {
  const clauses: string[] = [];
  if (entityTypes?.length) clauses.push(`v.entity_type = ANY(${bind(entityTypes)}::text[])`);
  for (const filter of metadata) {
    // Containment with a bound one-key object: the key is bound too, and a string "5" never matches the number 5.
    const alternatives = filter.values.map(
      (value) => `v.metadata @> ${bind(JSON.stringify({ [filter.key]: value }))}::jsonb`,
    );
    clauses.push(`(${alternatives.join(' OR ')})`);
  }
  return clauses.length ? ` AND ${clauses.join(' AND ')}` : '';
}

/**
 * Postgres holds every company's vectors whatever backend serves queries (the source of truth a backend is rebuilt
 * from). Each write bumps the company's sequence under a row lock, so writes of one company commit in sequence order
 * and a reader that saw sequence S has seen every row at or below S.
 */
export class VectorStore {
  constructor(
    private readonly dataSource: DataSource,
    /** The exact scans are reads: on a replica inside a read routed to one (the primary without routing). */
    private readonly reads?: ReadRouting,
  ) {}

  async write(
    companyId: string,
    upserts: readonly VectorDocument[],
    deletes: readonly string[],
    mirror?: MirrorWrite,
    /** Backends in other systems the write still has to reach: recorded as pending in the same transaction. */
    pendingOn: readonly string[] = [],
  ): Promise<number> {
    const changes = upserts.length + deletes.length;
    if (changes === 0) return (await this.seq(companyId)).seq;
    return this.dataSource.transaction(async (manager) => {
      const [{ seq }] = await manager.query<[{ seq: string }]>(
        `INSERT INTO vector_companies (company_id, seq) VALUES ($1, $2)
         ON CONFLICT (company_id) DO UPDATE SET seq = vector_companies.seq + $2 RETURNING seq`,
        [companyId, changes],
      );
      let next = Number(seq) - changes;
      if (upserts.length > 0) {
        await manager.query(
          `INSERT INTO vector_documents (company_id, doc_id, entity_type, record_id, embedding, metadata, seq)
           SELECT $1, u.doc_id, u.entity_type, u.record_id, u.embedding::real[], u.metadata, u.seq
             FROM jsonb_to_recordset($2::jsonb)
                  AS u(doc_id text, entity_type text, record_id uuid, embedding text, metadata jsonb, seq bigint)
           ON CONFLICT (company_id, doc_id) DO UPDATE
              SET entity_type = EXCLUDED.entity_type, record_id = EXCLUDED.record_id, embedding = EXCLUDED.embedding,
                  metadata = EXCLUDED.metadata, seq = EXCLUDED.seq, indexed_at = now()`,
          [
            companyId,
            JSON.stringify(
              upserts.map((doc) => ({
                doc_id: doc.docId,
                entity_type: doc.entityType,
                record_id: doc.recordId,
                embedding: `{${Array.from(doc.embedding).join(',')}}`,
                metadata: doc.metadata,
                seq: ++next,
              })),
            ),
          ],
        );
      }
      if (deletes.length > 0) {
        await manager.query(
          `UPDATE vector_documents v SET embedding = NULL, metadata = '{}', seq = $3 + d.ordinality, indexed_at = now()
             FROM unnest($2::text[]) WITH ORDINALITY AS d(doc_id, ordinality)
            WHERE v.company_id = $1 AND v.doc_id = d.doc_id`,
          [companyId, deletes, next],
        );
      }
      await mirror?.(manager, companyId, upserts, deletes, Number(seq));
      if (pendingOn.length > 0)
        await manager.query(
          `INSERT INTO vector_pending_writes (backend, company_id, seq) SELECT unnest($1::text[]), $2, $3`,
          [pendingOn, companyId, seq],
        );
      return Number(seq);
    });
  }

  async seq(companyId: string): Promise<CompanySeq> {
    const [row] = await this.dataSource.query<Array<{ seq: string; purged_seq: string }>>(
      'SELECT seq, purged_seq FROM vector_companies WHERE company_id = $1',
      [companyId],
    );
    return { seq: Number(row?.seq ?? 0), purgedSeq: Number(row?.purged_seq ?? 0) };
  }

  /** Rows (tombstones included) written after `afterSeq` up to `uptoSeq`, `batch` at a time, from one snapshot. */
  changes(
    companyId: string,
    afterSeq: number,
    uptoSeq: number,
    batch = 2000,
  ): AsyncGenerator<StoredVector[]> {
    return this.scan(
      `SELECT ${ROW_COLUMNS} FROM vector_documents WHERE company_id = $1 AND seq > $2 AND seq <= $3`,
      [companyId, afterSeq, uptoSeq],
      batch,
    );
  }

  /** Live documents of a company matching the filters, `batch` at a time, from one snapshot (in no order). */
  documents(
    companyId: string,
    options: {
      entityTypes?: readonly VectorEntityType[];
      metadata?: readonly MetadataFilter[];
      /** A further condition over `v` (e.g. the caller's record visibility), its values bound through `bind`. */
      where?: (bind: (value: unknown) => string) => string;
      batch?: number;
    } = {},
  ): AsyncGenerator<StoredVector[]> {
    const params: unknown[] = [companyId];
    const bind = (value: unknown) => `$${params.push(value)}`;
    return this.scan(
      `SELECT ${ROW_COLUMNS} FROM vector_documents v
        WHERE v.company_id = $1 AND v.embedding IS NOT NULL
              ${filterSql(options.entityTypes, options.metadata ?? [], bind)}
              ${options.where ? `AND ${options.where(bind)}` : ''}`,
      params,
      options.batch ?? 2000,
      // The exact scan answers a query: it may read a replica. Changes feed the in-process copies, which every
      // caller shares, so they come from the primary.
      'read',
    );
  }

  /**
   * Streams a query through a server-side cursor in a read-only REPEATABLE READ transaction: one snapshot, no sort,
   * no re-planning per batch (keyset pages planned on stale statistics sorted the whole remainder each time).
   */
  private async *scan(
    sql: string,
    params: unknown[],
    batch: number,
    purpose: 'read' | 'shared copy' = 'shared copy',
  ): AsyncGenerator<StoredVector[]> {
    const runner = await (this.reads && purpose === 'read'
      ? this.reads.connect()
      : dataSourceConnection(this.dataSource));
    let open = false;
    let broken: Error | undefined;
    try {
      await runner.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      open = true;
      await runner.query(`DECLARE vector_scan NO SCROLL CURSOR FOR ${sql}`, params);
      for (;;) {
        const rows = await runner.query<Row>(`FETCH ${Number(batch)} FROM vector_scan`);
        if (rows.length === 0) break;
        yield rows.map(toStored);
        if (rows.length < batch) break;
      }
      await runner.query('COMMIT');
      open = false;
    } catch (error) {
      broken = error as Error;
      throw error;
    } finally {
      // An error, or a consumer that stopped early (return()), lands here with the transaction still open.
      if (open) await runner.query('ROLLBACK').catch(() => undefined);
      await runner.release(broken);
    }
  }

  async count(companyId: string): Promise<number> {
    const [{ n }] = await this.dataSource.query<[{ n: number }]>(
      'SELECT count(*)::int AS n FROM vector_documents WHERE company_id = $1 AND embedding IS NOT NULL',
      [companyId],
    );
    return n;
  }

  /**
   * Marks the company's index on `backend` as missing writes up to `seq`: queries skip that backend for the company
   * until a rebuild that read at least `seq` clears it.
   */
  /** Companies with at least one live vector. */
  async companies(): Promise<string[]> {
    const rows = await this.dataSource.query<Array<{ company_id: string }>>(
      `SELECT company_id FROM vector_companies c
        WHERE EXISTS (SELECT 1 FROM vector_documents d WHERE d.company_id = c.company_id AND d.embedding IS NOT NULL)
        ORDER BY company_id`,
    );
    return rows.map((row) => row.company_id);
  }

  async markStale(
    backend: string,
    companyId: string,
    reason: string,
    seq: number,
    manager?: EntityManager,
  ): Promise<void> {
    await (manager ?? this.dataSource.manager).query(
      `INSERT INTO vector_backend_stale (backend, company_id, seq, reason) VALUES ($1, $2, $3, $4)
       ON CONFLICT (backend, company_id)
       DO UPDATE SET seq = GREATEST(vector_backend_stale.seq, EXCLUDED.seq), reason = EXCLUDED.reason`,
      [backend, companyId, seq, reason.slice(0, 500)],
    );
  }

  async isStale(backend: string, companyId: string): Promise<boolean> {
    const rows = await this.dataSource.query<unknown[]>(
      `SELECT 1 FROM vector_backend_stale WHERE backend = $1 AND company_id = $2
       UNION ALL
       SELECT 1 FROM vector_pending_writes
        WHERE backend = $1 AND company_id = $2 AND since < now() - make_interval(secs => $3::double precision / 1000)
       LIMIT 1`,
      [backend, companyId, PENDING_GRACE_MS],
    );
    return rows.length > 0;
  }

  /** The write reached the backend (or was marked stale there): it is no longer pending. */
  async settlePending(backend: string, companyId: string, seq: number): Promise<void> {
    await this.dataSource.query(
      'DELETE FROM vector_pending_writes WHERE backend = $1 AND company_id = $2 AND seq = $3',
      [backend, companyId, seq],
    );
  }

  /** Writes pending past the grace period were lost with their process: their companies become stale. */
  async abandonPending(): Promise<number> {
    const rows = await this.dataSource.query<Array<{ n: number }>>(
      `WITH abandoned AS (
         DELETE FROM vector_pending_writes
          WHERE since < now() - make_interval(secs => $1::double precision / 1000)
          RETURNING backend, company_id, seq
       ), marked AS (
         INSERT INTO vector_backend_stale (backend, company_id, seq, reason)
         SELECT backend, company_id, max(seq), 'a write was never confirmed by the index' FROM abandoned
          GROUP BY backend, company_id
         ON CONFLICT (backend, company_id) DO UPDATE SET seq = GREATEST(vector_backend_stale.seq, EXCLUDED.seq)
         RETURNING 1
       )
       SELECT (SELECT count(*)::int FROM abandoned) AS n`,
      [PENDING_GRACE_MS],
    );
    return rows[0]?.n ?? 0;
  }

  /** Clears the mark unless a write after the rebuild's starting sequence failed on the backend meanwhile. */
  async clearStale(backend: string, companyId: string, rebuiltThroughSeq: number): Promise<void> {
    await this.dataSource.query(
      'DELETE FROM vector_backend_stale WHERE backend = $1 AND company_id = $2 AND seq <= $3',
      [backend, companyId, rebuiltThroughSeq],
    );
  }

  async staleCompanies(backend: string): Promise<string[]> {
    const rows = await this.dataSource.query<Array<{ company_id: string }>>(
      'SELECT company_id FROM vector_backend_stale WHERE backend = $1 ORDER BY since',
      [backend],
    );
    return rows.map((row) => row.company_id);
  }

  /** Marks every company that has vectors (a new, empty index), inside the caller's transaction when given. */
  async markAllStale(backend: string, reason: string, manager?: EntityManager): Promise<void> {
    await (manager ?? this.dataSource.manager).query(
      `INSERT INTO vector_backend_stale (backend, company_id, seq, reason)
       SELECT $1, company_id, seq, $2 FROM vector_companies
        WHERE EXISTS (SELECT 1 FROM vector_documents d
                       WHERE d.company_id = vector_companies.company_id AND d.embedding IS NOT NULL)
       ON CONFLICT (backend, company_id) DO UPDATE SET seq = GREATEST(vector_backend_stale.seq, EXCLUDED.seq)`,
      [backend, reason],
    );
  }

  /** Deletes tombstones older than `olderThanMs`, recording per company the highest sequence purged. */
  async purgeTombstones(olderThanMs: number): Promise<number> {
    const rows = await this.dataSource.query<Array<{ purged: number }>>(
      `WITH purged AS (
         DELETE FROM vector_documents
          WHERE embedding IS NULL AND indexed_at < now() - make_interval(secs => $1::double precision / 1000)
          RETURNING company_id, seq
       ), marks AS (
         UPDATE vector_companies c SET purged_seq = GREATEST(c.purged_seq, p.max_seq)
           FROM (SELECT company_id, max(seq) AS max_seq FROM purged GROUP BY company_id) p
          WHERE c.company_id = p.company_id
          RETURNING 1
       )
       SELECT (SELECT count(*)::int FROM purged) AS purged`,
      [olderThanMs],
    );
    return rows[0]?.purged ?? 0;
  }
}
