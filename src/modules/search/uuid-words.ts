// A record id as four unsigned words, the counting index's form of a UUID.

/** Parses a UUID's 32 hex digits into four unsigned words, in byte order (so word order is Postgres's uuid order). */
export function uuidWords(id: string, into: Uint32Array, at: number): boolean {
  if (id.length !== 36) return false;
  const w0 = parseInt(id.slice(0, 8), 16);
  const w1 = parseInt(id.slice(9, 13) + id.slice(14, 18), 16);
  const w2 = parseInt(id.slice(19, 23) + id.slice(24, 28), 16);
  const w3 = parseInt(id.slice(28, 36), 16);
  if (Number.isNaN(w0 + w1 + w2 + w3)) return false;
  into[at] = w0;
  into[at + 1] = w1;
  into[at + 2] = w2;
  into[at + 3] = w3;
  return true;
}

export function hex8(word: number): string {
  return word.toString(16).padStart(8, '0');
}
