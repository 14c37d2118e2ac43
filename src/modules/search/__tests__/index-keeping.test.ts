import { randomUUID } from 'node:crypto';
import { createLogger } from '../../../platform/logging/logger';
import { CountingIndex } from '../counting-index';
import type { EvictionReason } from '../index-budget';
import { IndexKeeping, IndexOverBudget } from '../index-keeping';

interface Entry {
  index?: CountingIndex;
  building?: Promise<CountingIndex>;
}

/** A company's lead index of `rows` records, as a build leaves it. */
function leadIndex(companyId: string, rows: number): CountingIndex {
  const index = new CountingIndex(companyId, 'LEAD', rows);
  for (let i = 0; i < rows; i++)
    index.upsert(
      { id: randomUUID(), status: 'NEW', lastName: `Name ${i}`, __lexemes: `ada name ${i}` },
      false,
    );
  index.text.finish();
  return index;
}

function setUp(maxBytes: number) {
  const entries = new Map<string, Entry>();
  const logger = createLogger({ level: 'silent' });
  const info = jest.spyOn(logger, 'info');
  const warn = jest.spyOn(logger, 'warn');
  const evictions: EvictionReason[] = [];
  const keeping = new IndexKeeping(
    entries,
    logger,
    { evictions: (reason) => evictions.push(reason) },
    maxBytes,
  );
  /** Builds `key`'s index the way the registry does: reserve, load, then hold what it measures. */
  const build = (key: string, rows: number): CountingIndex => {
    const entry: Entry = entries.get(key) ?? {};
    entries.set(key, entry);
    const index = new CountingIndex(key.split(':')[0]!, 'LEAD', rows);
    keeping.reserve(key, index, rows);
    const built = leadIndex(key.split(':')[0]!, rows);
    entry.index = built;
    keeping.built(key, entry, built);
    return built;
  };
  return { entries, keeping, info, warn, evictions, build };
}

describe('IndexKeeping: the registry within its byte budget (real indexes, no database)', () => {
  const size = leadIndex('probe', 2000).bytes();

  it('evicts the least recently used whole index to make room for a build, and logs it once', () => {
    const { entries, keeping, info, evictions, build } = setUp(size * 2.5);
    const a = build('a:LEAD', 2000);
    build('b:LEAD', 2000);
    keeping.touch('a:LEAD');
    build('c:LEAD', 2000);
    expect([...entries.keys()].sort()).toEqual(['a:LEAD', 'c:LEAD']);
    expect(entries.get('a:LEAD')!.index).toBe(a);
    expect(evictions).toEqual(['budget']);
    expect(info).toHaveBeenCalledWith(
      { companyId: 'b', type: 'LEAD', bytes: expect.any(Number), reason: 'budget' },
      'search index evicted',
    );
    expect(keeping.memory()).toEqual({
      bytes: expect.any(Number),
      maxBytes: size * 2.5,
      held: 2,
      building: 0,
    });
    expect(keeping.memory().bytes).toBeLessThanOrEqual(size * 2.5);
  });

  it('refuses a build expected over the whole budget before it loads, and says so once', () => {
    const { entries, keeping, warn, build } = setUp(size / 2);
    expect(() => build('a:LEAD', 2000)).toThrow(IndexOverBudget);
    expect(keeping.tooLarge('a:LEAD')).toBe(true);
    expect(() => build('a:LEAD', 2000)).toThrow(IndexOverBudget);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(entries.get('a:LEAD')?.index).toBeUndefined();
    expect(keeping.memory().bytes).toBe(0);
  });

  it('measures a held index again when it grows: others go first, and one grown past the budget alone is dropped', () => {
    // Room for both with the first-build reservation (the default bytes per record, above this data's).
    const { entries, keeping, evictions, build } = setUp(size * 2.5);
    const a = build('a:LEAD', 2000);
    build('b:LEAD', 2000);
    // Criteria bitsets grow `a` (a search's rule sets): `b` makes room.
    let rule = 0;
    while (a.bytes() < size * 1.6) a.setCriteria(`rule ${rule++}`, [], []);
    keeping.measure('a:LEAD');
    expect([...entries.keys()]).toEqual(['a:LEAD']);
    expect(evictions).toEqual(['budget']);
    while (a.bytes() <= size * 2.5) a.setCriteria(`rule ${rule++}`, [], []);
    keeping.measure('a:LEAD');
    expect(entries.size).toBe(0);
    expect(evictions).toEqual(['budget', 'oversized']);
    expect(keeping.tooLarge('a:LEAD')).toBe(true);
    expect(keeping.memory()).toEqual({ bytes: 0, maxBytes: size * 2.5, held: 0, building: 0 });
  });

  it('counts a build in flight, never evicts it, and gives its reservation back when it fails', () => {
    const { entries, keeping, build } = setUp(size * 1.5);
    const entry: Entry = { building: new Promise(() => undefined) };
    entries.set('x:LEAD', entry);
    keeping.reserve('x:LEAD', new CountingIndex('x', 'LEAD', 2000), 2000);
    expect(keeping.memory().building).toBe(1);
    // No room beside the build in flight: refused, evicting nothing.
    expect(() => build('a:LEAD', 2000)).toThrow(expect.objectContaining({ why: 'full' }));
    keeping.failed('x:LEAD', entry);
    expect(keeping.memory()).toEqual({ bytes: 0, maxBytes: size * 1.5, held: 0, building: 0 });
    build('a:LEAD', 2000);
    expect(keeping.memory().held).toBe(1);
  });
});
