import { createHash } from 'node:crypto';
import { PassThrough, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type { PoolClient } from 'pg';
import { parse } from 'csv-parse';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { FileStorage } from '../../platform/storage/file-storage';
import { abandonableSink, CsvRecordCounter, tap } from '../../platform/streams/stream-taps';
import { COLUMNS, type ArchiveRecord } from './audit-partition.model';

const INSERT_BATCH = 1_000;

/** A COPY that failed midway leaves its connection unusable: the pool must drop it rather than reuse it. */
export class BrokenConnection extends Error {
  constructor(cause: Error) {
    super(cause.message, { cause });
  }
}

export interface AuditArchiveStoreOptions {
  /** Where archives are written (`AUDIT_ARCHIVE_DIR`). */
  archives: FileStorage;
  /** gzip level of archives, 1..9. */
  compressionLevel: number;
  /**
   * How archives are loaded back: `copy` (COPY FROM STDIN, Postgres servers) or `insert` (batched INSERTs, for the
   * embedded database, whose socket does not speak the COPY-in protocol).
   */
  bulkLoad?: 'copy' | 'insert';
}

/** Archive files of audit months: gzip CSV written by COPY, re-read for their sha256 and rows, loaded back. */
export class AuditArchiveStore {
  constructor(private readonly options: AuditArchiveStoreOptions) {}

  /** Streams a table through gzip into the archive store, on the caller's connection (inside its transaction). */
  async write(
    client: PoolClient,
    name: string,
    location: string,
  ): Promise<{ rows: number; bytes: number; sha256: string }> {
    await client.query(`SET LOCAL TIME ZONE 'UTC'`);
    const copy = client.query(copyTo(`COPY ${name} (${COLUMNS}) TO STDOUT WITH (FORMAT csv, HEADER true)`));
    const hash = createHash('sha256');
    let bytes = 0;
    const body = new PassThrough();
    const { sink, abandon } = abandonableSink(body);
    const piping = pipeline(
      copy,
      createGzip({ level: this.options.compressionLevel }),
      tap((chunk) => {
        hash.update(chunk);
        bytes += chunk.length;
      }),
      sink,
    );
    // Storage may fail at any moment (before reading a byte, midway, at its final rename): the COPY then runs on to
    // its end into nothing, so the connection stays usable and the transaction rolls back with the rows in place.
    const storing = this.options.archives.put(location, body).catch((error: Error) => {
      abandon();
      body.destroy();
      throw error;
    });
    const [stored, piped] = await Promise.allSettled([storing, piping]);
    if (piped.status === 'rejected') {
      // The COPY itself failed: if it did not run to its end, the connection is mid-protocol and cannot be reused.
      if (!copy.readableEnded) throw new BrokenConnection(piped.reason as Error);
      throw piped.reason;
    }
    if (stored.status === 'rejected') throw stored.reason;
    return { rows: copy.rowCount, bytes, sha256: hash.digest('hex') };
  }

  /** Loads an archive's rows into `table` on the caller's connection (inside its transaction). */
  async load(client: PoolClient, table: string, archive: ArchiveRecord): Promise<number> {
    const check = await this.read(archive.location);
    if (check.sha256 !== archive.sha256 || check.rows !== archive.rowCount)
      throw new Error(
        `archive ${archive.location} does not match its record (sha256 ${check.sha256}, ${check.rows} rows)`,
      );
    const body = await this.options.archives.get(archive.location);
    if (!body) throw new Error(`archive ${archive.location} is missing`);
    if (this.options.bulkLoad === 'insert') {
      await pipeline(body, createGunzip(), parseArchiveCsv(), batchInserter(client, table));
      return archive.rowCount;
    }
    // A failed COPY FROM ends with CopyFail: the connection stays usable, so this is an ordinary (rolled back) failure.
    const loading = client.query(
      copyFrom(`COPY ${table} (${COLUMNS}) FROM STDIN WITH (FORMAT csv, HEADER true)`),
    );
    await pipeline(body, createGunzip(), loading);
    return archive.rowCount;
  }

  /** Re-reads an archive: the file's sha256 and the number of CSV records after the header. */
  async read(location: string): Promise<{ rows: number; sha256: string }> {
    const body = await this.options.archives.get(location);
    if (!body) throw new Error(`archive ${location} is missing`);
    const hash = createHash('sha256');
    const counter = new CsvRecordCounter();
    await pipeline(
      body,
      tap((chunk) => hash.update(chunk)),
      createGunzip(),
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          counter.push(chunk);
          done();
        },
      }),
    );
    return { rows: Math.max(0, counter.records - 1), sha256: hash.digest('hex') };
  }

  /** Deletes an archive file; false when it was not there or could not be deleted. */
  delete(location: string): Promise<boolean> {
    return this.options.archives.delete(location).catch(() => false);
  }
}

/** Archive CSV records as column arrays; an unquoted empty field is NULL (how COPY writes it), a quoted one ''. */
function parseArchiveCsv(): Transform {
  return parse({
    from_line: 2,
    cast: (value, context) => (value === '' && !context.quoting ? null : value),
  });
}

/** Inserts parsed archive records in batches, one statement each (one array parameter per column). */
function batchInserter(client: PoolClient, table: string): Writable {
  let batch: Array<Array<string | null>> = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const rows = batch;
    batch = [];
    const columns = COLUMNS.split(', ').map((_, index) => rows.map((record) => record[index] ?? null));
    await client.query(
      `INSERT INTO ${table} (${COLUMNS})
       SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::uuid[], $4::uuid[], $5::text[], $6::text[],
                            $7::uuid[], $8::jsonb[])`,
      columns,
    );
  };
  return new Writable({
    objectMode: true,
    write(record: Array<string | null>, _encoding, done) {
      batch.push(record);
      if (batch.length < INSERT_BATCH) return done();
      flush().then(() => done(), done);
    },
    final(done) {
      flush().then(() => done(), done);
    },
  });
}
