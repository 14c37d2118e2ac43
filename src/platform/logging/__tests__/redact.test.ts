import { redactCredentials } from '../redact';

describe('redactCredentials', () => {
  it.each([
    ['redis://:secret@cache:6379/0', 'redis://:***@cache:6379/0'],
    ['redis://default:s3cr3t@cache:6379', 'redis://default:***@cache:6379'],
    ['rediss://user:p%40ss@cache.example:6380/2', 'rediss://user:***@cache.example:6380/2'],
    ['postgres://crm:crm@postgres:5432/crm', 'postgres://crm:***@postgres:5432/crm'],
    ['postgres://u:p@ss@db:5432/crm', 'postgres://u:***@db:5432/crm'],
    [
      'connect to redis://:pw@a:1 and postgres://u:pw@b/db failed',
      'connect to redis://:***@a:1 and postgres://u:***@b/db failed',
    ],
  ])('masks the password in %s', (input, expected) => {
    expect(redactCredentials(input)).toBe(expected);
    expect(redactCredentials(input)).not.toMatch(/secret|s3cr3t|p%40ss|:crm@|:pw@|ss@db/);
  });

  it('leaves URLs without a password as they are', () => {
    for (const url of [
      'redis://127.0.0.1:6379/9',
      'postgres://postgres@127.0.0.1:5432/crm',
      'http://[::1]:4000/graphql',
    ]) {
      expect(redactCredentials(url)).toBe(url);
    }
  });
});
