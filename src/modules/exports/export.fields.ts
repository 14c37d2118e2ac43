import { ValidationError, type FieldViolation } from '../../platform/errors/app-error';
import { fieldsFor, RECORD_TABLE, RecordType, type FieldKind } from '../kernel';

/** A column an export may hold: a catalog field of the record, or a name joined in SQL (never per row). */
export interface ExportColumn {
  name: string;
  kind: FieldKind;
  /** SQL over the aliases `r` (the record), `o` (its owner) and `acc` (a deal's readable account). */
  expression: string;
  join?: 'owner' | 'account';
}

const JOINED: Readonly<Record<RecordType, readonly ExportColumn[]>> = {
  LEAD: [{ name: 'ownerName', kind: 'text', expression: 'o.name', join: 'owner' }],
  DEAL: [
    { name: 'ownerName', kind: 'text', expression: 'o.name', join: 'owner' },
    { name: 'accountName', kind: 'text', expression: 'acc.name', join: 'account' },
  ],
  ACCOUNT: [{ name: 'ownerName', kind: 'text', expression: 'o.name', join: 'owner' }],
};

/** Per record type, every column an export may name: the catalog's export fields, then the joined names. */
export const EXPORT_COLUMNS: Readonly<Record<RecordType, ReadonlyMap<string, ExportColumn>>> =
  Object.fromEntries(
    Object.values(RecordType).map((type) => [
      type,
      new Map(
        [
          ...Object.values(fieldsFor(type, 'export')).map((spec): ExportColumn => ({
            name: spec.name,
            kind: spec.kind,
            expression: `r.${spec.column}`,
          })),
          ...JOINED[type],
        ].map((column) => [column.name, column]),
      ),
    ]),
  ) as unknown as Record<RecordType, ReadonlyMap<string, ExportColumn>>;

export const MAX_EXPORT_FIELDS = 50;

/** The columns `fields` names, in order; one ValidationError names every unknown or repeated field. */
export function exportColumns(
  recordType: RecordType,
  fields: readonly string[],
  path = 'input.fields',
): ExportColumn[] {
  const allowed = EXPORT_COLUMNS[recordType];
  const violations: FieldViolation[] = [];
  if (fields.length === 0) violations.push({ field: path, rule: 'must name at least one field' });
  if (fields.length > MAX_EXPORT_FIELDS)
    violations.push({ field: path, rule: `must name at most ${MAX_EXPORT_FIELDS} fields` });
  const seen = new Set<string>();
  const columns: ExportColumn[] = [];
  fields.forEach((name, index) => {
    const column = allowed.get(name);
    if (!column) {
      violations.push({
        field: `${path}[${index}]`,
        rule: `must be one of ${[...allowed.keys()].join(', ')} for ${recordType}`,
      });
      return;
    }
    if (seen.has(name)) violations.push({ field: `${path}[${index}]`, rule: `repeats ${name}` });
    seen.add(name);
    columns.push(column);
  });
  if (violations.length > 0) throw new ValidationError(violations);
  return columns;
}

/** Cells a spreadsheet would run as a formula start with one of these; they get a leading apostrophe in CSV. */
const FORMULA_START = `left(%s, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r')`;

/** How a column's value is written, per output: CSV text (neutralised), JSON value, or a typed cell's source. */
export function csvExpression(column: ExportColumn): string {
  const value = column.expression;
  switch (column.kind) {
    case 'text':
    case 'enum':
      return `CASE WHEN ${FORMULA_START.replace('%s', value)} THEN '''' || ${value} ELSE ${value} END`;
    case 'timestamp':
      return `to_char(${value} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
    case 'day':
      return `to_char(${value}, 'YYYY-MM-DD')`;
    default:
      return `${value}::text`;
  }
}

export function jsonExpression(column: ExportColumn): string {
  const value = column.expression;
  switch (column.kind) {
    case 'timestamp':
      return `to_char(${value} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
    case 'day':
      return `to_char(${value}, 'YYYY-MM-DD')`;
    case 'int':
    case 'number':
    case 'money':
      return value;
    default:
      return `${value}::text`;
  }
}

/** The FROM clause with only the joins the columns need; a deal's account name shows only if its account is readable. */
export function fromClause(
  recordType: RecordType,
  columns: readonly ExportColumn[],
  accountPredicate?: string,
): string {
  const joins = new Set(columns.map((column) => column.join).filter(Boolean));
  let from = `${RECORD_TABLE[recordType]} r`;
  if (joins.has('owner')) from += ' LEFT JOIN users o ON o.id = r.owner_id';
  if (joins.has('account'))
    from += ` LEFT JOIN accounts acc ON acc.id = r.account_id${accountPredicate ? ` AND ${accountPredicate}` : ''}`;
  return from;
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
