import { ValidationError } from '../../../platform/errors/app-error';
import { criteriaMatch, criteriaToSql, validateCriteria, type CriteriaCondition } from '../criteria';

const violations = (conditions: CriteriaCondition[]) => {
  try {
    validateCriteria('LEAD', conditions);
    return [];
  } catch (error) {
    return (error as ValidationError).violations.map((v) => `${v.field} ${v.rule}`);
  }
};

describe('criteria', () => {
  it('takes fields, operators and values from the catalog only, naming each bad condition', () => {
    expect(violations([{ field: 'status', operator: 'eq', value: 'NEW' }])).toEqual([]);
    expect(violations([{ field: 'description', operator: 'eq', value: 'x' }])[0]).toMatch(
      /^input\.criteria\[0\]\.field must be one of/,
    );
    expect(violations([{ field: 'status', operator: 'gt', value: 'NEW' }])).toEqual([
      'input.criteria[0].operator must be one of eq, ne, in for status',
    ]);
    expect(violations([{ field: 'score', operator: 'eq', value: 1.5 }])[0]).toMatch(/must be an integer/);
    expect(violations([{ field: 'createdAt', operator: 'gte', value: '2024-02-30' }])[0]).toMatch(
      /must be a date/,
    );
    expect(violations([{ field: 'status', operator: 'in', value: [] }])[0]).toMatch(
      /list of 1 to 100 values/,
    );
    expect(violations([])).toEqual(['input.criteria must hold at least one condition']);
  });

  it('compiles to SQL whose values are all bound parameters, never text in the statement', () => {
    const params: Record<string, unknown> = {};
    const hostile = "x'); DROP TABLE leads; --";
    const sql = criteriaToSql(
      'LEAD',
      [
        { field: 'companyName', operator: 'contains', value: hostile },
        { field: 'status', operator: 'in', value: ['NEW', 'QUALIFIED'] },
        { field: 'score', operator: 'gte', value: 50 },
      ],
      'r',
      'p',
      params,
    );
    expect(sql).not.toContain('DROP');
    expect(sql).toContain('r.company_name');
    expect(Object.values(params)).toEqual([hostile.toLowerCase(), ['NEW', 'QUALIFIED'], 50]);
  });

  it('matches loaded records with SQL semantics (NULL never equals, ne includes NULL)', () => {
    const lead = { status: 'NEW', score: 60, companyName: null, createdAt: new Date('2024-05-01T10:00:00Z') };
    expect(criteriaMatch('LEAD', [{ field: 'score', operator: 'gte', value: 50 }], lead)).toBe(true);
    expect(criteriaMatch('LEAD', [{ field: 'companyName', operator: 'eq', value: 'x' }], lead)).toBe(false);
    expect(criteriaMatch('LEAD', [{ field: 'companyName', operator: 'ne', value: 'x' }], lead)).toBe(true);
    expect(criteriaMatch('LEAD', [{ field: 'createdAt', operator: 'lt', value: '2024-06-01' }], lead)).toBe(
      true,
    );
    expect(
      criteriaMatch(
        'LEAD',
        [
          { field: 'status', operator: 'in', value: ['QUALIFIED'] },
          { field: 'score', operator: 'gte', value: 50 },
        ],
        lead,
      ),
    ).toBe(false);
  });
});
