import { covers, versionSlots } from '../data-version';

describe('data versions: vectors of version slot counts', () => {
  it('reads each slot count, and nothing from the version before any write', () => {
    expect([...versionSlots('0:12,1:3,4:7')]).toEqual([
      [0, 12],
      [1, 3],
      [4, 7],
    ]);
    expect(versionSlots('').size).toBe(0);
  });

  it('covers an older version only when every slot is at least as far, a missing slot counting 0', () => {
    expect(covers('0:5,1:2', '0:5,1:2')).toBe(true);
    expect(covers('0:6,1:2', '0:5,1:2')).toBe(true);
    expect(covers('0:5,1:2,2:1', '0:5,1:2')).toBe(true);
    expect(covers('0:5,1:2', '')).toBe(true);
    expect(covers('', '0:1')).toBe(false);
    // Ahead in one slot, behind in another (a replica behind the server an index last caught up on): neither.
    expect(covers('0:6,1:1', '0:5,1:2')).toBe(false);
    expect(covers('0:5,1:2', '0:6,1:1')).toBe(false);
    expect(covers('0:5', '0:5,1:1')).toBe(false);
  });
});
