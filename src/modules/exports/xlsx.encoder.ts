import archiver, { type Archiver } from 'archiver';
import { parse } from 'csv-parse';
import { PassThrough, Transform, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Duplex as DuplexStream } from 'node:stream';
import type { FieldKind } from '../kernel';
import type { ExportColumn } from './export.fields';

/**
 * How the COPY feeding this encoder writes NULL: a control character no cell can hold (XML forbids it), so parsing
 * needs no per-field callback (which would cost more than the rest of the encoding).
 */
export const XLSX_NULL = '\u0001';
export const XLSX_NULL_SQL = '\\x01';

/** Excel's row limit is 1,048,576: a header and this many rows per sheet. */
export const XLSX_ROWS_PER_SHEET = 1_048_575;

const MAIN = 'http://schemas.openxmlformats.org/spreadsheetml/2006/main';
const RELS = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships';
const PACKAGE_RELS = 'http://schemas.openxmlformats.org/package/2006/relationships';
const WRITE_BATCH_CHARS = 64 * 1024;
const XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n';

/** Cell styles: 0 general, 1 date and time, 2 date (both in UTC, as the values are). */
const STYLES =
  `${XML_HEAD}<styleSheet xmlns="${MAIN}"><numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/>` +
  '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/></numFmts><fonts count="1"><font><sz val="11"/><name val="Calibri"/>' +
  '</font></fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/>' +
  '</fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>' +
  '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="3">' +
  '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>' +
  '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>' +
  '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs></styleSheet>';

/**
 * COPY hands over whatever the socket holds (megabytes when Postgres streams a sorted result faster than we encode),
 * and the parser turns a whole chunk into records at once: slice input so only a few hundred records exist at a time.
 */
const PARSE_CHUNK_BYTES = 16 * 1024;

/** Slices chunks to `size` bytes, one slice at a time as the parser takes them (a generator waits on its reader). */
function rechunk(size: number) {
  return async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source)
      for (let start = 0; start < chunk.length; start += size) yield chunk.subarray(start, start + size);
  };
}

/** Text as XML character data: escaped, and without the control characters XML 1.0 cannot hold. */
function xmlText(value: string): string {
  return (
    value
      // eslint-disable-next-line no-control-regex -- XML 1.0 forbids these characters: they are dropped on purpose
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
      .replace(/[&<>"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&quot;'))
  );
}

function columnName(index: number): string {
  let name = '';
  for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26))
    name = String.fromCharCode(65 + ((n - 1) % 26)) + name;
  return name;
}

/** Days since 1899-12-30 (Excel's serial date), from an ISO instant or day. */
function excelSerial(iso: string): number {
  return Date.parse(iso.length === 10 ? `${iso}T00:00:00Z` : iso) / 86_400_000 + 25_569;
}

function cellXml(kind: FieldKind, ref: string, text: string | null): string {
  if (text === null) return '';
  switch (kind) {
    case 'int':
    case 'number':
    case 'money':
      return `<c r="${ref}"><v>${Number(text)}</v></c>`;
    case 'timestamp':
      return `<c r="${ref}" s="1"><v>${excelSerial(text)}</v></c>`;
    case 'day':
      return `<c r="${ref}" s="2"><v>${excelSerial(text)}</v></c>`;
    default:
      return `<c r="${ref}" t="inlineStr"><is><t xml:space="preserve">${xmlText(text)}</t></is></c>`;
  }
}

/** One sheet row of a record (COPY's NULL marker and missing fields make empty cells). */
function rowXml(
  columns: readonly ExportColumn[],
  refs: readonly string[],
  row: number,
  record: string[],
): string {
  let cells = '';
  for (let i = 0; i < columns.length; i++) {
    const text = record[i];
    cells += cellXml(
      columns[i]!.kind,
      `${refs[i]}${row}`,
      text === undefined || text === XLSX_NULL ? null : text,
    );
  }
  return `<row r="${row}">${cells}</row>`;
}

/**
 * The parts of a workbook besides its sheets: content types, the package and workbook relationships, the workbook
 * naming `sheets` sheets, and the styles.
 */
function appendWorkbookParts(zip: Archiver, sheets: number): void {
  const names = Array.from({ length: sheets }, (_, i) => i + 1);
  zip.append(
    `${XML_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
      '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>' +
      '<Default Extension="xml" ContentType="application/xml"/>' +
      '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>' +
      '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>' +
      names
        .map(
          (n) =>
            `<Override PartName="/xl/worksheets/sheet${n}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>`,
        )
        .join('') +
      '</Types>',
    { name: '[Content_Types].xml' },
  );
  zip.append(
    `${XML_HEAD}<Relationships xmlns="${PACKAGE_RELS}"><Relationship Id="rId1" ` +
      `Type="${RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
    { name: '_rels/.rels' },
  );
  zip.append(
    `${XML_HEAD}<workbook xmlns="${MAIN}" xmlns:r="${RELS}"><sheets>` +
      names.map((n) => `<sheet name="Export ${n}" sheetId="${n}" r:id="rId${n}"/>`).join('') +
      '</sheets></workbook>',
    { name: 'xl/workbook.xml' },
  );
  zip.append(
    `${XML_HEAD}<Relationships xmlns="${PACKAGE_RELS}">` +
      names
        .map((n) => `<Relationship Id="rId${n}" Type="${RELS}/worksheet" Target="worksheets/sheet${n}.xml"/>`)
        .join('') +
      `<Relationship Id="rId${sheets + 1}" Type="${RELS}/styles" Target="styles.xml"/></Relationships>`,
    { name: 'xl/_rels/workbook.xml.rels' },
  );
  zip.append(STYLES, { name: 'xl/styles.xml' });
}

/**
 * CSV records in (COPY's output of the columns' raw values), an XLSX workbook out: typed cells (numbers, dates in
 * UTC, inline text that is never a formula), a header row, a new sheet every `rowsPerSheet` rows. The sheet XML is
 * written row by row into a streaming zip (archiver, ZIP64 when needed), so memory does not grow with the rows.
 * `onRecords` hears the running count.
 */
export function xlsxEncoder(
  columns: readonly ExportColumn[],
  onRecords: (records: number) => void,
  rowsPerSheet = XLSX_ROWS_PER_SHEET,
): Duplex {
  const refs = columns.map((_, i) => columnName(i));
  const header = (row: number) =>
    `<row r="${row}">${columns.map((c, i) => cellXml('text', `${refs[i]}${row}`, c.name)).join('')}</row>`;
  const zip = archiver('zip', { zlib: { level: 6 } });
  const output = new PassThrough();
  zip.pipe(output);
  const parser = parse();

  let sheets = 0;
  let sheet: PassThrough | undefined;
  let row = 0;
  let records = 0;
  // Rows go to the zip in batches: deflate is called per chunk, and a call per row costs more than the row.
  let pending = '';
  const openSheet = () => {
    sheet?.end(`${pending}</sheetData></worksheet>`);
    pending = '';
    sheets++;
    sheet = new PassThrough();
    zip.append(sheet, { name: `xl/worksheets/sheet${sheets}.xml` });
    sheet.write(`${XML_HEAD}<worksheet xmlns="${MAIN}" xmlns:r="${RELS}"><sheetData>${header(1)}`);
    row = 1;
  };
  const writeRows = new Transform({
    objectMode: true,
    transform(record: string[], _encoding, done) {
      if (!sheet || row > rowsPerSheet) openSheet();
      row++;
      records++;
      if (records % 1000 === 0) onRecords(records);
      pending += rowXml(columns, refs, row, record);
      if (pending.length < WRITE_BATCH_CHARS) return done();
      const batch = pending;
      pending = '';
      // Wait while the zip is behind, so memory stays flat whatever the size.
      if (sheet!.write(batch)) done();
      else sheet!.once('drain', () => done());
    },
    flush(done) {
      if (!sheet) openSheet();
      sheet!.end(`${pending}</sheetData></worksheet>`);
      pending = '';
      onRecords(records);
      appendWorkbookParts(zip, sheets);
      zip.finalize().then(() => done(), done);
    },
  });
  const input = new PassThrough();
  const encoding = pipeline(input, rechunk(PARSE_CHUNK_BYTES), parser, writeRows);
  zip.on('error', (error) => output.destroy(error));
  encoding.catch((error: Error) => {
    zip.abort();
    output.destroy(new Error(`XLSX encoding failed: ${error.message}`));
  });
  return DuplexStream.from({ writable: input, readable: output });
}
