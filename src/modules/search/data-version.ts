/**
 * A (company, record type)'s data version: its version slots' counts, `slot:count` by slot, comma-separated ('' before
 * its first write). Equal versions mean equal data on every server (migrations/1765500000000-search-version-slots.ts
 * says why), so a version keys cached answers as it is.
 */
export type DataVersion = string;

/** Each slot's count in `version`. */
export function versionSlots(version: DataVersion): Map<number, number> {
  const slots = new Map<number, number>();
  if (version === '') return slots;
  for (const part of version.split(',')) {
    const [slot, count] = part.split(':');
    slots.set(Number(slot), Number(count));
  }
  return slots;
}

/** True when data at `newer` holds every change data at `older` holds: each slot's count is at least as high. */
export function covers(newer: DataVersion, older: DataVersion): boolean {
  if (newer === older) return true;
  const counts = versionSlots(newer);
  for (const [slot, count] of versionSlots(older)) if ((counts.get(slot) ?? 0) < count) return false;
  return true;
}
