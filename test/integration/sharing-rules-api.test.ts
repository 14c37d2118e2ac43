import { buildSharingOrg, type SharingOrg } from '../helpers/sharing-org';
import { startTestApp, type TestApp } from '../helpers/test-app';

describe('sharing API: invalid input is rejected with the field and the rule, and nothing is written', () => {
  let t: TestApp;
  let org: SharingOrg;
  let other: SharingOrg;

  beforeAll(async () => {
    t = await startTestApp();
    org = await buildSharingOrg(t.app);
    other = await buildSharingOrg(t.app);
  });
  afterAll(() => t.stop());

  async function ruleCount(): Promise<number> {
    const [{ count }] = await t.app.dataSource.query<[{ count: number }]>(
      'SELECT count(*)::int AS count FROM sharing_rules WHERE company_id = $1',
      [org.companyId],
    );
    return count;
  }

  const criteriaRule = (criteria: string) =>
    `mutation { createSharingRule(input: { objectType: LEAD, name: "x", ruleType: CRITERIA, criteria: ${criteria}, target: { type: USER, id: "$SUP" } }) { id } }`;

  const cases: Array<[string, () => string, RegExp]> = [
    [
      'an unknown criteria field',
      () => criteriaRule('[{ field: "owner_id", operator: eq, value: "x" }]'),
      /input\.criteria\[0\]\.field must be one of createdAt, lastName, email, companyName, status, source/,
    ],
    [
      'an operator the field does not support',
      () => criteriaRule('[{ field: "status", operator: gt, value: "NEW" }]'),
      /input\.criteria\[0\]\.operator must be one of eq, ne, in for status/,
    ],
    [
      'a value of the wrong type',
      () => criteriaRule('[{ field: "score", operator: gte, value: "high" }]'),
      /input\.criteria\[0\]\.value must be an integer/,
    ],
    [
      'an enum value that does not exist',
      () => criteriaRule('[{ field: "status", operator: eq, value: "WON" }]'),
      /input\.criteria\[0\]\.value must be one of NEW/,
    ],
    [
      'an empty "in" list',
      () => criteriaRule('[{ field: "status", operator: in, value: [] }]'),
      /input\.criteria\[0\]\.value must be a list of 1 to 100 values/,
    ],
    [
      'a close date that does not exist',
      () =>
        `mutation { createSharingRule(input: { objectType: DEAL, name: "x", ruleType: CRITERIA, criteria: [{ field: "closeDate", operator: gte, value: "2024-02-30" }], target: { type: USER, id: "$SUP" } }) { id } }`,
      /input\.criteria\[0\]\.value must be a date written YYYY-MM-DD/,
    ],
    [
      'an integer beyond the column range',
      () => criteriaRule('[{ field: "score", operator: gte, value: 3000000000 }]'),
      /input\.criteria\[0\]\.value must be an integer between/,
    ],
    ['no conditions at all', () => criteriaRule('[]'), /input\.criteria must hold at least one condition/],
    [
      'a target in another company',
      () =>
        `mutation { createSharingRule(input: { objectType: LEAD, name: "x", ruleType: OWNER, source: { type: ROLE, id: "${org.roles.rep}" }, target: { type: USER, id: "${other.users.sup.id}" } }) { id } }`,
      /input\.target\.id must be the id of a user in your company/,
    ],
    [
      'a source in another company',
      () =>
        `mutation { createSharingRule(input: { objectType: LEAD, name: "x", ruleType: OWNER, source: { type: GROUP, id: "${other.groups.g1}" }, target: { type: USER, id: "${org.users.sup.id}" } }) { id } }`,
      /input\.source\.id must be the id of a group in your company/,
    ],
    [
      'an OWNER rule without a source',
      () =>
        `mutation { createSharingRule(input: { objectType: LEAD, name: "x", ruleType: OWNER, target: { type: USER, id: "${org.users.sup.id}" } }) { id } }`,
      /input\.source is required for OWNER rules/,
    ],
    [
      'a target id that is not a UUID',
      () =>
        `mutation { createSharingRule(input: { objectType: LEAD, name: "x", ruleType: OWNER, source: { type: ROLE, id: "${org.roles.rep}" }, target: { type: USER, id: "1; DROP TABLE users" } }) { id } }`,
      /input\.target\.id must be a UUID/,
    ],
  ];

  it.each(cases)('rejects %s', async (_label, mutation, message) => {
    const before = await ruleCount();
    const res = await t.gql(mutation().replace('$SUP', org.users.sup.id), {}, org.users.admin.token);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.message).toMatch(message);
    expect(await ruleCount()).toBe(before);
  });

  it('rejects a role move that would create a cycle, and leaves the tree as it was', async () => {
    const res = await t.gql(
      `mutation { updateRole(id: "${org.roles.vp}", input: { name: "VP", parentId: "${org.roles.rep}" }) { id } }`,
      {},
      org.users.admin.token,
    );
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.message).toBe('input.parentId would create a cycle in the role hierarchy');
    const [{ parent_id }] = await t.app.dataSource.query<[{ parent_id: string }]>(
      'SELECT parent_id FROM roles WHERE id = $1',
      [org.roles.vp],
    );
    expect(parent_id).toBe(org.roles.ceo);
  });

  it('rejects sharing a record with a user of another company', async () => {
    const res = await t.gql(
      `mutation { shareRecord(input: { objectType: LEAD, recordId: "${org.leads.rep1}", granteeType: USER, granteeId: "${other.users.sup.id}" }) { id } }`,
      {},
      org.users.admin.token,
    );
    expect(res.errors?.[0]?.message).toBe('input.granteeId must be the id of a user in your company');
    const shares = await t.app.dataSource.query<unknown[]>(
      'SELECT 1 FROM record_shares WHERE record_id = $1',
      [org.leads.rep1],
    );
    expect(shares).toHaveLength(0);
  });

  it('lists, updates and deletes rules; each change writes an audit row', async () => {
    const created = await t.gql(
      `mutation { createSharingRule(input: { objectType: LEAD, name: "qualified", ruleType: CRITERIA, criteria: [{ field: "status", operator: eq, value: "QUALIFIED" }], target: { type: ROLE, id: "${org.roles.support}" } }) { id name criteria { field operator value } target { type id } accessLevel } }`,
      {},
      org.users.admin.token,
    );
    expect(created.errors).toBeUndefined();
    const id = created.data!.createSharingRule.id as string;
    expect(created.data!.createSharingRule).toMatchObject({
      criteria: [{ field: 'status', operator: 'eq', value: 'QUALIFIED' }],
      target: { type: 'ROLE', id: org.roles.support },
      accessLevel: 'READ',
    });
    const updated = await t.gql(
      `mutation { updateSharingRule(id: "${id}", input: { objectType: LEAD, name: "hot", ruleType: CRITERIA, criteria: [{ field: "score", operator: gte, value: 50 }], target: { type: ROLE, id: "${org.roles.support}" }, accessLevel: EDIT }) { name accessLevel } }`,
      {},
      org.users.admin.token,
    );
    expect(updated.data!.updateSharingRule).toEqual({ name: 'hot', accessLevel: 'EDIT' });
    const listed = await t.gql('{ sharingRules(objectType: LEAD) { id name } }', {}, org.users.admin.token);
    expect(listed.data!.sharingRules).toEqual([{ id, name: 'hot' }]);
    expect(
      (await t.gql(`mutation { deleteSharingRule(id: "${id}") }`, {}, org.users.admin.token)).data!
        .deleteSharingRule,
    ).toBe(true);
    const audit = await t.app.dataSource.query<Array<{ action: string }>>(
      'SELECT action FROM audit_logs WHERE object_id = $1 ORDER BY occurred_at',
      [id],
    );
    expect(audit.map((a) => a.action)).toEqual([
      'SHARING_RULE_CREATE',
      'SHARING_RULE_UPDATE',
      'SHARING_RULE_DELETE',
    ]);
  });
});
