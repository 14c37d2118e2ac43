import { createHash } from 'node:crypto';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { PoolClient } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { CsvRecordCounter, tap } from '../../platform/streams/stream-taps';
import { graphqlEnum, type EnumValue } from '../kernel';
import { csvExpression, jsonExpression, quoteIdentifier, type ExportColumn } from './export.fields';
import { XLSX_NULL_SQL, xlsxEncoder } from './xlsx.encoder';

export const ExportFormat = graphqlEnum(
  'ExportFormat',
  ['CSV', 'JSON', 'NDJSON', 'XLSX'],
  'CSV (RFC 4180, header row), JSON (one array), NDJSON (one object per line), XLSX (typed cells)',
);
export type ExportFormat = EnumValue<typeof ExportFormat>;

export const CONTENT_TYPE: Readonly<Record<ExportFormat, string>> = {
  CSV: 'text/csv; charset=utf-8',
  JSON: 'application/json',
  NDJSON: 'application/x-ndjson',
  XLSX: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
};
export const EXTENSION: Readonly<Record<ExportFormat, string>> = {
  CSV: 'csv',
  JSON: 'json',
  NDJSON: 'ndjson',
  XLSX: 'xlsx',
};

/**
 * COPY takes no bind parameters. Values still never enter the SQL text: each is bound to a transaction-local setting
 * (`set_config($1, $2, true)`) and the statement reads it back with `current_setting(...)` and its cast.
 */
export class SettingsBinder {
  private readonly names: string[] = [];
  private readonly values: string[] = [];

  readonly bind = (value: unknown): string => {
    const name = `crm_export.p${this.names.length + 1}`;
    this.names.push(name);
    this.values.push(asSettingText(value));
    return `current_setting('${name}')`;
  };

  /** Binds every setting on `client`; call inside the transaction that runs the statements. */
  async apply(client: PoolClient): Promise<void> {
    if (this.names.length === 0) return;
    const calls = this.names.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`);
    await client.query(
      `SELECT ${calls.join(', ')}`,
      this.names.flatMap((name, i) => [name, this.values[i]]),
    );
  }
}

/** Scalars as their text; lists as a Postgres array literal (every element quoted and escaped). */
function asSettingText(value: unknown): string {
  if (Array.isArray(value))
    return `{${value.map((item) => `"${String(item).replace(/["\\]/g, (c) => `\\${c}`)}"`).join(',')}}`;
  if (value instanceof Date) return value.toISOString();
  return String(value);
}

export interface ExportStatement {
  columns: readonly ExportColumn[];
  from: string;
  where: string;
  orderBy: string;
  limit?: number;
}

function selectSql(statement: ExportStatement, list: string): string {
  return `SELECT ${list} FROM ${statement.from} WHERE ${statement.where} ORDER BY ${statement.orderBy}${
    statement.limit ? ` LIMIT ${Math.floor(statement.limit)}` : ''
  }`;
}

function csvCopy(statement: ExportStatement): string {
  const list = statement.columns.map((c) => `${csvExpression(c)} AS ${quoteIdentifier(c.name)}`).join(', ');
  return `COPY (${selectSql(statement, list)}) TO STDOUT WITH (FORMAT csv, HEADER true)`;
}

/**
 * One JSON object per line. CSV format with a quote and a delimiter JSON text never holds raw (control characters
 * are escaped in JSON) writes each object as it is: no quoting, no escaping.
 */
function jsonLinesCopy(statement: ExportStatement): string {
  const pairs = statement.columns.map((c) => `'${c.name}', ${jsonExpression(c)}`).join(', ');
  return `COPY (${selectSql(statement, `json_build_object(${pairs})::text`)}) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')`;
}

/** The raw values for typed spreadsheet cells (no neutralising: a cell holds text, never a formula). */
function typedCsvCopy(statement: ExportStatement): string {
  const list = statement.columns
    .map((c) => `${c.kind === 'timestamp' || c.kind === 'day' ? jsonExpression(c) : `${c.expression}::text`}`)
    .join(', ');
  return `COPY (${selectSql(statement, list)}) TO STDOUT WITH (FORMAT csv, NULL E'${XLSX_NULL_SQL}')`;
}

/** NDJSON lines into a JSON array, streamed: `[`, the objects separated by commas, `]`. */
function jsonArray(): Transform {
  let started = false;
  let separate = false;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const out: Buffer[] = [];
      if (!started) {
        out.push(Buffer.from('[\n'));
        started = true;
      }
      let start = 0;
      for (;;) {
        const end = chunk.indexOf(0x0a, start);
        const piece = chunk.subarray(start, end === -1 ? chunk.length : end);
        if (piece.length > 0) {
          if (separate) out.push(Buffer.from(',\n'));
          separate = false;
          out.push(piece);
        }
        if (end === -1) break;
        separate = true;
        start = end + 1;
      }
      done(null, Buffer.concat(out));
    },
    flush(done) {
      done(null, Buffer.from(started ? '\n]\n' : '[]\n'));
    },
  });
}

export interface EncodedExport {
  /** The file's bytes (compressed when asked). */
  body: Readable;
  /** Resolves when every byte is out: records written, bytes, sha256 of the bytes. */
  done: Promise<{ rows: number; bytes: number; sha256: string }>;
}

/**
 * Runs the statement as COPY on `client` (inside the caller's transaction, settings applied) and encodes it. Records
 * are counted as they stream (`onRecords` with the running total). Destroying `body` stops the COPY; the client must
 * then be discarded, not reused.
 */
export function encodeExport(
  client: PoolClient,
  statement: ExportStatement,
  options: { format: ExportFormat; gzipLevel?: number; onRecords?: (total: number) => void },
): EncodedExport {
  const { format } = options;
  const hash = createHash('sha256');
  let bytes = 0;
  let rows = 0;
  const counted = (count: number) => {
    rows = count;
    options.onRecords?.(count);
  };
  const stages: NodeJS.ReadWriteStream[] = [];
  const body = new PassThrough();
  let copy: Readable;
  if (format === 'CSV') {
    copy = client.query(copyTo(csvCopy(statement)));
    const counter = new CsvRecordCounter();
    stages.push(tap((chunk) => (counter.push(chunk), counted(Math.max(0, counter.records - 1)))));
  } else if (format === 'JSON' || format === 'NDJSON') {
    copy = client.query(copyTo(jsonLinesCopy(statement)));
    let lines = 0;
    stages.push(
      tap((chunk) => {
        for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) lines++;
        counted(lines);
      }),
    );
    if (format === 'JSON') stages.push(jsonArray());
  } else {
    copy = client.query(copyTo(typedCsvCopy(statement)));
  }
  const finalStages: Array<NodeJS.ReadWriteStream> = [];
  if (options.gzipLevel) finalStages.push(createGzip({ level: options.gzipLevel }));
  finalStages.push(
    tap((chunk) => {
      hash.update(chunk);
      bytes += chunk.length;
    }),
  );

  let done: Promise<unknown>;
  if (format === 'XLSX') {
    done = pipeline([copy, xlsxEncoder(statement.columns, counted), ...finalStages, body]);
  } else {
    done = pipeline([copy, ...stages, ...finalStages, body]);
  }
  const finished = done.then(() => ({ rows, bytes, sha256: hash.digest('hex') }));
  // Whoever reads `body` sees its failure; this keeps an unobserved rejection from ending the process.
  finished.catch(() => undefined);
  body.on('close', () => {
    if (!body.readableEnded) copy.destroy(new Error('export output closed before the end'));
  });
  return { body, done: finished };
}
