import { buildSharingOrg, type SharingOrg } from '../helpers/sharing-org';
import { startTestApp, type TestApp } from '../helpers/test-app';

/** The key result caches use: equal only for users who see the same records, new whenever a user's view changes. */
describe("sharing's visibility key", () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.stop());

  const principal = async (org: SharingOrg, who: keyof SharingOrg['users']) =>
    t.app.services.identity.authenticate(org.users[who].token);
  const key = async (org: SharingOrg, who: keyof SharingOrg['users'], type: 'LEAD' | 'DEAL' = 'LEAD') =>
    t.app.services.visibility.visibilityKey(await principal(org, who), type);
  const admin = async (org: SharingOrg, mutation: string) => {
    const res = await t.gql(mutation, {}, org.users.admin.token);
    expect(res.errors).toBeUndefined();
  };

  it('is short, stable across calls, per record type, and differs between users with different views', async () => {
    const org = await buildSharingOrg(t.app);
    const first = await key(org, 'rep1');
    expect(first).toMatch(/^LEAD:[A-Za-z0-9_-]{16}$/);
    expect(await key(org, 'rep1')).toBe(first);
    expect(await key(org, 'rep1', 'DEAL')).not.toBe(first);
    const keys = await Promise.all(
      (['vp', 'mgr', 'rep1', 'rep2', 'sup', 'outsider'] as const).map((u) => key(org, u)),
    );
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('is shared by users who see the same records, and never across companies', async () => {
    const org = await buildSharingOrg(t.app);
    const other = await buildSharingOrg(t.app);
    await admin(
      org,
      'mutation { setOrgWideDefault(objectType: LEAD, accessLevel: PUBLIC_READ) { accessLevel } }',
    );
    const everyone = await Promise.all(
      (['admin', 'vp', 'rep1', 'outsider'] as const).map((u) => key(org, u)),
    );
    expect(new Set(everyone).size).toBe(1);
    expect(await key(other, 'admin')).not.toBe(everyone[0]);
  });

  it('changes with every change to what the user sees: rules, shares and unshares, role moves', async () => {
    const org = await buildSharingOrg(t.app);
    const seen = new Set([await key(org, 'sup')]);
    const expectNew = async () => {
      const next = await key(org, 'sup');
      expect(seen.has(next)).toBe(false);
      seen.add(next);
    };
    await admin(
      org,
      `mutation { createSharingRule(input: { objectType: LEAD, name: "r", ruleType: OWNER, source: { type: ROLE, id: "${org.roles.rep}" }, target: { type: USER, id: "${org.users.sup.id}" } }) { id } }`,
    );
    await expectNew();
    const beforeShare = await key(org, 'sup');
    await admin(
      org,
      `mutation { shareRecord(input: { objectType: LEAD, recordId: "${org.leads.vp}", granteeType: USER, granteeId: "${org.users.sup.id}" }) { id } }`,
    );
    await expectNew();
    const shared = await key(org, 'sup');
    await admin(
      org,
      `mutation { unshareRecord(input: { objectType: LEAD, recordId: "${org.leads.vp}", granteeType: USER, granteeId: "${org.users.sup.id}" }) }`,
    );
    // Back to the view before the share: the same records, so that key again; never the shared view's key.
    expect(await key(org, 'sup')).not.toBe(shared);
    expect(await key(org, 'sup')).toBe(beforeShare);
    await admin(
      org,
      `mutation { updateRole(id: "${org.roles.vp}", input: { name: "VP", parentId: "${org.roles.support}" }) { id } }`,
    );
    await expectNew();
  });
});
