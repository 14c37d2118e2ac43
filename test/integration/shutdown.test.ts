import { Client } from 'pg';
import { createTenant, insertLead, type TestTenant } from '../helpers/fixtures';
import { spawnBuilt, testProcessEnv, type SpawnedProcess } from '../helpers/spawn-gateway';
import { startTestApp, type TestApp } from '../helpers/test-app';

describe('graceful shutdown of the gateway process', () => {
  let t: TestApp;
  let a: TestTenant;
  let gateway: SpawnedProcess | undefined;

  beforeAll(async () => {
    t = await startTestApp({}, 'cli');
    a = await createTenant(t.app);
  });
  afterAll(async () => {
    gateway?.child.kill('SIGKILL');
    await t.stop();
  });

  it('on SIGTERM completes the in-flight request, then exits 0', async () => {
    const leadId = await insertLead(t.app, a, a.admin.id, 'Before');
    // production, as deployed: Apollo would install its own signal handlers there unless told not to.
    gateway = spawnBuilt('main', testProcessEnv({ NODE_ENV: 'production' }));
    const [, url] = await gateway.waitFor(/"url":"(http:\/\/[^"]+)"/);

    // Hold the lead's row lock so the mutation is provably in flight when the signal arrives.
    const locker = new Client({ connectionString: process.env.DATABASE_URL });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('SELECT id FROM leads WHERE id = $1 FOR UPDATE', [leadId]);

    const response = fetch(url!, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${a.admin.token}` },
      body: JSON.stringify({
        query: `mutation { updateLead(id: "${leadId}", input: { lastName: "After" }) { lastName } }`,
      }),
    });
    // Polled outside the locker's transaction: pg_stat_activity is snapshotted once per transaction.
    const watcher = new Client({ connectionString: process.env.DATABASE_URL });
    await watcher.connect();
    await waitUntil(async () => {
      const [{ waiting }] = (
        await watcher.query(
          "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
      ).rows as [{ waiting: number }];
      return waiting > 0;
    });
    await watcher.end();

    gateway.child.kill('SIGTERM');
    await gateway.waitFor(/shutting down/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(gateway.child.exitCode).toBeNull(); // still draining

    await locker.query('COMMIT');
    await locker.end();
    const body = (await (await response).json()) as { data: { updateLead: { lastName: string } } };
    expect(body.data.updateLead.lastName).toBe('After');
    expect(await gateway.exited).toBe(0);
    expect(gateway.output()).toMatch(/stopped cleanly/);
    // Every resource closed on its own, none by running out the shutdown budget.
    expect(gateway.output()).not.toMatch(/shutdown budget of \d+ ms exceeded/);
  });
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('condition not met in time');
}
