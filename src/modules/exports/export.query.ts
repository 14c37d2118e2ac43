import { ValidationError, type FieldViolation } from '../../platform/errors/app-error';
import { RecordType, sortToSql, validateFilters, type RecordFilter, type RecordSort } from '../kernel';
import { exportColumns, type ExportColumn } from './export.fields';
import { EXTENSION, ExportFormat } from './export.pipeline';
import { ExportCompression } from './export.types';

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$/;

export interface StartExportInput {
  entityType: RecordType;
  format: ExportFormat;
  fields: string[];
  filters?: RecordFilter[] | null;
  sort?: RecordSort[] | null;
  compression?: ExportCompression | null;
  fileName?: string | null;
}

/** What an export runs: its validated columns and statement parts, whoever asks (job or direct stream). */
export interface PreparedExport {
  columns: ExportColumn[];
  entityType: RecordType;
  filters: RecordFilter[];
  sort: RecordSort[];
}

/**
 * Validates an export request (from GraphQL, the stream route's query, or a stored job before its worker runs it),
 * naming each bad field under `path`, and resolves its columns.
 */
export function prepareExport(
  input: Omit<StartExportInput, 'format'> & { format?: unknown },
  path = 'input',
): PreparedExport {
  const violations: FieldViolation[] = [];
  if (!Object.values(RecordType).includes(input.entityType))
    violations.push({
      field: `${path}.entityType`,
      rule: `must be one of ${Object.values(RecordType).join(', ')}`,
    });
  if (input.format !== undefined && !Object.values(ExportFormat).includes(input.format as ExportFormat))
    violations.push({
      field: `${path}.format`,
      rule: `must be one of ${Object.values(ExportFormat).join(', ')}`,
    });
  if (input.compression != null && !Object.values(ExportCompression).includes(input.compression))
    violations.push({ field: `${path}.compression`, rule: 'must be GZIP or NONE' });
  if (input.fileName != null && !FILE_NAME.test(input.fileName))
    violations.push({
      field: `${path}.fileName`,
      rule: 'must be 1 to 100 letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit',
    });
  for (const part of ['filters', 'sort'] as const) {
    const list: unknown = input[part];
    if (
      list != null &&
      (!Array.isArray(list) || list.some((item) => typeof item !== 'object' || item === null))
    )
      violations.push({ field: `${path}.${part}`, rule: 'must be a list of objects' });
  }
  if (!Array.isArray(input.fields) || input.fields.some((field) => typeof field !== 'string'))
    violations.push({ field: `${path}.fields`, rule: 'must be a list of field names' });
  if (violations.length > 0) throw new ValidationError(violations);
  const columns = exportColumns(input.entityType, input.fields ?? [], `${path}.fields`);
  const filters = input.filters ?? [];
  validateFilters(input.entityType, filters, `${path}.filters`);
  const sort = input.sort ?? [];
  sortToSql(input.entityType, sort, 'r', `${path}.sort`);
  return { columns, entityType: input.entityType, filters, sort };
}

/**
 * The name a file is served under: the caller's name (or the default) with the format's extension and `.gz` for
 * gzip appended unless it already ends with them, so `report` becomes `report.csv.gz` and `report.csv` stays one.
 */
export function exportFileName(name: string, format: ExportFormat, gzip: boolean): string {
  const extension = `.${EXTENSION[format]}`;
  let full = name;
  if (gzip && full.toLowerCase().endsWith('.gz')) full = full.slice(0, -3);
  if (!full.toLowerCase().endsWith(extension)) full += extension;
  return gzip ? `${full}.gz` : full;
}
