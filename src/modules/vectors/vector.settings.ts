import { z } from 'zod';
import { defineSettings, listEntries, optionalUrl, positiveInt } from '../../config/settings';

/** Vector similarity: dimension, filters, backends (OpenSearch k-NN, pgvector, fallback) (config.vectors). */
export const vectorSettings = defineSettings({
  variables: {
    OPENSEARCH_URL: optionalUrl(/^(http|https):\/\//),
    /** Length of every vector (fixed per deployment; changing it means reindexing). */
    VECTOR_DIMENSION: z.coerce.number().int().min(2).max(4096).default(768),
    /** Metadata keys `similar` may filter on (comma-separated). */
    VECTOR_FILTER_KEYS: z
      .string()
      .regex(
        /^\s*[A-Za-z_][A-Za-z0-9_]*(\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*\s*$/,
        'must be comma-separated key names',
      )
      .default('status,stage,source,industry,country,category,language'),
    /** How often each process re-checks the vector backends (a failed one comes back after it). */
    VECTOR_HEALTH_CHECK_MS: positiveInt(30_000),
    /** Memory for the fallback backend's in-process copies of vectors; larger companies are scanned from Postgres. */
    VECTOR_FALLBACK_CACHE_MB: positiveInt(1024),
    /** Most candidates asked of an index before an exact scan with the caller's visibility in SQL takes over. */
    VECTOR_MAX_CANDIDATES: positiveInt(2000),
    /** How often the worker rebuilds indexes that missed writes and purges deleted vectors. */
    VECTOR_REPAIR_EVERY_MS: positiveInt(60_000),
    /** pgvector HNSW candidate list per query (raised to the candidates asked for, at most 1000). */
    PGVECTOR_EF_SEARCH: z.coerce.number().int().min(10).max(1000).default(400),
    OPENSEARCH_INDEX: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be a lower-case OpenSearch index name')
      .default('crm-vectors'),
    /** When indexed vectors become searchable in OpenSearch: before the write returns, at once, or on the next refresh. */
    OPENSEARCH_REFRESH: z.enum(['wait_for', 'true', 'false']).default('wait_for'),
    OPENSEARCH_TIMEOUT_MS: positiveInt(5_000),
  },
  read: (e) => ({
    dimension: e.VECTOR_DIMENSION,
    filterKeys: listEntries(e.VECTOR_FILTER_KEYS),
    healthCheckMs: e.VECTOR_HEALTH_CHECK_MS,
    fallbackCacheBytes: e.VECTOR_FALLBACK_CACHE_MB * 1024 * 1024,
    maxCandidates: e.VECTOR_MAX_CANDIDATES,
    repairEveryMs: e.VECTOR_REPAIR_EVERY_MS,
    pgvectorEfSearch: e.PGVECTOR_EF_SEARCH,
    opensearch: e.OPENSEARCH_URL
      ? {
          url: e.OPENSEARCH_URL,
          index: e.OPENSEARCH_INDEX,
          refresh: e.OPENSEARCH_REFRESH,
          timeoutMs: e.OPENSEARCH_TIMEOUT_MS,
        }
      : undefined,
  }),
});
