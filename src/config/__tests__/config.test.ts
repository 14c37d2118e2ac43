import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { exportSettings } from '../../modules/exports/export.settings';
import { workflowSettings } from '../../modules/workflows/workflow.settings';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../config';

describe('loadConfig', () => {
  it('applies documented defaults and picks embedded drivers when nothing is configured', () => {
    const config = loadConfig({});
    expect(config.http.port).toBe(4000);
    expect(config.metrics).toEqual({ host: '127.0.0.1', gatewayPort: 9464, workerPort: 9465 });
    expect(config.database.driver).toBe('embedded');
    expect(config.redis.driver).toBe('memory');
    expect(config.graphql).toMatchObject({
      maxDepth: 10,
      maxAliases: 15,
      maxPageSize: 200,
      introspection: true,
    });
    expect(Object.isFrozen(config) && Object.isFrozen(config.graphql)).toBe(true);
  });

  it('names the bad variable and the rule', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT: .*number/i);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x' })).toThrow(
      /DATABASE_URL: must be a URL starting with postgres/,
    );
    expect(() => loadConfig({ JWT_SECRET: 'short' })).toThrow(/JWT_SECRET: must be at least 32 bytes/);
    expect(() => loadConfig({ GRAPHQL_INTROSPECTION: 'maybe' })).toThrow(ConfigError);
  });

  it('parses "false" as false (not truthy like z.coerce.boolean would)', () => {
    expect(loadConfig({ GRAPHQL_INTROSPECTION: 'false' }).graphql.introspection).toBe(false);
    expect(loadConfig({ GRAPHQL_INTROSPECTION: '1' }).graphql.introspection).toBe(true);
  });

  it('turns introspection off in production and requires a real JWT secret there', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/JWT_SECRET: is required/);
    const config = loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40) });
    expect(config.graphql.introspection).toBe(false);
    expect(config.jwt.isDevSecret).toBe(false);
  });

  it.each([
    [
      'the built-in development secret',
      'dev-only-secret-change-me-0123456789abcdef',
      /published example or placeholder/,
    ],
    [
      'the .env.example placeholder',
      'replace-with-a-long-random-secret-of-at-least-32-chars',
      /published example or placeholder/,
    ],
    [
      'any other placeholder',
      'please-change-me-before-going-live-0123456789',
      /published example or placeholder/,
    ],
    ['a secret under 32 bytes', 'k8Jq2mZr0vXy7LpT4nWc9sHd6fGb1a', /at least 32 bytes/],
  ])('refuses %s in production, naming JWT_SECRET', (_label, secret, rule) => {
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: secret })).toThrow(
      new RegExp(`JWT_SECRET: .*${rule.source}`),
    );
    // Outside production a published secret is accepted (tests and local runs); a short one never is.
    if (secret.length >= 32)
      expect(() => loadConfig({ NODE_ENV: 'development', JWT_SECRET: secret })).not.toThrow();
    else expect(() => loadConfig({ JWT_SECRET: secret })).toThrow(/JWT_SECRET: must be at least 32 bytes/);
  });

  it('serves GraphiQL by default while introspection is on, with a token for the demo admin outside production', () => {
    expect(loadConfig({ JWT_SECRET: undefined }).graphql).toMatchObject({
      explorer: 'graphiql',
      developmentTokenEmail: 'user0@company0.example.com',
    });
    expect(loadConfig({ GRAPHQL_EXPLORER: 'sandbox' }).graphql.explorer).toBe('sandbox');
    expect(
      loadConfig({ JWT_SECRET: undefined, DEVELOPMENT_TOKEN_EMAIL: '' }).graphql.developmentTokenEmail,
    ).toBeUndefined();
    // A real secret offers no token unless an operator names its user.
    const secret = { JWT_SECRET: 'y'.repeat(40) };
    expect(loadConfig(secret).graphql.developmentTokenEmail).toBeUndefined();
    expect(
      loadConfig({ ...secret, DEVELOPMENT_TOKEN_EMAIL: 'a@b.example.com' }).graphql.developmentTokenEmail,
    ).toBe('a@b.example.com');
    // The explorer follows introspection, in production as before.
    expect(loadConfig({ GRAPHQL_INTROSPECTION: 'false' }).graphql.explorer).toBe('off');
    const production = { NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40) };
    expect(loadConfig(production).graphql).toMatchObject({
      explorer: 'off',
      developmentTokenEmail: undefined,
    });
    expect(loadConfig({ ...production, GRAPHQL_INTROSPECTION: 'true' }).graphql).toMatchObject({
      explorer: 'graphiql',
      developmentTokenEmail: undefined,
    });
    expect(() => loadConfig({ GRAPHQL_EXPLORER: 'playground' })).toThrow(/GRAPHQL_EXPLORER: /);
    expect(() => loadConfig({ ...production, DEVELOPMENT_TOKEN_EMAIL: 'a@b.example.com' })).toThrow(
      /DEVELOPMENT_TOKEN_EMAIL: is for development only/,
    );
  });

  it('counts the secret in bytes: 16 two-byte characters are 32 bytes', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'ü'.repeat(16) })).not.toThrow();
  });

  it('binds the metrics listener to loopback unless METRICS_HOST says otherwise', () => {
    expect(loadConfig({ HOST: '0.0.0.0' }).metrics.host).toBe('127.0.0.1');
    expect(loadConfig({ METRICS_HOST: '0.0.0.0' }).metrics.host).toBe('0.0.0.0');
  });

  it('selects real drivers from URLs', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://u@h/db', REDIS_URL: 'redis://h:6379/2' });
    expect(config.database.driver).toBe('postgres');
    expect(config.redis.driver).toBe('redis');
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'a:7000, b:7001' }).redis).toMatchObject({
      driver: 'redis-cluster',
      clusterNodes: ['a:7000', 'b:7001'],
    });
  });

  it("reads each module's variables through the fragment in its folder, under the module's key", () => {
    for (const name of [...Object.keys(exportSettings.variables), ...Object.keys(workflowSettings.variables)])
      expect(CONFIG_VARIABLES).toContain(name);
    const config = loadConfig({ EXPORT_DIR: '/srv/exports', WORKFLOW_ROUTING: 'single' });
    expect(config.exports).toEqual({
      directory: '/srv/exports',
      concurrency: 2,
      maxActivePerUser: 3,
      retentionHours: 24,
      gzipLevel: 6,
      // Unset: the export pool's share of DATABASE_MAX_CONNECTIONS.
      poolSize: undefined,
      streamMaxRows: 10_000,
      lockMs: 30_000,
    });
    expect(config.workflows.routing).toBe('single');
    // A fragment's rule names its variable, as the platform's do.
    expect(() => loadConfig({ EXPORT_GZIP_LEVEL: '12' })).toThrow(/EXPORT_GZIP_LEVEL: /);
    for (const claim of ['EXPORT_LOCK_MS', 'WORKFLOW_LOCK_MS']) {
      expect(() => loadConfig({ [claim]: '500' })).toThrow(new RegExp(`${claim}: must be at least 1000 ms`));
      expect(() => loadConfig({ [claim]: '1000' })).not.toThrow();
    }
    expect(() => loadConfig({ WORKFLOW_HTTP_ALLOWLIST: 'ftp://x' })).toThrow(
      /WORKFLOW_HTTP_ALLOWLIST: must be comma-separated http\(s\) URL prefixes/,
    );
  });

  it('enforces a configured manifest by default, and refuses a safelist without one, naming the variable', () => {
    expect(loadConfig({}).graphql.operations).toEqual({
      mode: 'any',
      manifestPath: undefined,
      apqTtlSeconds: 86_400,
    });
    expect(loadConfig({ GRAPHQL_OPERATION_MANIFEST: '/srv/manifest.json' }).graphql.operations.mode).toBe(
      'safelist',
    );
    expect(
      loadConfig({ GRAPHQL_OPERATION_MANIFEST: '/srv/manifest.json', GRAPHQL_OPERATIONS: 'persisted' })
        .graphql.operations.mode,
    ).toBe('persisted');
    expect(() => loadConfig({ GRAPHQL_OPERATIONS: 'safelist' })).toThrow(
      /GRAPHQL_OPERATIONS: safelist needs GRAPHQL_OPERATION_MANIFEST/,
    );
    expect(() => loadConfig({ GRAPHQL_OPERATIONS: 'strict' })).toThrow(/GRAPHQL_OPERATIONS: /);
    expect(() => loadConfig({ GRAPHQL_APQ_TTL_SECONDS: '0' })).toThrow(/GRAPHQL_APQ_TTL_SECONDS: /);
  });

  it('reads the search index budget in megabytes, fractions allowed, and names it when it is not positive', () => {
    expect(loadConfig({}).search.indexMaxBytes).toBe(1024 * 1024 * 1024);
    expect(loadConfig({ SEARCH_INDEX_MAX_MB: '0.5' }).search.indexMaxBytes).toBe(512 * 1024);
    for (const bad of ['0', '-1', 'lots', 'Infinity'])
      expect(() => loadConfig({ SEARCH_INDEX_MAX_MB: bad })).toThrow(
        /SEARCH_INDEX_MAX_MB: .*(number|megabytes)/,
      );
  });

  it('.env.example names every variable the platform and the modules declare, and no other', () => {
    const example = readFileSync(resolve(__dirname, '../../../.env.example'), 'utf8');
    const named = [...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((match) => match[1]);
    expect([...new Set(named)].sort()).toEqual([...CONFIG_VARIABLES].sort());
  });
});
