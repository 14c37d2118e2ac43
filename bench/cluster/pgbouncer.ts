import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/*
 * A PgBouncer of its own (Debian's `pgbouncer` package) for tests, benchmarks and `npm run cluster`: a temp directory
 * with its ini and auth file, a free loopback port, started in the foreground and stopped by its caller. Node's
 * built-ins only (no jest, no pg), so every caller can use it.
 */

export interface PgBouncerOptions {
  /** The Postgres database it pools for (`postgres://user@host:port/db`); its host and port serve every database. */
  upstreamUrl: string;
  /** Default `transaction`, the mode that breaks what a session would keep (the one worth testing against). */
  poolMode?: 'transaction' | 'session' | 'statement';
  /** Server connections per database and user (`default_pool_size`). Default 20. */
  poolSize?: number;
  /** Client connections it accepts (`max_client_conn`). Default 500. */
  maxClientConn?: number;
  /** Port to listen on (loopback). Default a free one. */
  port?: number;
}

export interface PgBouncer {
  /** The upstream database, through PgBouncer. */
  url: string;
  port: number;
  pid?: number;
  /** Another database of the same server, through PgBouncer. */
  urlFor(database: string): string;
  /** PgBouncer's admin console (`SHOW CLIENTS`, `SHOW POOLS`, ...), as the upstream user. */
  adminUrl: string;
  /** Its log so far. */
  output(): string;
  /** Stops it (SIGTERM: immediate shutdown) and removes its directory. */
  stop(): Promise<void>;
}

/** The pgbouncer binary, or an error that says how to install it. */
export function pgbouncerBinary(): string {
  for (const candidate of ['pgbouncer', '/usr/sbin/pgbouncer']) {
    if (spawnSync(candidate, ['--version']).status === 0) return candidate;
  }
  throw new Error('pgbouncer is not installed: apt-get install pgbouncer (Debian package), then run again');
}

export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** PgBouncer will not run as root: as root it is started as the `postgres` user, which then owns its directory. */
function runAs(): { user: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { user: 'postgres', uid: id('-u'), gid: id('-g') };
}

export async function startPgBouncer(options: PgBouncerOptions): Promise<PgBouncer> {
  const binary = pgbouncerBinary();
  const upstream = new URL(options.upstreamUrl);
  const user = decodeURIComponent(upstream.username || 'postgres');
  const database = upstream.pathname.slice(1) || 'postgres';
  const port = options.port ?? (await freeLoopbackPort());
  const dir = mkdtempSync(join(tmpdir(), 'crm-pgbouncer-'));
  const ini = join(dir, 'pgbouncer.ini');
  const host = upstream.hostname || '127.0.0.1';
  const upstreamPort = upstream.port || '5432';
  writeFileSync(
    ini,
    [
      '[databases]',
      `* = host=${host} port=${upstreamPort}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      `unix_socket_dir = ${dir}`,
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      `admin_users = ${user}`,
      `pool_mode = ${options.poolMode ?? 'transaction'}`,
      `max_client_conn = ${options.maxClientConn ?? 500}`,
      `default_pool_size = ${options.poolSize ?? 20}`,
      // No ignore_startup_parameters beyond the default: a client sending `options` or `statement_timeout` is refused,
      // as a stock PgBouncer refuses it.
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'users.txt'), `"${user}" ""\n`);
  const as = runAs();
  if (as) for (const file of [dir, ini, join(dir, 'users.txt')]) chownSync(file, as.uid, as.gid);

  const child = spawn(binary, [...(as ? ['-u', as.user] : []), ini], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitUntil(
      () => /listening on 127\.0\.0\.1/.test(log),
      () => child.exitCode !== null,
      10_000,
    );
  } catch (error) {
    await stop();
    throw new Error(`pgbouncer did not start (${(error as Error).message}):\n${log}`);
  }
  const urlFor = (name: string) => {
    const url = new URL(options.upstreamUrl);
    url.hostname = '127.0.0.1';
    url.port = String(port);
    url.pathname = `/${name}`;
    return url.toString();
  };
  return {
    url: urlFor(database),
    port,
    pid: child.pid,
    urlFor,
    adminUrl: urlFor('pgbouncer'),
    output: () => log,
    stop,
  };
}

async function waitUntil(ready: () => boolean, failed: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (failed()) throw new Error('it exited');
    if (Date.now() > deadline) throw new Error(`not listening after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
