const shared = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  setupFiles: ['<rootDir>/test/helpers/setup-env.ts'],
};

/**
 * Integration tests run twice: once as deployed (known GraphQL documents on the fast path) and once with the fast
 * path off (every request through Apollo's own pipeline), so both answer the same. Unit tests run once, and so do
 * the integration tests whose behaviour cannot depend on the path: they send no GraphQL through the gateway under
 * test, compare both paths themselves, or test a process (a spawned, built gateway, worker or CLI).
 */
const PATH_INDEPENDENT = [
  'bench-callers',
  'browser-harness',
  'cache-consistency',
  'cli',
  'cluster-queues',
  'cluster-worker-kill',
  'codegen',
  'compose-file',
  'embedded-capabilities',
  'embedded-mode',
  'embedded-session',
  'graphql-fast-path',
  'local-cluster',
  'migration-state',
  'postgres-pair',
  'prepared-statement',
  'queue',
  'record-filter',
  'redis-cache',
  'schema-file',
  'search-document',
  'shutdown',
  'sort-indexes',
  'storage-driver',
  'workflows-restart',
];
/** @type {import('jest').Config} */
module.exports = {
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  testTimeout: 60000,
  projects: [
    {
      ...shared,
      displayName: 'fast path',
      testMatch: ['<rootDir>/test/**/*.test.ts', '<rootDir>/src/**/__tests__/**/*.test.ts'],
    },
    {
      ...shared,
      displayName: 'apollo path',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      testPathIgnorePatterns: PATH_INDEPENDENT.map((name) => `/test/integration/${name}\\.test\\.ts$`),
      setupFiles: ['<rootDir>/test/helpers/apollo-path.ts', ...shared.setupFiles],
    },
  ],
};
