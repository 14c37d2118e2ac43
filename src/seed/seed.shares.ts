import { SeededRandom } from './random';

/** Keeps every share at or below `cap` (so a fixed "largest" company stays the largest), moving the excess down. */
function capped(counts: number[], cap: number): number[] {
  let excess = 0;
  const result = counts.map((count) => {
    excess += Math.max(0, count - cap);
    return Math.min(count, cap);
  });
  for (let i = result.length - 1; excess > 0 && i >= 0; i = i === 0 ? result.length - 1 : i - 1) {
    if (result.every((count) => count >= cap)) break;
    if (result[i]! < cap) {
      result[i]!++;
      excess--;
    }
  }
  return result;
}

/** Splits `total` over companies by Zipf weights; every company gets at least `minimum`. */
export function allocate(total: number, companies: number, minimum: number, first?: number): number[] {
  if (first !== undefined && companies > 1)
    return [first, ...capped(allocate(Math.max(0, total - first), companies - 1, minimum), first)];
  const weights = SeededRandom.zipfTable(companies, 0.9);
  const counts: number[] = [];
  let previous = 0;
  let assigned = 0;
  for (let i = 0; i < companies; i++) {
    const share = weights[i]! - previous;
    previous = weights[i]!;
    const count = Math.max(minimum, Math.floor(share * total));
    counts.push(count);
    assigned += count;
  }
  counts[0]! += Math.max(0, total - assigned);
  return counts;
}
