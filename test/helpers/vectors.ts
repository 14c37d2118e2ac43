// The generator the benchmarks use, so tests and `npm run bench` see the same kind of data.
export { clusteredVectors } from '../../src/modules/vectors/vector.synthetic';

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
