import { buildSharingOrg, type SharingOrg } from '../helpers/sharing-org';
import { startTestApp, wsClient, wsExecute, type TestApp } from '../helpers/test-app';

type LeadOwner = keyof SharingOrg['leads'];
type Subject = keyof SharingOrg['users'];

const ALL: LeadOwner[] = ['vp', 'mgr', 'rep1', 'rep2', 'sup', 'outsider'];

describe('record-level sharing, clause by clause (DESIGN.md 1-6)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.stop());

  async function readable(org: SharingOrg, subject: Subject): Promise<LeadOwner[]> {
    const res = await t.gql(
      '{ leads(pageSize: 200, sortBy: "lastName", sortDirection: ASC) { total items { id lastName } } }',
      {},
      org.users[subject].token,
    );
    expect(res.errors).toBeUndefined();
    const items = res.data!.leads.items as Array<{ lastName: LeadOwner }>;
    expect(res.data!.leads.total).toBe(items.length);
    return items.map((item) => item.lastName).sort();
  }

  /** 'EDIT' when the update succeeds, 'READ' when refused as read-only, 'NONE' when hidden. */
  async function accessTo(
    org: SharingOrg,
    subject: Subject,
    owner: LeadOwner,
  ): Promise<'EDIT' | 'READ' | 'NONE'> {
    const res = await t.gql(
      'mutation($id: ID!) { updateLead(id: $id, input: { description: "touched" }) { id } }',
      { id: org.leads[owner] },
      org.users[subject].token,
    );
    if (!res.errors) return 'EDIT';
    const code = res.errors[0]!.extensions?.code;
    if (code === 'FORBIDDEN') return 'READ';
    expect(code).toBe('NOT_FOUND');
    return 'NONE';
  }

  async function admin(org: SharingOrg, mutation: string, variables: Record<string, unknown> = {}) {
    const res = await t.gql(mutation, variables, org.users.admin.token);
    expect(res.errors).toBeUndefined();
    return res.data!;
  }

  const rule = (input: string) => `mutation { createSharingRule(input: ${input}) { id } }`;

  it('1. a company admin reads and edits every record', async () => {
    const org = await buildSharingOrg(t.app);
    expect(await readable(org, 'admin')).toEqual([...ALL].sort());
    expect(await accessTo(org, 'admin', 'rep1')).toBe('EDIT');
  });

  it('2. PUBLIC_READ lets everyone read but not edit; PUBLIC_READ_WRITE lets everyone edit', async () => {
    const org = await buildSharingOrg(t.app);
    expect(await readable(org, 'sup')).toEqual(['sup']);
    await admin(
      org,
      'mutation { setOrgWideDefault(objectType: LEAD, accessLevel: PUBLIC_READ) { accessLevel } }',
    );
    expect(await readable(org, 'sup')).toEqual([...ALL].sort());
    expect(await accessTo(org, 'sup', 'rep1')).toBe('READ');
    await admin(
      org,
      'mutation { setOrgWideDefault(objectType: LEAD, accessLevel: PUBLIC_READ_WRITE) { accessLevel } }',
    );
    expect(await accessTo(org, 'sup', 'rep1')).toBe('EDIT');
    // The default is per record type: deals stay private.
    await admin(
      org,
      'mutation { setOrgWideDefault(objectType: DEAL, accessLevel: PRIVATE) { accessLevel } }',
    );
    expect(await readable(org, 'outsider')).toEqual([...ALL].sort());
  });

  it('3. owners and everyone above them in the role hierarchy read and edit; peers and subordinates do not', async () => {
    const org = await buildSharingOrg(t.app);
    expect(await readable(org, 'vp')).toEqual(['mgr', 'rep1', 'rep2', 'vp']);
    expect(await readable(org, 'mgr')).toEqual(['mgr', 'rep1', 'rep2']);
    expect(await readable(org, 'rep1')).toEqual(['rep1']);
    expect(await readable(org, 'outsider')).toEqual(['outsider']);
    expect(await accessTo(org, 'vp', 'rep2')).toBe('EDIT');
    expect(await accessTo(org, 'rep1', 'rep2')).toBe('NONE');
    expect(await accessTo(org, 'rep1', 'mgr')).toBe('NONE');
  });

  it('4a. owner rule, source ROLE -> target USER, READ: read but not edit', async () => {
    const org = await buildSharingOrg(t.app);
    await admin(
      org,
      rule(
        `{ objectType: LEAD, name: "reps to sup", ruleType: OWNER, source: { type: ROLE, id: "${org.roles.rep}" }, target: { type: USER, id: "${org.users.sup.id}" }, accessLevel: READ }`,
      ),
    );
    expect(await readable(org, 'sup')).toEqual(['rep1', 'rep2', 'sup']);
    expect(await accessTo(org, 'sup', 'rep1')).toBe('READ');
    expect(await readable(org, 'outsider')).toEqual(['outsider']);
  });

  it('4b. owner rule, source ROLE_AND_SUBORDINATES -> target ROLE, EDIT', async () => {
    const org = await buildSharingOrg(t.app);
    await admin(
      org,
      rule(
        `{ objectType: LEAD, name: "sales to support", ruleType: OWNER, source: { type: ROLE_AND_SUBORDINATES, id: "${org.roles.manager}" }, target: { type: ROLE, id: "${org.roles.support}" }, accessLevel: EDIT }`,
      ),
    );
    expect(await readable(org, 'sup')).toEqual(['mgr', 'rep1', 'rep2', 'sup']);
    expect(await accessTo(org, 'sup', 'rep2')).toBe('EDIT');
    expect(await accessTo(org, 'sup', 'vp')).toBe('NONE');
  });

  it('4c. owner rule, source GROUP (role subtree member) -> target GROUP reached through a nested group', async () => {
    const org = await buildSharingOrg(t.app);
    await admin(
      org,
      rule(
        `{ objectType: LEAD, name: "g3 to g2", ruleType: OWNER, source: { type: GROUP, id: "${org.groups.g3}" }, target: { type: GROUP, id: "${org.groups.g2}" }, accessLevel: READ }`,
      ),
    );
    expect(await readable(org, 'sup')).toEqual(['mgr', 'rep1', 'rep2', 'sup']);
    expect(await readable(org, 'vp')).toEqual(['mgr', 'rep1', 'rep2', 'vp']);
  });

  it('4d. owner rule, target ROLE_AND_SUBORDINATES reaches users below the target role', async () => {
    const org = await buildSharingOrg(t.app);
    await admin(
      org,
      rule(
        `{ objectType: LEAD, name: "support to sales", ruleType: OWNER, source: { type: ROLE, id: "${org.roles.support}" }, target: { type: ROLE_AND_SUBORDINATES, id: "${org.roles.manager}" }, accessLevel: READ }`,
      ),
    );
    expect(await readable(org, 'rep1')).toEqual(['rep1', 'sup']);
    expect(await readable(org, 'mgr')).toEqual(['mgr', 'rep1', 'rep2', 'sup']);
    expect(await readable(org, 'vp')).toEqual(['mgr', 'rep1', 'rep2', 'vp']);
  });

  it('5. criteria rule: records matching every condition are shared with the target', async () => {
    const org = await buildSharingOrg(t.app);
    await admin(
      org,
      rule(
        `{ objectType: LEAD, name: "qualified", ruleType: CRITERIA, criteria: [{ field: "status", operator: eq, value: "QUALIFIED" }], target: { type: USER, id: "${org.users.sup.id}" }, accessLevel: READ }`,
      ),
    );
    expect(await readable(org, 'sup')).toEqual(['mgr', 'rep1', 'sup']);
    expect(await accessTo(org, 'sup', 'rep1')).toBe('READ');
    await admin(
      org,
      rule(
        `{ objectType: LEAD, name: "hot", ruleType: CRITERIA, criteria: [{ field: "score", operator: gte, value: 50 }, { field: "status", operator: in, value: ["NEW", "CONTACTED"] }], target: { type: GROUP, id: "${org.groups.g2}" }, accessLevel: EDIT }`,
      ),
    );
    expect(await readable(org, 'sup')).toEqual(['mgr', 'rep1', 'rep2', 'sup']);
    expect(await accessTo(org, 'sup', 'rep2')).toBe('EDIT');
    // Readable through a criteria rule is still not a licence to share: FORBIDDEN, not NOT_FOUND.
    const share = await t.gql(
      `mutation { shareRecord(input: { objectType: LEAD, recordId: "${org.leads.rep1}", granteeType: USER, granteeId: "${org.users.outsider.id}" }) { id } }`,
      {},
      org.users.sup.token,
    );
    expect(share.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    // The single-record check agrees with the list predicate.
    const single = await t.gql(
      'query($id: ID!) { lead(id: $id) { id } }',
      { id: org.leads.rep2 },
      org.users.sup.token,
    );
    expect(single.data!.lead).toEqual({ id: org.leads.rep2 });
  });

  it('6. manual shares to a user (READ) and to a nested group (EDIT); unsharing takes access away', async () => {
    const org = await buildSharingOrg(t.app);
    const share = (
      owner: LeadOwner,
      grantee: string,
      type: 'USER' | 'GROUP',
      access: 'READ' | 'EDIT',
      token = org.users.admin.token,
    ) =>
      t.gql(
        `mutation { shareRecord(input: { objectType: LEAD, recordId: "${org.leads[owner]}", granteeType: ${type}, granteeId: "${grantee}", accessLevel: ${access} }) { id accessLevel } }`,
        {},
        token,
      );
    expect(
      (await share('rep1', org.users.sup.id, 'USER', 'READ', org.users.rep1.token)).errors,
    ).toBeUndefined();
    expect(await readable(org, 'sup')).toEqual(['rep1', 'sup']);
    expect(await accessTo(org, 'sup', 'rep1')).toBe('READ');
    expect((await share('rep2', org.groups.g2, 'GROUP', 'EDIT', org.users.mgr.token)).errors).toBeUndefined();
    expect(await accessTo(org, 'sup', 'rep2')).toBe('EDIT');
    // Only the owner, their superiors and admins may share.
    const refused = await share('rep2', org.users.outsider.id, 'USER', 'READ', org.users.rep1.token);
    expect(refused.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const readOnly = await share('rep1', org.users.outsider.id, 'USER', 'READ', org.users.sup.token);
    expect(readOnly.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    const unshare = await t.gql(
      `mutation { unshareRecord(input: { objectType: LEAD, recordId: "${org.leads.rep1}", granteeType: USER, granteeId: "${org.users.sup.id}" }) }`,
      {},
      org.users.rep1.token,
    );
    expect(unshare.data!.unshareRecord).toBe(true);
    expect(await readable(org, 'sup')).toEqual(['rep2', 'sup']);
  });

  it('rules for one record type do not leak into another', async () => {
    const org = await buildSharingOrg(t.app);
    await admin(
      org,
      rule(
        `{ objectType: DEAL, name: "deals only", ruleType: OWNER, source: { type: ROLE, id: "${org.roles.rep}" }, target: { type: USER, id: "${org.users.sup.id}" }, accessLevel: EDIT }`,
      ),
    );
    expect(await readable(org, 'sup')).toEqual(['sup']);
  });

  it('two users with different visibility querying in parallel each get their own view', async () => {
    const org = await buildSharingOrg(t.app);
    await admin(
      org,
      rule(
        `{ objectType: LEAD, name: "reps to sup", ruleType: OWNER, source: { type: ROLE, id: "${org.roles.rep}" }, target: { type: USER, id: "${org.users.sup.id}" }, accessLevel: READ }`,
      ),
    );
    const subjects: Subject[] = ['sup', 'rep1', 'vp', 'outsider'];
    const expected: Record<string, LeadOwner[]> = {
      sup: ['rep1', 'rep2', 'sup'],
      rep1: ['rep1'],
      vp: ['mgr', 'rep1', 'rep2', 'vp'],
      outsider: ['outsider'],
    };
    const runs = await Promise.all(
      Array.from({ length: 24 }, (_, i) => subjects[i % subjects.length]!).map(
        async (s) => [s, await readable(org, s)] as const,
      ),
    );
    for (const [subject, seen] of runs) expect(seen).toEqual(expected[subject]);
  });

  it('a demoted admin loses admin rights at once, also on an open WebSocket', async () => {
    const org = await buildSharingOrg(t.app);
    const promote = await t.gql(
      `mutation { updateUserAccess(userId: "${org.users.vp.id}", input: { isAdmin: true }) { isAdmin } }`,
      {},
      org.users.admin.token,
    );
    expect(promote.data!.updateUserAccess).toEqual({ isAdmin: true });
    const socket = wsClient(t.url, `Bearer ${org.users.vp.token}`, { keepOpen: true });
    try {
      expect((await wsExecute(socket, '{ sharingRules(objectType: LEAD) { id } }')).errors).toBeUndefined();
      await t.gql(
        `mutation { updateUserAccess(userId: "${org.users.vp.id}", input: { isAdmin: false }) { isAdmin } }`,
        {},
        org.users.admin.token,
      );
      const after = await wsExecute(socket, '{ me { isAdmin } sharingRules(objectType: LEAD) { id } }');
      expect(after.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      const me = await wsExecute(socket, '{ me { isAdmin } }');
      expect(me.data).toEqual({ me: { isAdmin: false } });
      const escalate = await wsExecute(
        socket,
        `mutation { updateUserAccess(userId: "${org.users.vp.id}", input: { isAdmin: true }) { isAdmin } }`,
      );
      expect(escalate.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    } finally {
      await socket.dispose();
    }
    expect(await readable(org, 'vp')).toEqual(['mgr', 'rep1', 'rep2', 'vp']);
  });

  it('only admins manage rules and defaults', async () => {
    const org = await buildSharingOrg(t.app);
    const res = await t.gql(
      'mutation { setOrgWideDefault(objectType: LEAD, accessLevel: PUBLIC_READ) { accessLevel } }',
      {},
      org.users.vp.token,
    );
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const list = await t.gql('{ sharingRules(objectType: LEAD) { id } }', {}, org.users.vp.token);
    expect(list.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
