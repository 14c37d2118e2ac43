// What V8 (64-bit, without pointer compression, as Node ships) spends on the objects a counting index holds beside
// its typed arrays' bytes: estimates, checked against heap growth in the search bench (see README).

/** A typed array's own objects (JSTypedArray, JSArrayBuffer and its backing-store record). */
const TYPED_ARRAY_OVERHEAD = 160;

/** One entry of a Map: key, value and chain slots (8 bytes each), its share of the buckets, and ~1.5x growth slack. */
export const MAP_ENTRY_BYTES = 42;

/** One element of a JavaScript array of objects: an 8-byte pointer, with growth slack. */
export const ARRAY_SLOT_BYTES = 10;

/** A typed array or Buffer: its bytes and its objects. */
export function typedBytes(array: ArrayBufferView): number {
  return array.byteLength + TYPED_ARRAY_OVERHEAD;
}

/** A flat string: a 16-byte header, then 1 byte a character when all are Latin-1 (else 2), rounded up to 8. */
export function stringBytes(value: string): number {
  // eslint-disable-next-line no-control-regex
  const perChar = /^[\u0000-\u00ff]*$/.test(value) ? 1 : 2;
  return (16 + value.length * perChar + 7) & ~7;
}
