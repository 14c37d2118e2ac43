import { IndexBudget } from '../index-budget';

describe('IndexBudget: least recently used eviction of whole indexes within a byte budget', () => {
  it('evicts the least recently used first, a use making a key the most recent', () => {
    const budget = new IndexBudget(100);
    for (const key of ['a', 'b', 'c']) expect(budget.hold(key, 30)).toEqual({ admitted: true, evicted: [] });
    budget.touch('a');
    expect(budget.hold('d', 30)).toEqual({ admitted: true, evicted: [{ key: 'b', bytes: 30 }] });
    expect(budget.hold('e', 50)).toEqual({
      admitted: true,
      evicted: [
        { key: 'c', bytes: 30 },
        { key: 'a', bytes: 30 },
      ],
    });
    expect(budget.bytes).toBe(80);
    expect(budget.counts()).toEqual({ held: 2, building: 0 });
  });

  it('measures a held index again in place: growing past the budget evicts others, not itself', () => {
    const budget = new IndexBudget(100);
    budget.hold('a', 40);
    budget.hold('b', 40);
    expect(budget.hold('a', 70)).toEqual({ admitted: true, evicted: [{ key: 'b', bytes: 40 }] });
    expect(budget.bytes).toBe(70);
    expect(budget.heldBytes('a')).toBe(70);
  });

  it('refuses, evicting nothing, an index larger than the whole budget', () => {
    const budget = new IndexBudget(100);
    budget.hold('a', 60);
    expect(budget.reserve('big', 101)).toEqual({ admitted: false, why: 'oversized' });
    expect(budget.hold('big', 101)).toEqual({ admitted: false, why: 'oversized' });
    expect(budget.bytes).toBe(60);
    expect(budget.heldBytes('a')).toBe(60);
    // Held, then grown past the budget: the key holds nothing any more.
    expect(budget.hold('a', 150)).toEqual({ admitted: false, why: 'oversized' });
    expect(budget.bytes).toBe(0);
  });

  it('counts builds in flight and never evicts them; what cannot make room evicts nothing', () => {
    const budget = new IndexBudget(100);
    expect(budget.reserve('x', 50)).toEqual({ admitted: true, evicted: [] });
    budget.hold('a', 30);
    expect(budget.counts()).toEqual({ held: 1, building: 1 });
    // 50 building + 30 held + 40 > 100: only `a` may go, and that is enough.
    expect(budget.reserve('y', 40)).toEqual({ admitted: true, evicted: [{ key: 'a', bytes: 30 }] });
    // Builds hold 90: 20 more cannot fit whatever is evicted, and the held 5 stays.
    budget.hold('b', 5);
    expect(budget.reserve('z', 20)).toEqual({ admitted: false, why: 'full' });
    expect(budget.heldBytes('b')).toBe(5);
    expect(budget.bytes).toBe(95);
    // A build done: its reservation becomes its measured size.
    budget.cancel('x');
    expect(budget.hold('x', 45)).toEqual({ admitted: true, evicted: [] });
    expect(budget.bytes).toBe(90);
    budget.cancel('y');
    expect(budget.bytes).toBe(50);
  });

  it('a rebuild counts beside the index it replaces, which keeps answering meanwhile', () => {
    const budget = new IndexBudget(100);
    budget.hold('a', 40);
    budget.hold('b', 30);
    expect(budget.reserve('a', 45)).toEqual({ admitted: true, evicted: [{ key: 'b', bytes: 30 }] });
    expect(budget.bytes).toBe(85);
    budget.cancel('a');
    expect(budget.hold('a', 44)).toEqual({ admitted: true, evicted: [] });
    expect(budget.bytes).toBe(44);
    expect(budget.release('a')).toBe(44);
    expect(budget.bytes).toBe(0);
    expect(budget.counts()).toEqual({ held: 0, building: 0 });
  });

  it('never holds more than the budget, whatever the sequence (random operations, fixed seed)', () => {
    let seed = 20261207;
    const random = () => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed / 2 ** 32;
    };
    const budget = new IndexBudget(1000);
    const held = new Map<string, number>();
    const building = new Map<string, number>();
    const evict = (key: string) => {
      // A build in flight is never evicted.
      expect(building.has(key)).toBe(false);
      held.delete(key);
    };
    for (let step = 0; step < 5000; step++) {
      const key = `k${Math.floor(random() * 12)}`;
      const bytes = 1 + Math.floor(random() * 600);
      const op = random();
      if (op < 0.35) {
        const result = budget.hold(key, bytes);
        if (result.admitted) held.set(key, bytes);
        else held.delete(key);
        if (result.admitted) for (const { key: gone } of result.evicted) evict(gone);
      } else if (op < 0.6 && !building.has(key)) {
        const result = budget.reserve(key, bytes);
        if (result.admitted) {
          building.set(key, bytes);
          for (const { key: gone } of result.evicted) evict(gone);
        }
      } else if (op < 0.8) {
        budget.cancel(key);
        building.delete(key);
      } else if (op < 0.9) {
        budget.release(key);
        held.delete(key);
      } else budget.touch(key);
      const sum = [...held.values(), ...building.values()].reduce((a, b) => a + b, 0);
      expect({ step, bytes: budget.bytes }).toEqual({ step, bytes: sum });
      expect(budget.bytes).toBeLessThanOrEqual(1000);
      expect(budget.counts().building).toBe(building.size);
    }
  });
});
