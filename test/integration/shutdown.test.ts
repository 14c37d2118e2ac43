import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { Client } from 'pg';
import { createTenant, insertLead, type TestTenant } from '../helpers/fixtures';
import { freePort } from '../helpers/ports';
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

/**
 * What an operator runs: `npm start` / `npm run worker`, stopped by signalling the npm process (a process manager or
 * `kill <pid>` sees npm's pid, not node's). The server must run its documented shutdown and leave nothing behind.
 */
describe('graceful shutdown through npm', () => {
  const orphans = new Set<number>();
  afterEach(() => {
    for (const pid of orphans) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    orphans.clear();
  });

  it.each([
    ['npm start', ['start'], 'gateway'],
    ['npm run worker', ['run', 'worker'], 'worker'],
  ])(
    'SIGTERM to the pid of `%s` stops its node process cleanly and frees its ports',
    async (_, args, role) => {
      const npm = spawnNpm(
        args,
        testProcessEnv({ SHUTDOWN_TIMEOUT_MS: '5000', METRICS_PORT: String(await freePort()) }),
      );
      // pino's lines carry the node process's pid; "<role> started" its listeners (the worker's: metrics).
      const [started] = await npm.waitFor(new RegExp(`^\\{.*"msg":"${role} started".*$`, 'm'));
      const { pid, url, metrics } = JSON.parse(started) as { pid: number; url?: string; metrics?: string };
      orphans.add(pid);
      expect(pid).not.toBe(npm.child.pid); // node runs under npm, as deployed
      const ports = [url, metrics].filter((u): u is string => !!u).map((u) => Number(new URL(u).port));
      expect(ports.length).toBeGreaterThan(0);

      npm.child.kill('SIGTERM');
      const npmExit = await npm.exited;
      await waitUntil(async () => !isAlive(pid), 15_000).catch(() => undefined);

      expect({ nodeAlive: isAlive(pid), npmExit }).toEqual({ nodeAlive: false, npmExit: 0 });
      for (const port of ports) expect(await connectError(port)).toBe('ECONNREFUSED');
      expect(npm.output()).toMatch(/"signal":"SIGTERM","msg":"shutting down"/);
      expect(npm.output()).toMatch(/stopped cleanly/);
    },
  );
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The error code of connecting to a loopback port ('connected' when something still listens). */
function connectError(port: number): Promise<string> {
  return new Promise((resolveCode) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolveCode('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolveCode(error.code ?? error.message));
  });
}

/** `npm <args>` in the repository, as a user runs it (npm from PATH), with spawnBuilt's output helpers. */
function spawnNpm(
  args: string[],
  env: NodeJS.ProcessEnv,
): Omit<SpawnedProcess, 'child'> & {
  child: ReturnType<typeof spawn>;
} {
  const child = spawn('npm', args, {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    cwd: resolve(__dirname, '../..'),
  });
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => (buffer += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (buffer += chunk.toString()));
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  return {
    child,
    output: () => buffer,
    exited,
    async waitFor(pattern, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = buffer.match(pattern);
        if (match) return match;
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`npm exited before ${pattern}; output:\n${buffer}`);
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${pattern}; output so far:\n${buffer}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('condition not met in time');
}
