import type { MigrationInterface, QueryRunner } from 'typeorm';

/*
 * Frozen snapshots: the functions below are copied here, not generated from live code (a migration keeps its meaning
 * when that code moves on). `down` puts back the definitions 1765200000000 and 1765300000000 installed.
 */

/** Most slots a (company, record type) gets; past them a writer waits for one (chosen by its backend). */
const MAX_SLOTS = 64;

/**
 * The commit-time search step, striped. Each (company, record type) has several version slots (rows of
 * `search_versions`, one per `slot`); a committing writer takes the lowest slot no other writer holds
 * (`FOR UPDATE SKIP LOCKED`), adding one when all are held, bumps it, and logs its changed records under
 * (slot, slot version). It holds that slot until its commit is flushed and visible, as the single row was held
 * before, but concurrent writers of one company hold different slots, so they no longer queue behind each other's
 * WAL flush.
 *
 * The data version a reader sees is the vector of slot versions (`slot:version` by slot). Why it is exact:
 * - Per slot, bumps are serialized by the row lock, held to the end of the bumping transaction: the transaction that
 *   bumped a slot to k has written its commit record and left the proc array (is visible) before the one bumping it
 *   to k + 1 can lock the row. So on the primary (visibility = proc-array order) and on a replica (visibility = WAL
 *   commit-record order) alike, a snapshot that sees slot version k sees the bumpers 1..k of that slot and no other.
 * - Every transaction that changes records of a (company, type) bumps exactly one of its slots at commit, in the same
 *   transaction as the changes and their log rows (slot, k): its changes are visible exactly when its bump is.
 * Hence a snapshot whose vector is V sees exactly the record changes logged at (s, k) with k <= V[s], no more, no
 * fewer, on whichever server: equal vectors mean equal data (so windows cached under a vector are exact), and the
 * changes between an index's vector A and a snapshot's vector C (C covering A) are those logged at (s, k) with
 * A[s] < k <= C[s], which is what catch-up re-reads. A transaction open for long takes its slot at its commit, so its
 * changes get a slot version above every vector read before that commit. Right after a write returns, its slot
 * version is visible to every later snapshot on the primary, and to a replica once it replayed the write's commit
 * LSN, which is when the read-your-writes floor lets the writer read there.
 */
const SEARCH_APPLY = `
  CREATE OR REPLACE FUNCTION search_changes_apply(tx xid8) RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
      touched record;
      taken integer;
      bumped bigint;
      slots integer;
    BEGIN
      FOR touched IN SELECT DISTINCT company_id, record_type FROM search_changes_pending WHERE txid = tx ORDER BY 1, 2 LOOP
        LOOP
          SELECT slot INTO taken FROM search_versions
           WHERE company_id = touched.company_id AND record_type = touched.record_type
           ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED;
          IF FOUND THEN
            UPDATE search_versions SET version = version + 1
             WHERE company_id = touched.company_id AND record_type = touched.record_type AND slot = taken
             RETURNING version INTO bumped;
            EXIT;
          END IF;
          SELECT count(*) INTO slots FROM search_versions
           WHERE company_id = touched.company_id AND record_type = touched.record_type;
          IF slots >= ${MAX_SLOTS} THEN
            taken := pg_backend_pid() % slots;
            UPDATE search_versions SET version = version + 1
             WHERE company_id = touched.company_id AND record_type = touched.record_type AND slot = taken
             RETURNING version INTO bumped;
            EXIT;
          END IF;
          -- Slots are numbered 0.. without gaps; a writer adding the same number at once wins or we look again.
          INSERT INTO search_versions (company_id, record_type, slot, version)
          VALUES (touched.company_id, touched.record_type, slots, 1)
          ON CONFLICT DO NOTHING RETURNING slot, version INTO taken, bumped;
          EXIT WHEN FOUND;
        END LOOP;
        INSERT INTO search_changes (company_id, record_type, slot, version, record_id)
        SELECT DISTINCT touched.company_id, touched.record_type, taken, bumped, p.record_id
          FROM search_changes_pending p
         WHERE p.txid = tx AND p.company_id = touched.company_id AND p.record_type = touched.record_type;
      END LOOP;
      DELETE FROM search_changes_pending WHERE txid = tx;
    END $$`;

/** TRUNCATE names no rows: slot 0 of every company's type moves and is marked pruned, so every index rebuilds. */
const SEARCH_TRUNCATE = `
  CREATE OR REPLACE FUNCTION search_log_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO search_versions AS v (company_id, record_type, slot, version, pruned_through)
      SELECT id, TG_ARGV[0], 0, 1, 1 FROM companies ORDER BY id
      ON CONFLICT (company_id, record_type, slot)
        DO UPDATE SET version = v.version + 1, pruned_through = v.version + 1;
      RETURN NULL;
    END $$`;

/** As 1765300000000 installed it. */
const SEARCH_APPLY_BEFORE = `
  CREATE OR REPLACE FUNCTION search_changes_apply(tx xid8) RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
        WITH touched AS (
          DELETE FROM search_changes_pending WHERE txid = tx RETURNING company_id, record_type, record_id),
        bumped AS (
          INSERT INTO search_versions AS v (company_id, record_type, version)
          SELECT DISTINCT company_id, record_type, 1 FROM touched ORDER BY 1, 2
          ON CONFLICT (company_id, record_type) DO UPDATE SET version = v.version + 1
          RETURNING company_id, record_type, version)
        INSERT INTO search_changes (company_id, record_type, version, record_id)
        SELECT DISTINCT t.company_id, t.record_type, b.version, t.record_id
          FROM touched t JOIN bumped b USING (company_id, record_type);
      END $$`;

/** As 1765200000000 installed it. */
const SEARCH_TRUNCATE_BEFORE = `
  CREATE OR REPLACE FUNCTION search_log_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO search_versions AS v (company_id, record_type, version, pruned_through)
        SELECT id, TG_ARGV[0], 1, 1 FROM companies ORDER BY id
        ON CONFLICT (company_id, record_type)
          DO UPDATE SET version = v.version + 1, pruned_through = v.version + 1;
        RETURN NULL;
      END $$`;

/**
 * Tenant write throughput: all writers of one company and record type bumped one version row at commit and held it
 * through their commit's WAL flush, so their commits went through one at a time. The version is now striped over
 * slots (see SEARCH_APPLY for why readers stay exact). The versions held become slot 0's, the logged changes slot 0's.
 */
export class SearchVersionSlots1765500000000 implements MigrationInterface {
  name = 'SearchVersionSlots1765500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE search_versions ADD COLUMN slot integer NOT NULL DEFAULT 0');
    await queryRunner.query('ALTER TABLE search_versions DROP CONSTRAINT search_versions_pkey');
    await queryRunner.query('ALTER TABLE search_versions ADD PRIMARY KEY (company_id, record_type, slot)');
    await queryRunner.query('ALTER TABLE search_versions ALTER COLUMN slot DROP DEFAULT');
    await queryRunner.query('ALTER TABLE search_changes ADD COLUMN slot integer NOT NULL DEFAULT 0');
    await queryRunner.query('ALTER TABLE search_changes ALTER COLUMN slot DROP DEFAULT');
    await queryRunner.query('DROP INDEX search_changes_version_idx');
    await queryRunner.query(
      'CREATE INDEX search_changes_slot_version_idx ON search_changes (company_id, record_type, slot, version)',
    );
    await queryRunner.query(SEARCH_APPLY);
    await queryRunner.query(SEARCH_TRUNCATE);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(SEARCH_APPLY_BEFORE);
    await queryRunner.query(SEARCH_TRUNCATE_BEFORE);
    // One version per (company, type) again, past every slot's and marked pruned through: the log's slot versions
    // mean nothing as one number, so it is emptied and every index rebuilds.
    await queryRunner.query(
      `UPDATE search_versions v SET version = s.total, pruned_through = s.total
         FROM (SELECT company_id, record_type, sum(version)::bigint AS total FROM search_versions GROUP BY 1, 2) s
        WHERE v.slot = 0 AND v.company_id = s.company_id AND v.record_type = s.record_type`,
    );
    await queryRunner.query('DELETE FROM search_versions WHERE slot > 0');
    await queryRunner.query('DELETE FROM search_changes');
    await queryRunner.query('ALTER TABLE search_versions DROP CONSTRAINT search_versions_pkey');
    await queryRunner.query('ALTER TABLE search_versions DROP COLUMN slot');
    await queryRunner.query('ALTER TABLE search_versions ADD PRIMARY KEY (company_id, record_type)');
    await queryRunner.query('DROP INDEX search_changes_slot_version_idx');
    await queryRunner.query('ALTER TABLE search_changes DROP COLUMN slot');
    await queryRunner.query(
      'CREATE INDEX search_changes_version_idx ON search_changes (company_id, record_type, version)',
    );
  }
}
