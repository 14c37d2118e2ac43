import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { ensureHaproxy } from '../../bench/cluster/haproxy';

interface Ready {
  cluster: 'ready';
  url: string;
  token: string;
  pids: number[];
  dirs: string[];
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * `npm run cluster`'s module as a process (Postgres pair, PgBouncer, Redis Cluster, two gateways behind HAProxy, two
 * workers): a record read through the balancer over HTTP and a graphql-ws subscription through it, then SIGINT stops
 * every process it started and removes its directories. Without haproxy (and no way to install it) the start fails,
 * and so does this.
 */
describe('npm run cluster', () => {
  let cli: ChildProcessWithoutNullStreams;
  let output = '';
  let ready: Ready;

  beforeAll(async () => {
    // Installed here (apt-get, when missing and root) rather than inside the cluster's start, whose wait is short.
    ensureHaproxy();
    cli = spawn(
      process.execPath,
      [resolve(__dirname, '../../dist/bench/cluster/cluster.cli.js'), '--scale', '0.01'],
      {
        env: { PATH: process.env.PATH },
      },
    );
    cli.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    cli.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    ready = await new Promise<Ready>((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready line within 50 s:\n${output}`)), 50_000);
      const check = () => {
        const line = /^(\{"cluster":"ready".*)$/m.exec(output)?.[1];
        if (!line) return;
        clearTimeout(timer);
        resolveReady(JSON.parse(line) as Ready);
      };
      cli.stdout.on('data', check);
      cli.once('exit', (code) => reject(new Error(`npm run cluster exited (${code}):\n${output}`)));
    });
  }, 180_000);
  afterAll(() => {
    if (cli.exitCode === null) cli.kill('SIGKILL');
  });

  const servedBy = new Set<string>();
  const graphql = async (query: string, variables?: Record<string, unknown>) => {
    const response = await fetch(`${ready.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ready.token}` },
      body: JSON.stringify({ query, variables }),
    });
    servedBy.add(response.headers.get('x-served-by') ?? 'no x-served-by header');
    return (await response.json()) as { data?: any; errors?: unknown };
  };

  it('prints the balancer URL and a token that reads records through it, from both gateways', async () => {
    expect(output).toContain(`${ready.url}/graphql`);
    const list = await graphql('{ leads(pageSize: 5) { total items { id lastName } } }');
    expect(list.errors).toBeUndefined();
    expect(list.data.leads.total).toBeGreaterThan(0);
    const id = list.data.leads.items[0].id as string;
    // Round robin: consecutive single reads land on both gateways, and each answers the same record.
    for (let i = 0; i < 4; i++) {
      const one = await graphql('query ($id: ID!) { lead(id: $id) { id lastName } }', { id });
      expect(one).toEqual({ data: { lead: { id, lastName: list.data.leads.items[0].lastName } } });
    }
    expect([...servedBy].sort()).toEqual(['gateway-1', 'gateway-2']);
  });

  it('passes a graphql-ws subscription through: an export of the seeded leads reports its progress to the end', async () => {
    const started = await graphql(
      'mutation { startExport(input: { entityType: LEAD, format: CSV, fields: ["id", "lastName"] }) { id } }',
    );
    expect(started.errors).toBeUndefined();
    const client = createClient({
      url: `${ready.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${ready.token}` },
      retryAttempts: 0,
    });
    const statuses: string[] = [];
    try {
      await new Promise<void>((resolveDone, reject) => {
        const timer = setTimeout(() => reject(new Error(`no COMPLETED: ${statuses.join(',')}`)), 30_000);
        client.subscribe(
          {
            query: 'subscription ($id: ID!) { exportProgress(jobId: $id) { status rowsExported } }',
            variables: { id: started.data.startExport.id },
          },
          {
            next: (value) => {
              const job = (value.data as { exportProgress?: { status: string } } | undefined)?.exportProgress;
              if (job) statuses.push(job.status);
              if (job?.status === 'COMPLETED') {
                clearTimeout(timer);
                resolveDone();
              }
            },
            error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
            complete: () => {
              clearTimeout(timer);
              resolveDone();
            },
          },
        );
      });
    } finally {
      await client.dispose();
    }
    expect(statuses.at(-1)).toBe('COMPLETED');
  });

  it('on SIGINT stops every process it started and removes its directories', async () => {
    expect(ready.pids.length).toBeGreaterThanOrEqual(1 + 1 + 2 + 2 + 2 + 3); // haproxy, pgbouncer, 2+2, pair, redis
    expect(ready.pids.every(alive)).toBe(true);
    const exited = new Promise<number | null>((resolveExit) => cli.once('exit', resolveExit));
    cli.kill('SIGINT');
    expect(await exited).toBe(0);
    // Postgres backends and the like may outlive their parent by a moment.
    for (let i = 0; i < 50 && ready.pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
    expect(ready.pids.filter(alive)).toEqual([]);
    expect(ready.dirs.filter((dir) => existsSync(dir))).toEqual([]);
  }, 30_000);
});
