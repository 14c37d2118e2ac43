import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Vectors' source of truth: every indexed document of every company as `real[]`, whatever backend serves queries.
 * Deletes leave a tombstone (embedding NULL) so in-process copies can follow by sequence; a job purges old ones.
 * `vector_companies.seq` is bumped under a row lock by every write, so a company's writes commit in seq order.
 * `vector_backend_stale` names the (backend, company) pairs whose index missed a write and must be rebuilt first.
 * The pgvector table itself is made at startup where the extension exists (its dimension is configuration).
 */
export class VectorDocuments1764900000000 implements MigrationInterface {
  name = 'VectorDocuments1764900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE vector_companies (
        company_id uuid PRIMARY KEY REFERENCES companies(id) ON DELETE CASCADE,
        seq bigint NOT NULL DEFAULT 0,
        purged_seq bigint NOT NULL DEFAULT 0
      );
      CREATE TABLE vector_documents (
        company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
        doc_id varchar(255) NOT NULL,
        entity_type text NOT NULL CHECK (entity_type IN ('LEAD', 'DEAL', 'ACCOUNT', 'DOCUMENT')),
        record_id uuid,
        embedding real[],
        metadata jsonb NOT NULL DEFAULT '{}',
        seq bigint NOT NULL,
        indexed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (company_id, doc_id),
        CHECK ((entity_type = 'DOCUMENT') = (record_id IS NULL))
      );
      ALTER TABLE vector_documents ALTER COLUMN embedding SET STORAGE EXTERNAL;
      CREATE INDEX vector_documents_seq_idx ON vector_documents (company_id, seq);
      CREATE INDEX vector_documents_tombstone_idx ON vector_documents (indexed_at) WHERE embedding IS NULL;
      CREATE TABLE vector_backend_stale (
        backend text NOT NULL,
        company_id uuid NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
        -- the company's sequence when marked: a rebuild that read at least this sequence clears the mark
        seq bigint NOT NULL,
        since timestamptz NOT NULL DEFAULT now(),
        reason text NOT NULL,
        PRIMARY KEY (backend, company_id)
      );
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'DROP TABLE IF EXISTS vector_backend_stale, vector_documents, vector_companies, vector_search_index',
    );
  }
}
