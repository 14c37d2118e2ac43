import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import ExcelJS from 'exceljs';
import type { ExportColumn } from '../export.fields';
import { XLSX_NULL, xlsxEncoder } from '../xlsx.encoder';

const COLUMNS: ExportColumn[] = [
  { name: 'name', kind: 'text', expression: 'r.name' },
  { name: 'amount', kind: 'money', expression: 'r.amount' },
  { name: 'closeDate', kind: 'day', expression: 'r.close_date' },
];

async function encode(csv: string, rowsPerSheet: number) {
  const chunks: Buffer[] = [];
  const seen: number[] = [];
  await pipeline(
    Readable.from([Buffer.from(csv)]),
    xlsxEncoder(COLUMNS, (records) => seen.push(records), rowsPerSheet),
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    }),
  );
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.load(Buffer.concat(chunks) as never);
  return { workbook, seen };
}

describe('the XLSX encoder', () => {
  it('writes typed cells and starts a new sheet, with its header, when one is full', async () => {
    const lines = Array.from(
      { length: 10 },
      (_, i) => `"Deal ${i}, ""quoted""",${i * 10.5},2026-0${1 + (i % 9)}-15`,
    );
    lines[1] = `${XLSX_NULL},${XLSX_NULL},${XLSX_NULL}`; // NULLs (as the COPY writes them) stay empty cells
    const { workbook, seen } = await encode(`${lines.join('\n')}\n`, 4);
    expect(workbook.worksheets.map((sheet) => sheet.rowCount)).toEqual([5, 5, 3]);
    const first = workbook.worksheets[0]!;
    expect((first.getRow(1).values as unknown[]).slice(1)).toEqual(['name', 'amount', 'closeDate']);
    expect((first.getRow(2).values as unknown[]).slice(1)).toEqual([
      'Deal 0, "quoted"',
      0,
      new Date('2026-01-15T00:00:00Z'),
    ]);
    expect((first.getRow(3).values as unknown[]).slice(1)).toEqual([]);
    expect(seen.at(-1)).toBe(10);
  });

  it('fails the stream (not the process) on malformed CSV', async () => {
    await expect(encode('"unterminated\n', 4)).rejects.toThrow(/XLSX encoding failed/);
  });
});
