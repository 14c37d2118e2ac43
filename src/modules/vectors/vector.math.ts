/** Dot product of `query` with the row of `matrix` starting at `offset` (both unit length: the cosine similarity). */
export function dotAt(query: Float32Array, matrix: Float32Array, offset: number): number {
  const n = query.length;
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    a += query[i]! * matrix[offset + i]!;
    b += query[i + 1]! * matrix[offset + i + 1]!;
    c += query[i + 2]! * matrix[offset + i + 2]!;
    d += query[i + 3]! * matrix[offset + i + 3]!;
  }
  for (; i < n; i++) a += query[i]! * matrix[offset + i]!;
  return a + b + c + d;
}

/** The `capacity` best-scoring items seen, kept in a min-heap (the worst kept item on top, so most pushes cost O(1)). */
export class TopK<T> {
  private readonly scores: number[] = [];
  private readonly items: T[] = [];

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.scores.length;
  }

  /** The score an item must beat to get in (−Infinity until full). */
  get threshold(): number {
    return this.scores.length < this.capacity ? -Infinity : this.scores[0]!;
  }

  push(score: number, item: T): void {
    if (this.capacity <= 0) return;
    if (this.scores.length < this.capacity) {
      this.scores.push(score);
      this.items.push(item);
      this.siftUp(this.scores.length - 1);
    } else if (score > this.scores[0]!) {
      this.scores[0] = score;
      this.items[0] = item;
      this.siftDown(0);
    }
  }

  /** Best first; ties keep no particular order (callers break them). */
  sorted(): Array<{ score: number; item: T }> {
    return this.scores.map((score, i) => ({ score, item: this.items[i]! })).sort((x, y) => y.score - x.score);
  }

  private siftUp(index: number): void {
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.scores[parent]! <= this.scores[i]!) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(index: number): void {
    const n = this.scores.length;
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < n && this.scores[left]! < this.scores[smallest]!) smallest = left;
      if (right < n && this.scores[right]! < this.scores[smallest]!) smallest = right;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }

  private swap(a: number, b: number): void {
    [this.scores[a], this.scores[b]] = [this.scores[b]!, this.scores[a]!];
    [this.items[a], this.items[b]] = [this.items[b]!, this.items[a]!];
  }
}

/** Turns text into a vector of the deployment's dimension; swap in a model-backed one through the module. */
export interface Embedder {
  readonly name: string;
  /** Unit length, or undefined when the text holds nothing to embed (no letter or digit). */
  embed(text: string, dimension: number): Float32Array | undefined;
}

function fnv1a(text: string, seed: number): number {
  let hash = 0x811c9dc5 ^ seed;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Deterministic feature hashing over words, word pairs and character trigrams (signed, so collisions cancel on
 * average): no model to download, similar wording lands close, typos still share most trigrams.
 */
export class HashingEmbedder implements Embedder {
  readonly name = 'feature-hashing';

  embed(text: string, dimension: number): Float32Array | undefined {
    const words =
      text
        .toLowerCase()
        .normalize('NFKC')
        .match(/[\p{L}\p{N}]+/gu) ?? [];
    if (words.length === 0) return undefined;
    const vector = new Float32Array(dimension);
    const add = (feature: string, weight: number) => {
      const hash = fnv1a(feature, 0);
      const sign = fnv1a(feature, 0x9e3779b9) & 1 ? 1 : -1;
      vector[hash % dimension]! += sign * weight;
    };
    for (let i = 0; i < words.length; i++) {
      const word = words[i]!;
      add(`w:${word}`, 1);
      if (i + 1 < words.length) add(`b:${word} ${words[i + 1]}`, 0.7);
      const padded = `^${word}$`;
      for (let j = 0; j + 3 <= padded.length; j++) add(`c:${padded.slice(j, j + 3)}`, 0.4);
    }
    let norm = 0;
    for (const value of vector) norm += value * value;
    if (norm === 0) return undefined;
    const scale = 1 / Math.sqrt(norm);
    for (let i = 0; i < dimension; i++) vector[i]! *= scale;
    return vector;
  }
}
