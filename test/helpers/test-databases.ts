/** The machine's real Postgres and Redis, as the tests use them unless TEST_DATABASE_URL / TEST_REDIS_URL say else. */
export const DEFAULT_TEST_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/crm_test';
export const DEFAULT_TEST_REDIS_URL = 'redis://127.0.0.1:6379/9';

/**
 * The Apollo-path run of the suite (jest.config.js) gets a database and a Redis DB of its own beside the fast-path
 * run's (`<database>_apollo`, the next DB index), so each run starts from the state a test file expects.
 */
export function apolloPathTargets(
  databaseUrl: string,
  redisUrl: string,
): { databaseUrl: string; redisUrl: string } {
  const database = new URL(databaseUrl);
  database.pathname = `${database.pathname}_apollo`;
  const redis = new URL(redisUrl);
  redis.pathname = `/${Number(redis.pathname.slice(1) || '0') + 1}`;
  return { databaseUrl: database.toString(), redisUrl: redis.toString() };
}
