const shared = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  setupFiles: ['<rootDir>/test/helpers/setup-env.ts'],
};

/**
 * Every integration test runs twice: once as deployed (known GraphQL documents on the fast path) and once with the
 * fast path off (every request through Apollo's own pipeline), so both answer the same. Unit tests run once.
 */
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
      setupFiles: ['<rootDir>/test/helpers/apollo-path.ts', ...shared.setupFiles],
    },
  ],
};
