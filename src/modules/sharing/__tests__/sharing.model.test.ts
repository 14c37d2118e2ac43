import {
  ancestorsOrSelf,
  descendantsOf,
  groupsContaining,
  usersInGroup,
  type CompanySharingModel,
} from '../sharing.model';

/** CEO > VP > Manager > Rep; CEO > Support. g1 = {sup}, g2 = {group g1}, g3 = {Manager and below}, g4 <-> g5 cycle. */
const model: CompanySharingModel = {
  orgWideDefaults: {},
  roleParents: { ceo: null, vp: 'ceo', mgr: 'vp', rep: 'mgr', sup: 'ceo' },
  users: {
    alice: { roleId: 'ceo', isAdmin: true },
    victor: { roleId: 'vp', isAdmin: false },
    mona: { roleId: 'mgr', isAdmin: false },
    rita: { roleId: 'rep', isAdmin: false },
    sam: { roleId: 'sup', isAdmin: false },
    otto: { roleId: null, isAdmin: false },
  },
  groupMembers: {
    g1: [{ type: 'USER', id: 'sam' }],
    g2: [{ type: 'GROUP', id: 'g1' }],
    g3: [{ type: 'ROLE_AND_SUBORDINATES', id: 'mgr' }],
    g4: [
      { type: 'GROUP', id: 'g5' },
      { type: 'USER', id: 'otto' },
    ],
    g5: [
      { type: 'GROUP', id: 'g4' },
      { type: 'ROLE', id: 'vp' },
    ],
  },
};

describe('sharing model', () => {
  it('walks the role tree down (subordinates) and up (the role line)', () => {
    const below = descendantsOf(model.roleParents);
    expect([...below('vp')].sort()).toEqual(['mgr', 'rep']);
    expect([...below('ceo')].sort()).toEqual(['mgr', 'rep', 'sup', 'vp']);
    expect(below('rep').size).toBe(0);
    expect([...ancestorsOrSelf(model.roleParents, 'rep')]).toEqual(['rep', 'mgr', 'vp', 'ceo']);
    expect(ancestorsOrSelf(model.roleParents, null).size).toBe(0);
  });

  it('survives a cycle in a corrupted role tree', () => {
    const cyclic = { a: 'b', b: 'a' };
    expect([...ancestorsOrSelf(cyclic, 'a')].sort()).toEqual(['a', 'b']);
    expect([...descendantsOf(cyclic)('a')].sort()).toEqual(['a', 'b']);
  });

  it('finds the groups containing a user through users, role subtrees and nested groups', () => {
    expect([...groupsContaining(model, 'sam')].sort()).toEqual(['g1', 'g2']);
    expect([...groupsContaining(model, 'rita')].sort()).toEqual(['g3']); // rep is below mgr
    expect([...groupsContaining(model, 'victor')].sort()).toEqual(['g4', 'g5']); // role member of g5, g4 contains g5
    expect([...groupsContaining(model, 'alice')]).toEqual([]);
  });

  it('expands a group to its users, cycles included, and agrees with groupsContaining', () => {
    const below = descendantsOf(model.roleParents);
    expect([...usersInGroup(model, 'g2', below)]).toEqual(['sam']);
    expect([...usersInGroup(model, 'g3', below)].sort()).toEqual(['mona', 'rita']);
    expect([...usersInGroup(model, 'g4', below)].sort()).toEqual(['otto', 'victor']);
    for (const group of Object.keys(model.groupMembers)) {
      for (const user of Object.keys(model.users)) {
        expect(usersInGroup(model, group, below).has(user)).toBe(groupsContaining(model, user).has(group));
      }
    }
  });
});
