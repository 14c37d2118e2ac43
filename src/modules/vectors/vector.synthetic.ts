/** Deterministic pseudo-random numbers (mulberry32): vector tests and benchmarks see the same data on every run. */
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

/** Cheap bell-shaped noise (sum of three uniforms, centred). */
function noise(random: () => number): number {
  return random() + random() + random() - 1.5;
}

/**
 * `count` vectors in `clusters` topics, written row by row into one Float32Array. Each topic has a centre and a few
 * directions its members vary along (low intrinsic dimension, as text embeddings have), plus a little isotropic noise.
 * Uniform random high-dimensional data has no neighbours worth finding (every ANN index looks broken on it), and
 * neither do isotropic blobs. Rows cycle through the topics, so a held-out tail of rows makes realistic queries.
 */
export function clusteredMatrix(
  count: number,
  dimension: number,
  seed: number,
  options: { clusters?: number; latentDimensions?: number; spread?: number } = {},
): Float32Array {
  const random = seededRandom(seed);
  const clusters = options.clusters ?? 20;
  const latent = options.latentDimensions ?? 8;
  const spread = options.spread ?? 0.1;
  const centres = Array.from({ length: clusters }, () =>
    Float32Array.from({ length: dimension }, () => noise(random)),
  );
  const bases = Array.from({ length: clusters }, () =>
    Array.from({ length: latent }, () => Float32Array.from({ length: dimension }, () => 0.4 * noise(random))),
  );
  const matrix = new Float32Array(count * dimension);
  const weights = new Float32Array(latent);
  for (let row = 0; row < count; row++) {
    const cluster = row % clusters;
    const centre = centres[cluster]!;
    const basis = bases[cluster]!;
    for (let j = 0; j < latent; j++) weights[j] = 2 * noise(random);
    const offset = row * dimension;
    for (let i = 0; i < dimension; i++) {
      let value = centre[i]! + spread * noise(random);
      for (let j = 0; j < latent; j++) value += weights[j]! * basis[j]![i]!;
      matrix[offset + i] = value;
    }
  }
  return matrix;
}

/** The same data as plain arrays, for APIs and tests. */
export function clusteredVectors(count: number, dimension: number, seed: number, clusters = 20): number[][] {
  const matrix = clusteredMatrix(count, dimension, seed, { clusters });
  return Array.from({ length: count }, (_, row) =>
    Array.from(matrix.subarray(row * dimension, (row + 1) * dimension)),
  );
}
