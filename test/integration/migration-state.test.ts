import { Client } from 'pg';
import { freePort } from '../helpers/ports';
import { spawnBuilt, testProcessEnv } from '../helpers/spawn-gateway';

/** A database of its own beside the test database, created empty: nothing migrated. */
const DATABASE = `${new URL(process.env.TEST_DATABASE_URL!).pathname.slice(1)}_unmigrated`;

describe('a gateway or worker on a database whose migrations are behind the code', () => {
  const adminUrl = Object.assign(new URL(process.env.TEST_DATABASE_URL!), {
    pathname: '/postgres',
  }).toString();
  const url = Object.assign(new URL(process.env.TEST_DATABASE_URL!), { pathname: `/${DATABASE}` }).toString();
  const admin = async (sql: string) => {
    const client = new Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };

  beforeEach(async () => {
    await admin(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await admin(`CREATE DATABASE ${DATABASE}`);
  });
  afterAll(() => admin(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`));

  it.each(['main', 'worker'] as const)(
    '%s refuses to start with one line naming the missing migrations and the command to run',
    async (entry) => {
      const process = spawnBuilt(entry, testProcessEnv({ DATABASE_URL: url, LOG_LEVEL: 'warn' }));
      expect(await process.exited).toBe(78);
      const lines = process
        .output()
        .split('\n')
        .filter((line) => line.includes('failed to start'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /missing \d+ migration\(s\) this code needs: Foundation1764300000000, SharingIndexes\d+, [^.]*\. Run `npm run migrate`/,
      );
      expect(process.output()).not.toMatch(/\n\s+at /); // no stack trace
      // Refused before touching the schema: nothing created, not even TypeORM's bookkeeping table.
      const client = new Client({ connectionString: url });
      await client.connect();
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'",
      );
      await client.end();
      expect(rows[0]!.n).toBe(0);
    },
    60_000,
  );

  it('with DATABASE_MIGRATE=auto the gateway migrates, then is ready and serves every metric family', async () => {
    const metricsPort = await freePort();
    const gateway = spawnBuilt(
      'main',
      testProcessEnv({ DATABASE_URL: url, DATABASE_MIGRATE: 'auto', METRICS_PORT: String(metricsPort) }),
    );
    try {
      const [, graphqlUrl] = (await gateway.waitFor(/"url":"(http:\/\/[^"]+)"/, 60_000)) as [string, string];
      const ready = await fetch(graphqlUrl.replace('/graphql', '/readyz'));
      expect(ready.status).toBe(200);
      const scrape = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(scrape.status).toBe(200);
      const body = await scrape.text();
      expect(body).toMatch(/^crm_audit_default_partition_rows\{[^}]*\} 0$/m);
      expect(body).not.toMatch(/^crm_metrics_collect_errors_total\{/m);
    } finally {
      gateway.child.kill('SIGTERM');
      await gateway.exited;
    }
  }, 90_000);
});
