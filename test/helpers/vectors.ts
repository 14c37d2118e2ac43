/** Deterministic pseudo-random numbers (mulberry32), so vector tests and benchmarks see the same data each run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Gaussian-ish noise from the sum of uniforms (cheap, deterministic). */
function noise(random: () => number): number {
  return random() + random() + random() - 1.5;
}

/**
 * Vectors in `clusters` tight groups around random centres (uniform random high-dimensional data has no neighbours
 * worth finding; CRM embeddings cluster by topic).
 */
export function clusteredVectors(
  count: number,
  dimension: number,
  seed: number,
  clusters = 20,
  spread = 0.35,
): number[][] {
  const random = seededRandom(seed);
  const centres = Array.from({ length: clusters }, () =>
    Array.from({ length: dimension }, () => noise(random)),
  );
  return Array.from({ length: count }, (_, i) => {
    const centre = centres[i % clusters]!;
    return centre.map((value) => value + spread * noise(random));
  });
}

export function cosine(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}

/** Reference answer: the ids of the k most similar vectors by brute force. */
export function exactTopK(
  query: readonly number[],
  docs: ReadonlyArray<{ docId: string; vector: readonly number[] }>,
  k: number,
): Array<{ docId: string; score: number }> {
  return docs
    .map((doc) => ({ docId: doc.docId, score: cosine(query, doc.vector) }))
    .sort((a, b) => b.score - a.score || (a.docId < b.docId ? -1 : 1))
    .slice(0, k);
}
