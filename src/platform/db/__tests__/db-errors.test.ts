import { QueryFailedError } from 'typeorm';
import { classifyDatabaseError } from '../db-errors';

/** What node-postgres puts on a DatabaseError, wrapped the way TypeORM and graphql-js wrap it. */
function pgError(fields: { message: string } & Record<string, unknown>): unknown {
  const driverError = Object.assign(new Error(fields.message), fields);
  const typeorm = new QueryFailedError('INSERT ...', [], driverError);
  return { message: typeorm.message, originalError: typeorm };
}

describe('classifyDatabaseError', () => {
  it.each([
    [
      { code: '22021', message: 'invalid byte sequence for encoding "UTF8": 0x00' },
      'input.value',
      /not valid text/,
    ],
    [
      { code: '22008', message: 'date/time field value out of range', column: 'close_date' },
      'input.closeDate',
      /valid date/,
    ],
    [{ code: '22003', message: 'numeric field overflow' }, 'input.value', /out of the range/],
    [
      { code: '22P02', message: 'invalid input syntax for type uuid: "nope"' },
      'input.value',
      /invalid format/,
    ],
    [
      {
        code: '23503',
        message: 'violates foreign key',
        detail: 'Key (company_id, owner_id)=(a, b) is not present in table "users".',
      },
      'input.ownerId',
      /existing record/,
    ],
    [{ code: '23502', message: 'null value', column: 'last_name' }, 'input.lastName', /is required/],
  ])('maps %o to BAD_USER_INPUT naming %s', (fields, field, rule) => {
    const mapped = classifyDatabaseError(pgError(fields));
    expect(mapped?.code).toBe('BAD_USER_INPUT');
    expect(mapped?.message).toMatch(new RegExp(`^${field.replace('.', '\\.')} `));
    expect(mapped?.message).toMatch(rule);
  });

  it('maps a unique violation to CONFLICT naming the column', () => {
    const mapped = classifyDatabaseError(
      pgError({ code: '23505', message: 'duplicate key', detail: 'Key (email)=(a@b.c) already exists.' }),
    );
    expect(mapped).toMatchObject({ code: 'CONFLICT', message: 'input.email is already taken' });
  });

  it.each([
    [
      'a refused connection thrown as a plain object',
      { originalError: { thrownValue: { code: 'ECONNREFUSED', errno: -111 } } },
    ],
    ['the pool timing out', new Error('timeout exceeded when trying to connect')],
    [
      'an administrator shutdown',
      pgError({ code: '57P01', message: 'terminating connection due to administrator command' }),
    ],
    ['too many connections', pgError({ code: '53300', message: 'sorry, too many clients already' })],
  ])('maps %s to SERVICE_UNAVAILABLE', (_label, error) => {
    expect(classifyDatabaseError(error)?.code).toBe('SERVICE_UNAVAILABLE');
  });

  it('leaves errors that are bugs, not input or outages, to be masked', () => {
    expect(
      classifyDatabaseError(pgError({ code: '42P01', message: 'relation "x" does not exist' })),
    ).toBeUndefined();
    expect(classifyDatabaseError(new TypeError('x is undefined'))).toBeUndefined();
  });
});
