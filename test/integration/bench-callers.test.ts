import { Redis } from 'ioredis';
import { Client } from 'pg';
import { claimBenchDatabase, prepareBenchDatabase, releaseBenchDatabases } from '../../bench/bench-database';
import { pickBenchCallers, Q2_PAGE } from '../../bench/scenarios/bench-callers';
import { gatewaySizes } from '../../bench/scenarios/gateway.bench';
import { TokenService } from '../../src/modules/identity/token.service';

/** A database of its own beside the test database (TEST_DATABASE_URL names the server and the stem). */
const DATABASE = `${new URL(process.env.TEST_DATABASE_URL!).pathname.slice(1)}_bench`;
const url = Object.assign(new URL(process.env.TEST_DATABASE_URL!), { pathname: `/${DATABASE}` }).toString();
const redisUrl = process.env.REDIS_URL!;
const SECRET = 'bench-test-secret-0123456789abcdef0123456789abcdef';
/** The key bench-database.ts locks (`crmb`). */
const BENCH_LOCK_KEY = 0x63726d62;
const log = () => undefined;

async function query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** The bench below full scale: `npm run bench -- --only gateway --scale 0.01` and what it shares with other runs. */
describe('bench: callers, database claims and caches at small scale', () => {
  beforeAll(async () => {
    await prepareBenchDatabase(url, gatewaySizes(0.01), log, redisUrl);
  }, 120_000);
  afterAll(async () => {
    await releaseBenchDatabases();
    const admin = new Client({
      connectionString: Object.assign(new URL(url), { pathname: '/postgres' }).toString(),
    });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await admin.end();
  });

  it('picks a rep at --scale 0.01, where nobody owns a page of deals: a non-admin of company0 owning deals', async () => {
    const callers = await pickBenchCallers(url, SECRET, log);
    const [rep] = await query<{ is_admin: boolean; company_id: string; owned: number }>(
      `SELECT u.is_admin, u.company_id, (SELECT count(*)::int FROM deals d WHERE d.owner_id = u.id) AS owned
         FROM users u WHERE u.id = $1`,
      [callers.repId],
    );
    expect(rep).toEqual({ is_admin: false, company_id: callers.companyId, owned: callers.repOwned });
    expect(callers.repOwned).toBeGreaterThanOrEqual(1);
    // The data set this scale makes: no non-admin owns a full page, which the full-scale rule demanded.
    const [best] = await query<{ owned: number }>(
      `SELECT max((SELECT count(*) FROM deals d WHERE d.owner_id = u.id))::int AS owned
         FROM users u WHERE u.company_id = $1 AND NOT u.is_admin`,
      [callers.companyId],
    );
    expect(best!.owned).toBeLessThan(Q2_PAGE);
    expect(callers.repOwned).toBe(best!.owned);
    const tokens = new TokenService({ secret: SECRET });
    await expect(tokens.verify(callers.repToken)).resolves.toMatchObject({
      userId: callers.repId,
      companyId: callers.companyId,
    });
    const [deal] = await query<{ company_id: string; account_id: string | null }>(
      'SELECT company_id, account_id FROM deals WHERE id = $1',
      [callers.dealId],
    );
    expect(deal!.company_id).toBe(callers.companyId);
    expect(deal!.account_id).not.toBeNull();
  });

  it('refuses a bench database another run holds, naming it, instead of reseeding it under that run', async () => {
    await releaseBenchDatabases();
    const other = new Client({ connectionString: url, application_name: 'crm-bench pid 4242' });
    await other.connect();
    try {
      await other.query('SELECT pg_advisory_lock($1::bigint)', [BENCH_LOCK_KEY]);
      const [before] = await query<{ deals: number }>('SELECT count(*)::int AS deals FROM deals');
      // Another scale would truncate and reseed the data the other run's servers are answering from.
      await expect(prepareBenchDatabase(url, gatewaySizes(0.02), log, redisUrl)).rejects.toThrow(
        new RegExp(
          `${DATABASE} is in use by another bench run \\(crm-bench pid 4242, since .*BENCH_DATABASE_PREFIX`,
        ),
      );
      const [after] = await query<{ deals: number }>('SELECT count(*)::int AS deals FROM deals');
      expect(after).toEqual(before);
    } finally {
      await other.end();
    }
    // Once the other run has gone, the database is this run's.
    await expect(claimBenchDatabase(url)).resolves.toBeUndefined();
  });

  it("drops the gateway's cached entries from the bench Redis on preparing, and nothing else", async () => {
    const redis = new Redis(redisUrl);
    const [{ company_id: company, id: user } = { company_id: '', id: '' }] = await query<{
      company_id: string;
      id: string;
    }>(`SELECT company_id, id FROM users WHERE email = 'user0@company0.example.com'`);
    // What a run at another scale leaves behind: seed 42 gives the same company and user ids at every scale.
    const cached = [
      `crm:sharing:{${company}}:v0:model`,
      `crm:sharing:{${company}}:v0:vis:${user}:DEAL`,
      `crm:identity:{${company}}:user:${user}`,
      `crm:records:{${company}}:account:${user}`,
    ];
    const kept = 'crm:bench_test_queue:meta';
    try {
      for (const key of [...cached, kept]) await redis.set(key, '{"stale":true}', 'EX', 600);
      await prepareBenchDatabase(url, gatewaySizes(0.01), log, redisUrl);
      expect(await redis.exists(...cached)).toBe(0);
      expect(await redis.exists(kept)).toBe(1);
    } finally {
      await redis.del(...cached, kept);
      redis.disconnect();
    }
  });
});
