import { ValidationError, isUuid, type FieldViolation } from '../../platform/errors/app-error';
import { graphqlEnum, RecordType, type EnumValue } from '../kernel';

/** What a vector document stands for: a CRM record (its id is then `lead:<uuid>` and so on) or a free document. */
export const VectorEntityType = graphqlEnum(
  'VectorEntityType',
  [...(Object.values(RecordType) as RecordType[]), 'DOCUMENT'],
  'What an indexed vector stands for: a lead, deal or account (docId `lead:<id>`, ...), or any other document',
);
export type VectorEntityType = EnumValue<typeof VectorEntityType>;

export const VectorBackendName = graphqlEnum(
  'VectorBackendName',
  ['OPENSEARCH', 'PGVECTOR', 'FALLBACK'],
  'Where vector queries run, in order of preference: OpenSearch k-NN, pgvector, exact scan in the gateway',
);
export type VectorBackendName = EnumValue<typeof VectorBackendName>;

export const VectorLimits = {
  maxDocIdLength: 255,
  maxMetadataBytes: 16 * 1024,
  maxBatch: 500,
  maxK: 100,
  defaultK: 10,
  maxFilterValues: 100,
  maxTextLength: 10_000,
} as const;

/** Scalar metadata values a filter can match (objects and arrays are stored but not filterable). */
export type MetadataValue = string | number | boolean;

/** A document as stored in Postgres (and mirrored into the active backend). */
export interface VectorDocument {
  companyId: string;
  docId: string;
  entityType: VectorEntityType;
  recordId: string | null;
  /** Unit length. */
  embedding: Float32Array;
  metadata: Record<string, unknown>;
}

export interface MetadataFilter {
  key: string;
  values: MetadataValue[];
}

/** One query as every backend receives it: tenant from the principal, vector normalised, filters validated. */
export interface VectorQuery {
  companyId: string;
  vector: Float32Array;
  /** Candidates wanted, best first (the service asks for more than k when visibility filters some out). */
  limit: number;
  entityTypes?: readonly VectorEntityType[];
  metadata: readonly MetadataFilter[];
  /** Cosine similarity floor in [-1, 1]. */
  minScore?: number;
}

export interface VectorHit {
  docId: string;
  /** Cosine similarity in [-1, 1]. */
  score: number;
  entityType: VectorEntityType;
  recordId: string | null;
  metadata: Record<string, unknown>;
}

const RECORD_DOC_ID = /^(lead|deal|account):([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

/**
 * `lead:<uuid>` names the lead's vector (likewise deal and account); any other id is a free document. A record's id
 * comes back in one spelling (lower case), so `LEAD:<UUID>` and `lead:<uuid>` are the same document.
 */
export function classifyDocId(docId: string): {
  docId: string;
  entityType: VectorEntityType;
  recordId: string | null;
} {
  const match = RECORD_DOC_ID.exec(docId);
  if (!match) return { docId, entityType: 'DOCUMENT', recordId: null };
  const type = match[1]!.toUpperCase() as RecordType;
  const recordId = match[2]!.toLowerCase();
  return { docId: recordDocId(type, recordId), entityType: type, recordId };
}

export function recordDocId(type: RecordType, id: string): string {
  return `${type.toLowerCase()}:${id}`;
}

/** Checks a vector and returns it at unit length (cosine needs a direction, so all-zero is refused). */
export function normalizedVector(
  field: string,
  values: readonly number[],
  dimension: number,
  violations: FieldViolation[],
): Float32Array {
  if (values.length !== dimension) {
    violations.push({ field, rule: `must have exactly ${dimension} numbers (has ${values.length})` });
    return new Float32Array(0);
  }
  let norm = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      violations.push({ field: `${field}[${i}]`, rule: 'must be a finite number (not NaN or Infinity)' });
      return new Float32Array(0);
    }
    norm += value * value;
  }
  if (norm === 0 || !Number.isFinite(norm)) {
    violations.push({ field, rule: 'must not be all zeros (cosine similarity is undefined for it)' });
    return new Float32Array(0);
  }
  const scale = 1 / Math.sqrt(norm);
  const unit = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) unit[i] = values[i]! * scale;
  return unit;
}

/** Text Postgres cannot store in text or jsonb: NUL, or half of a UTF-16 surrogate pair. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const unstorable = (text: string) => text.includes('\u0000') || LONE_SURROGATE.test(text);

function holdsUnstorableText(value: unknown): boolean {
  if (typeof value === 'string') return unstorable(value);
  if (Array.isArray(value)) return value.some(holdsUnstorableText);
  if (value && typeof value === 'object')
    return Object.entries(value).some(([key, inner]) => unstorable(key) || holdsUnstorableText(inner));
  return false;
}

export function validateDocId(field: string, docId: unknown, violations: FieldViolation[]): void {
  if (typeof docId !== 'string' || docId.trim().length === 0)
    violations.push({ field, rule: 'must be a non-empty string' });
  else if (unstorable(docId))
    violations.push({ field, rule: 'must not contain NUL characters or broken UTF-16 surrogates' });
  else if (docId.length > VectorLimits.maxDocIdLength)
    violations.push({ field, rule: `must be at most ${VectorLimits.maxDocIdLength} characters` });
  else if (/^(lead|deal|account):/i.test(docId) && classifyDocId(docId).entityType === 'DOCUMENT')
    violations.push({ field, rule: 'must be "<lead|deal|account>:<record uuid>" when it names a record' });
}

export function validateMetadata(field: string, metadata: unknown, violations: FieldViolation[]): void {
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    violations.push({ field, rule: 'must be a JSON object' });
    return;
  }
  const json = JSON.stringify(metadata);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (holdsUnstorableText(metadata))
    violations.push({ field, rule: 'must not contain NUL characters or broken UTF-16 surrogates' });
  else if (bytes > VectorLimits.maxMetadataBytes)
    violations.push({
      field,
      rule: `must be at most ${VectorLimits.maxMetadataBytes} bytes as JSON (is ${bytes})`,
    });
}

/** Metadata filters on allow-listed keys only; values are scalars matched by type and value. */
export function validateMetadataFilters(
  filters: ReadonlyArray<{ key: string; values: readonly unknown[] }>,
  allowedKeys: readonly string[],
  violations: FieldViolation[],
): MetadataFilter[] {
  const seen = new Set<string>();
  return filters.flatMap((filter, index) => {
    const field = `input.filters.metadata[${index}]`;
    if (!allowedKeys.includes(filter.key)) {
      violations.push({ field: `${field}.key`, rule: `must be one of ${allowedKeys.join(', ')}` });
      return [];
    }
    if (seen.has(filter.key)) {
      violations.push({
        field: `${field}.key`,
        rule: `"${filter.key}" must appear once (list its values instead)`,
      });
      return [];
    }
    seen.add(filter.key);
    if (filter.values.length === 0 || filter.values.length > VectorLimits.maxFilterValues) {
      violations.push({
        field: `${field}.values`,
        rule: `must hold 1 to ${VectorLimits.maxFilterValues} values`,
      });
      return [];
    }
    const bad = filter.values.findIndex(
      (value) =>
        !(
          typeof value === 'string' ||
          typeof value === 'boolean' ||
          (typeof value === 'number' && Number.isFinite(value))
        ),
    );
    if (bad >= 0) {
      violations.push({
        field: `${field}.values[${bad}]`,
        rule: 'must be a string, a finite number or a boolean',
      });
      return [];
    }
    return [{ key: filter.key, values: filter.values as MetadataValue[] }];
  });
}

export function assertNoViolations(violations: FieldViolation[]): void {
  if (violations.length > 0) throw new ValidationError(violations);
}

export function isRecordId(id: string | null): id is string {
  return id !== null && isUuid(id);
}

/** Does `metadata` pass every filter (each key matches one of its values, compared by type and value)? */
export function metadataMatches(
  metadata: Record<string, unknown>,
  filters: readonly MetadataFilter[],
): boolean {
  return filters.every((filter) => filter.values.includes(metadata[filter.key] as MetadataValue));
}
