import { FIELD_CATALOG, fieldsFor, findField, isTimeZone, RecordType } from '..';

describe('field catalog', () => {
  it('keeps the sort and criteria allow-lists the API has always had', () => {
    expect(Object.keys(fieldsFor(RecordType.LEAD, 'sort')).sort()).toEqual(
      ['createdAt', 'estimatedValue', 'lastName', 'score', 'status', 'updatedAt'].sort(),
    );
    expect(Object.keys(fieldsFor(RecordType.DEAL, 'sort')).sort()).toEqual(
      ['amount', 'closeDate', 'createdAt', 'name', 'stage', 'updatedAt'].sort(),
    );
    expect(Object.keys(fieldsFor(RecordType.ACCOUNT, 'criteria')).sort()).toEqual(
      ['annualRevenue', 'country', 'createdAt', 'employees', 'industry', 'name'].sort(),
    );
  });

  it('finds only own, allowed fields: prototype keys and SQL-looking names are never fields', () => {
    expect(findField(RecordType.LEAD, 'score', 'sort')?.column).toBe('score');
    expect(findField(RecordType.LEAD, 'description', 'sort')).toBeUndefined(); // exists, not sortable
    for (const name of ['__proto__', 'constructor', 'toString', 'score; DROP TABLE leads', 'SCORE']) {
      expect(findField(RecordType.LEAD, name, 'filter')).toBeUndefined();
    }
  });

  it('describes every field coherently: snake_case columns, enum values, numeric measures only', () => {
    for (const [type, fields] of Object.entries(FIELD_CATALOG)) {
      for (const [name, spec] of Object.entries(fields)) {
        expect(spec.name).toBe(name);
        expect(spec.column).toMatch(/^[a-z][a-z_]*$/);
        if (spec.kind === 'enum') expect(spec.values?.length).toBeGreaterThan(0);
        if (spec.uses.aggregate) expect(['int', 'number', 'money']).toContain(spec.kind);
        if (spec.kind === 'uuid') expect(spec.uses.sort).toBe(false);
        expect(Object.isFrozen(spec.uses)).toBe(true);
      }
      expect(Object.isFrozen(fields)).toBe(true);
      expect(type).toMatch(/^(LEAD|DEAL|ACCOUNT)$/);
    }
  });
});

describe('time zones', () => {
  it('accepts IANA names and refuses others, the same on a repeated check', () => {
    for (let pass = 0; pass < 2; pass++) {
      expect(isTimeZone('Europe/Berlin')).toBe(true);
      expect(isTimeZone('UTC')).toBe(true);
      expect(isTimeZone('Mars/Olympus_Mons')).toBe(false);
      expect(isTimeZone(`Europe/${'x'.repeat(100)}`)).toBe(false);
    }
  });
});
