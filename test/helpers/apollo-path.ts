import { apolloPathTargets, DEFAULT_TEST_DATABASE_URL, DEFAULT_TEST_REDIS_URL } from './test-databases';

// The second run of the integration suite (jest.config.js): every GraphQL request through Apollo's own pipeline, on
// a database and Redis DB of its own (runs before setup-env.ts, which derives DATABASE_URL and REDIS_URL from these).
process.env.GRAPHQL_FAST_PATH = 'false';
const targets = apolloPathTargets(
  process.env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL,
  process.env.TEST_REDIS_URL ?? DEFAULT_TEST_REDIS_URL,
);
process.env.TEST_DATABASE_URL = targets.databaseUrl;
process.env.TEST_REDIS_URL = targets.redisUrl;
