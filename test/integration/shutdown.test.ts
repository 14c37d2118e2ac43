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

  it('on SIGTERM under keep-alive load answers every request it accepted; no connection is cut mid-request', async () => {
    gateway = spawnBuilt('main', testProcessEnv({ NODE_ENV: 'production' }));
    const [, url] = await gateway.waitFor(/"url":"(http:\/\/[^"]+)"/);
    const tag = `drain-${Date.now()}`;
    const outcomes = { ok: 0, created: 0, refused: 0, cut: [] as string[] };
    const exited = gateway.exited;
    let stopped = false;
    void exited.then(() => (stopped = true));

    // 16 clients on keep-alive connections (fetch pools them), half reads, half writes, until the process is gone.
    const client = async (index: number) => {
      for (let i = 0; !stopped && i < 2000; i++) {
        const write = (index + i) % 2 === 0;
        const query = write
          ? `mutation { createLead(input: { firstName: "${tag}", lastName: "c${index}-${i}" }) { id } }`
          : '{ me { id } }';
        try {
          const response = await fetch(url!, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${a.admin.token}` },
            body: JSON.stringify({ query }),
          });
          const body = (await response.json()) as { errors?: unknown };
          if (response.status !== 200 || body.errors)
            outcomes.cut.push(`${response.status} ${JSON.stringify(body)}`);
          else if (write) outcomes.created++;
          outcomes.ok++;
        } catch (error) {
          const cause = (error as Error).cause as { code?: string; message?: string } | undefined;
          const code = cause?.code;
          // A new connection refused (or reset while still connecting, when the listener closes with it in the
          // accept backlog) never carried a request to the server: the client may retry it.
          if (code === 'ECONNREFUSED' || cause?.message?.startsWith('connect ')) {
            outcomes.refused++;
            await new Promise((resolve) => setTimeout(resolve, 5));
          } else outcomes.cut.push(`${code ?? ''} ${((error as Error).cause as Error)?.message}`);
        }
      }
    };
    const load = Promise.all(Array.from({ length: 16 }, (_, index) => client(index)));
    // SIGTERM once the load is real (a count, not a time: how fast a fresh process warms up varies by machine).
    const loadStarted = Date.now();
    while (outcomes.ok < 60 && Date.now() - loadStarted < 15_000)
      await new Promise((resolve) => setTimeout(resolve, 10));
    gateway.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await load;

    expect(outcomes.cut).toEqual([]);
    expect(outcomes.ok).toBeGreaterThan(50);
    // Every committed createLead was answered: the database holds exactly the leads the clients were told about.
    const [{ count }] = await t.app.dataSource.query<[{ count: number }]>(
      'SELECT count(*)::int AS count FROM leads WHERE company_id = $1 AND first_name = $2',
      [a.companyId, tag],
    );
    expect(count).toBe(outcomes.created);
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
