import { buildSharingOrg, type SharingOrg } from '../helpers/sharing-org';
import { startTestApp, type TestApp } from '../helpers/test-app';

/** What an admin client needs to manage the sharing model and read it back. */
describe('directory and sharing admin API', () => {
  let t: TestApp;
  let org: SharingOrg;

  beforeAll(async () => {
    t = await startTestApp();
    org = await buildSharingOrg(t.app);
  });
  afterAll(() => t.stop());

  const asAdmin = (query: string) => t.gql(query, {}, org.users.admin.token);

  it('reads back users, the role tree (parents first), groups with members, defaults and shares', async () => {
    const users = await asAdmin('{ users { id email isAdmin } }');
    expect((users.data?.users as unknown[]).length).toBe(Object.keys(org.users).length);

    const roles = (await asAdmin('{ roles { id name parentId } }')).data?.roles as Array<{
      id: string;
      parentId: string | null;
    }>;
    expect(roles.map((r) => r.id).sort()).toEqual(Object.values(org.roles).sort());
    const position = new Map(roles.map((role, index) => [role.id, index]));
    for (const role of roles)
      if (role.parentId) expect(position.get(role.parentId)!).toBeLessThan(position.get(role.id)!);

    const groups = (await asAdmin('{ groups { id name members { memberType memberId } } }')).data
      ?.groups as Array<{
      id: string;
      members: unknown[];
    }>;
    expect(groups.find((g) => g.id === org.groups.g2)?.members).toEqual([
      { memberType: 'GROUP', memberId: org.groups.g1 },
    ]);

    expect((await asAdmin('{ orgWideDefaults { objectType accessLevel } }')).data?.orgWideDefaults).toEqual([
      { objectType: 'LEAD', accessLevel: 'PRIVATE' },
      { objectType: 'DEAL', accessLevel: 'PRIVATE' },
      { objectType: 'ACCOUNT', accessLevel: 'PRIVATE' },
    ]);

    await asAdmin(
      `mutation { shareRecord(input: { objectType: LEAD, recordId: "${org.leads.rep1}", granteeType: GROUP, granteeId: "${org.groups.g1}" }) { id } }`,
    );
    const shares = await t.gql(
      `{ recordShares(objectType: LEAD, recordId: "${org.leads.rep1}") { granteeType granteeId accessLevel } }`,
      {},
      org.users.rep1.token, // the owner may read the shares of their record
    );
    expect(shares.data?.recordShares).toEqual([
      { granteeType: 'GROUP', granteeId: org.groups.g1, accessLevel: 'READ' },
    ]);
    const hidden = await t.gql(
      `{ recordShares(objectType: LEAD, recordId: "${org.leads.vp}") { id } }`,
      {},
      org.users.rep1.token,
    );
    expect(hidden.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('keeps the directory to admins', async () => {
    for (const query of [
      '{ users { id } }',
      '{ roles { id } }',
      '{ groups { id } }',
      '{ orgWideDefaults { objectType } }',
    ]) {
      expect((await t.gql(query, {}, org.users.mgr.token)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }
  });

  it('creates a user who can sign in, and refuses a duplicate email naming the field', async () => {
    const email = `new-${Date.now()}@example.com`;
    const created = await asAdmin(
      `mutation { createUser(input: { email: "${email}", name: "New Rep", roleId: "${org.roles.rep}" }) { id email isAdmin role { name } } }`,
    );
    expect(created.errors).toBeUndefined();
    expect(created.data?.createUser).toMatchObject({ email, isAdmin: false, role: { name: 'Rep' } });
    const user = created.data?.createUser as { id: string };
    const token = await t.app.services.tokens.mint(user.id, org.companyId);
    expect((await t.gql('{ me { id } }', {}, token)).data?.me).toEqual({ id: user.id });
    const duplicate = await asAdmin(
      `mutation { createUser(input: { email: "${email.toUpperCase()}", name: "Again" }) { id } }`,
    );
    expect(duplicate.errors?.[0]?.message).toBe('input.email is already taken');
  });

  it('updates a role partially: re-parent without the name, rename without the parent', async () => {
    const moved = await asAdmin(
      `mutation { updateRole(id: "${org.roles.rep}", input: { parentId: "${org.roles.vp}" }) { name parentId } }`,
    );
    expect(moved.data?.updateRole).toEqual({ name: 'Rep', parentId: org.roles.vp });
    const renamed = await asAdmin(
      `mutation { updateRole(id: "${org.roles.rep}", input: { name: "Sales rep" }) { name parentId } }`,
    );
    expect(renamed.data?.updateRole).toEqual({ name: 'Sales rep', parentId: org.roles.vp });
    const nameless = await asAdmin('mutation { createRole(input: { parentId: null }) { id } }');
    expect(nameless.errors?.[0]?.message).toBe('input.name is required to create a role');
  });

  it('a directory change reaches sharing through the access event: visibility follows at once', async () => {
    const fresh = await buildSharingOrg(t.app);
    const leadsOf = async () =>
      (
        (await t.gql('{ leads(pageSize: 50) { total } }', {}, fresh.users.outsider.token)).data?.leads as {
          total: number;
        }
      ).total;
    expect(await leadsOf()).toBe(1);
    const res = await t.gql(
      `mutation { updateUserAccess(userId: "${fresh.users.outsider.id}", input: { isAdmin: true }) { isAdmin } }`,
      {},
      fresh.users.admin.token,
    );
    expect(res.errors).toBeUndefined();
    expect(await leadsOf()).toBe(6);
  });
});
