// Dense bitsets over row numbers (32 rows a word): the counting index's sets of rows.

export function popcount(words: Uint32Array): number {
  let total = 0;
  for (let i = 0; i < words.length; i++) {
    let v = words[i]!;
    v -= (v >>> 1) & 0x55555555;
    v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
    total += (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) | 0;
  }
  return total;
}

/** `target &= other`, where `other` may be shorter (rows past its end are absent). */
export function andInto(target: Uint32Array, other: Uint32Array): Uint32Array {
  const n = Math.min(target.length, other.length);
  for (let i = 0; i < n; i++) target[i]! &= other[i]!;
  target.fill(0, n);
  return target;
}

export function orInto(target: Uint32Array, other: Uint32Array): Uint32Array {
  const n = Math.min(target.length, other.length);
  for (let i = 0; i < n; i++) target[i]! |= other[i]!;
  return target;
}

export function forEachRow(words: Uint32Array, visit: (row: number) => void): void {
  for (let w = 0; w < words.length; w++) {
    let word = words[w]!;
    while (word !== 0) {
      const lowest = word & -word;
      visit((w << 5) + 31 - Math.clz32(lowest));
      word ^= lowest;
    }
  }
}

// The tallies below walk a bitset's rows inline (no callback per row): they are the hot loops of a search.

/** Adds each row of `words` to `tally` at its code + 1 (slot 0 counts rows without a value, code -1). */
export function tallyCodes(words: Uint32Array, codes: Int32Array, tally: Int32Array): Int32Array {
  for (let w = 0; w < words.length; w++) {
    let word = words[w]!;
    const base = w << 5;
    if (word === 0xffffffff) {
      // A full word (most of them when nearly every row matches): no bit to find.
      for (let row = base; row < base + 32; row++) tally[codes[row]! + 1]!++;
      continue;
    }
    while (word !== 0) {
      const lowest = word & -word;
      tally[codes[base + 31 - Math.clz32(lowest)]! + 1]!++;
      word ^= lowest;
    }
  }
  return tally;
}
