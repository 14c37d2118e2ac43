import { DealStage, Industry, LeadSource, LeadStatus, RecordType } from './record.enums';

/**
 * What a field holds, which decides how values are validated, bound and compared:
 * `timestamp` is a timestamptz compared as an instant; `day` a DATE compared as YYYY-MM-DD; `money` a numeric(p,2).
 */
export type FieldKind = 'text' | 'enum' | 'int' | 'number' | 'money' | 'timestamp' | 'day' | 'uuid';

/** What a field may be used for. Every feature that names fields from input checks the flag here, and nowhere else. */
export interface FieldUses {
  filter: boolean;
  sort: boolean;
  /** Counted in facets and usable as a report dimension. */
  facet: boolean;
  /** Usable as the measure of SUM/AVG/MIN/MAX. */
  aggregate: boolean;
  export: boolean;
  /** Named in sharing criteria rules. */
  criteria: boolean;
}

export interface FieldSpec {
  /** GraphQL and entity property name. */
  name: string;
  /** SQL column (never taken from input: looked up here). */
  column: string;
  kind: FieldKind;
  /** Allowed values of an enum field. */
  values?: readonly string[];
  /** The record type a uuid field refers to, or `USER`. */
  references?: RecordType | 'USER';
  uses: Readonly<FieldUses>;
}

const NONE: FieldUses = {
  filter: false,
  sort: false,
  facet: false,
  aggregate: false,
  export: false,
  criteria: false,
};

type Use = keyof FieldUses;

function field(
  name: string,
  column: string,
  kind: FieldKind,
  uses: readonly Use[],
  extra: Pick<FieldSpec, 'values' | 'references'> = {},
): FieldSpec {
  const flags = { ...NONE };
  for (const use of uses) flags[use] = true;
  return { name, column, kind, uses: Object.freeze(flags), ...extra };
}

const enumField = (name: string, column: string, values: Record<string, string>, uses: readonly Use[]) =>
  field(name, column, 'enum', uses, { values: Object.values(values) });

/** Fields every record type has. */
const common = (): FieldSpec[] => [
  field('id', 'id', 'uuid', ['filter', 'export']),
  field('ownerId', 'owner_id', 'uuid', ['filter', 'facet', 'export'], { references: 'USER' }),
  field('createdAt', 'created_at', 'timestamp', ['filter', 'sort', 'facet', 'export', 'criteria']),
  field('updatedAt', 'updated_at', 'timestamp', ['filter', 'sort', 'export']),
];

function byName(fields: FieldSpec[]): Readonly<Record<string, FieldSpec>> {
  return Object.freeze(Object.fromEntries(fields.map((spec) => [spec.name, spec])));
}

/**
 * The one field catalog: per record type, what each field is and what it may be used for. Sharing criteria, list
 * sorting, search filters and facets, report dimensions and measures, and export columns all read it; no other
 * allow-list of record fields exists.
 */
export const FIELD_CATALOG: Readonly<Record<RecordType, Readonly<Record<string, FieldSpec>>>> = Object.freeze(
  {
    LEAD: byName([
      ...common(),
      field('firstName', 'first_name', 'text', ['filter', 'export']),
      field('lastName', 'last_name', 'text', ['filter', 'sort', 'export', 'criteria']),
      field('email', 'email', 'text', ['filter', 'export', 'criteria']),
      field('companyName', 'company_name', 'text', ['filter', 'facet', 'export', 'criteria']),
      enumField('status', 'status', LeadStatus, ['filter', 'sort', 'facet', 'export', 'criteria']),
      enumField('source', 'source', LeadSource, ['filter', 'facet', 'export', 'criteria']),
      enumField('industry', 'industry', Industry, ['filter', 'facet', 'export', 'criteria']),
      field('score', 'score', 'int', ['filter', 'sort', 'facet', 'aggregate', 'export', 'criteria']),
      field('estimatedValue', 'estimated_value', 'money', [
        'filter',
        'sort',
        'facet',
        'aggregate',
        'export',
        'criteria',
      ]),
      field('description', 'description', 'text', ['export']),
    ]),
    DEAL: byName([
      ...common(),
      field('accountId', 'account_id', 'uuid', ['filter', 'facet', 'export'], {
        references: RecordType.ACCOUNT,
      }),
      field('name', 'name', 'text', ['filter', 'sort', 'export', 'criteria']),
      enumField('stage', 'stage', DealStage, ['filter', 'sort', 'facet', 'export', 'criteria']),
      field('amount', 'amount', 'money', ['filter', 'sort', 'facet', 'aggregate', 'export', 'criteria']),
      field('probability', 'probability', 'int', ['filter', 'facet', 'aggregate', 'export', 'criteria']),
      field('closeDate', 'close_date', 'day', ['filter', 'sort', 'facet', 'export', 'criteria']),
    ]),
    ACCOUNT: byName([
      ...common(),
      field('name', 'name', 'text', ['filter', 'sort', 'export', 'criteria']),
      enumField('industry', 'industry', Industry, ['filter', 'facet', 'export', 'criteria']),
      field('country', 'country', 'text', ['filter', 'facet', 'export', 'criteria']),
      field('annualRevenue', 'annual_revenue', 'money', [
        'filter',
        'sort',
        'facet',
        'aggregate',
        'export',
        'criteria',
      ]),
      field('employees', 'employees', 'int', ['filter', 'sort', 'facet', 'aggregate', 'export', 'criteria']),
    ]),
  },
);

/** The table each record type lives in (an identifier every slice's SQL may interpolate). */
export const RECORD_TABLE: Readonly<Record<RecordType, string>> = Object.freeze({
  LEAD: 'leads',
  DEAL: 'deals',
  ACCOUNT: 'accounts',
});

/** The fields of a record type that allow `use`, by name. */
export function fieldsFor(recordType: RecordType, use: Use): Readonly<Record<string, FieldSpec>> {
  return Object.fromEntries(Object.entries(FIELD_CATALOG[recordType]).filter(([, spec]) => spec.uses[use]));
}

/** The field named `name` if it allows `use` (own keys only: `__proto__` and friends are never fields). */
export function findField(recordType: RecordType, name: string, use: Use): FieldSpec | undefined {
  const fields = FIELD_CATALOG[recordType];
  const spec = Object.hasOwn(fields, name) ? fields[name] : undefined;
  return spec?.uses[use] ? spec : undefined;
}
