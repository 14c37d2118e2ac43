import type { FieldViolation } from '../../platform/errors/app-error';
import type { Principal } from '../kernel';
import type { Embedder } from './vector.math';
import {
  assertNoViolations,
  normalizedVector,
  validateMetadataFilters,
  VectorLimits,
  type VectorEntityType,
  type VectorQuery,
} from './vector.model';
import type { VectorSettings } from './vector.options';

export interface SimilarInput {
  vector?: readonly number[] | null;
  text?: string | null;
  k?: number | null;
  minScore?: number | null;
  filters?: {
    entityTypes?: readonly VectorEntityType[] | null;
    metadata?: ReadonlyArray<{ key: string; values: readonly unknown[] }> | null;
  } | null;
}

/** A `similar` input validated (every violation at once) and turned into a backend query of the caller's company. */
export function parseSimilar(
  principal: Principal,
  input: SimilarInput,
  settings: VectorSettings,
  embedder: Embedder,
) {
  const violations: FieldViolation[] = [];
  const k = input.k ?? VectorLimits.defaultK;
  if (!Number.isInteger(k) || k < 1 || k > VectorLimits.maxK)
    violations.push({ field: 'input.k', rule: `must be an integer from 1 to ${VectorLimits.maxK}` });
  const minScore = input.minScore ?? undefined;
  if (minScore !== undefined && !(Number.isFinite(minScore) && minScore >= -1 && minScore <= 1))
    violations.push({ field: 'input.minScore', rule: 'must be a number from -1 to 1 (cosine similarity)' });
  let vector: Float32Array = new Float32Array(0);
  const hasVector = input.vector !== null && input.vector !== undefined;
  const hasText = input.text !== null && input.text !== undefined;
  if (hasVector === hasText) {
    violations.push({ field: 'input', rule: 'must give exactly one of vector and text' });
  } else if (hasVector) {
    vector = normalizedVector('input.vector', input.vector!, settings.dimension, violations);
  } else if (input.text!.length > VectorLimits.maxTextLength) {
    violations.push({
      field: 'input.text',
      rule: `must be at most ${VectorLimits.maxTextLength} characters`,
    });
  } else {
    const embedded = embedder.embed(input.text!, settings.dimension);
    if (embedded) vector = embedded;
    else violations.push({ field: 'input.text', rule: 'must contain at least one letter or digit' });
  }
  const metadata = validateMetadataFilters(input.filters?.metadata ?? [], settings.filterKeys, violations);
  assertNoViolations(violations);
  const entityTypes = input.filters?.entityTypes?.length
    ? [...new Set(input.filters.entityTypes)]
    : undefined;
  const query: VectorQuery = { companyId: principal.companyId, vector, limit: k, entityTypes, metadata };
  return { query, k, minScore };
}
