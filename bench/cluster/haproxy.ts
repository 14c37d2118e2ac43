import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

/**
 * HAProxy (Debian's package) in front of the gateways: health checks on `GET /readyz`, WebSocket upgrades passed
 * through (graphql-ws), and a request whose connection to a gateway fails is sent to another one. Node built-ins only.
 */
export interface HaproxyBackend {
  /** Server name in HAProxy's config and stats (letters, digits, `-`, `_`). */
  name: string;
  port: number;
}

export interface HaproxyOptions {
  /** Directory for the config file and the stats socket (the caller's; not removed here). */
  dir: string;
  /** Listening port on 127.0.0.1. */
  port: number;
  backends: readonly HaproxyBackend[];
}

export interface Haproxy {
  url: string;
  pid: number;
  /** Each server's state as HAProxy's stats give it (`UP`, `DOWN`, `UP 1/2`, ...). */
  serverStates(): Promise<Record<string, string>>;
  /** Resolves once the named servers (default: all) are UP in HAProxy's health checks. */
  waitForUp(names?: readonly string[], timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Installs haproxy with apt-get when it is missing and this process may (root with apt-get), as the test setup does
 * for promtool; throws when it is still missing.
 */
export function ensureHaproxy(log: (message: string) => void = () => undefined): void {
  if (spawnSync('haproxy', ['-v']).status === 0) return;
  if (process.getuid?.() === 0 && spawnSync('apt-get', ['--version']).status === 0) {
    log('installing haproxy (apt-get install haproxy) ...');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'haproxy'], {
      stdio: 'ignore',
      env,
    });
  }
  if (spawnSync('haproxy', ['-v']).status !== 0)
    throw new Error('haproxy is not installed and could not be installed: apt-get install haproxy');
}

function config(options: HaproxyOptions, socket: string): string {
  for (const backend of options.backends)
    if (!/^[A-Za-z0-9_-]+$/.test(backend.name))
      throw new Error(`haproxy backend name must be letters, digits, - and _: got "${backend.name}"`);
  return `global
  maxconn 4096
  stats socket ${socket} mode 600 level admin

defaults
  mode http
  option httplog
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  # An upgraded connection (graphql-ws) is a tunnel: it stays open while either side keeps it so.
  timeout tunnel 1h
  timeout http-keep-alive 10s
  # A request whose connection to a gateway fails (killed, restarting) goes to another one; nothing that reached a
  # gateway is retried here (that one may have acted on it): clients retry their idempotent reads themselves.
  retries 3
  option redispatch 1
  retry-on conn-failure

frontend gateway
  bind 127.0.0.1:${options.port}
  default_backend gateways

backend gateways
  balance roundrobin
  # Which gateway answered (for tests and for a person reading curl -i).
  http-response set-header X-Served-By %s
  option httpchk GET /readyz
  http-check expect status 200
  # A gateway that stops answering is out within ~1 s (or at its first refused connection), and back after two
  # passing checks.
  default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down
${options.backends.map((backend) => `  server ${backend.name} 127.0.0.1:${backend.port} check`).join('\n')}
`;
}

/** One command on HAProxy's runtime API (the stats socket); its answer. */
function runtimeCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = '';
    const client = connect(socket, () => client.end(`${command}\n`));
    client.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    client.once('end', () => resolve(answer));
    client.once('error', reject);
  });
}

export async function startHaproxy(options: HaproxyOptions): Promise<Haproxy> {
  ensureHaproxy();
  const file = join(options.dir, 'haproxy.cfg');
  const socket = join(options.dir, 'haproxy.sock');
  writeFileSync(file, config(options, socket));
  const check = spawnSync('haproxy', ['-c', '-q', '-f', file], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`haproxy rejected ${file}: ${check.stderr || check.stdout}`);
  // -db: stay in the foreground (no daemon), so it is this process's child and dies with a signal from it.
  const child: ChildProcess = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
  child.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const serverStates = async () => {
    const csv = await runtimeCommand(socket, 'show stat');
    const [header, ...rows] = csv.replace(/^# /, '').trim().split('\n');
    const columns = header!.split(',');
    const [proxy, server, status] = ['pxname', 'svname', 'status'].map((name) => columns.indexOf(name));
    const states: Record<string, string> = {};
    for (const row of rows) {
      const cells = row.split(',');
      if (cells[proxy!] === 'gateways' && !['FRONTEND', 'BACKEND'].includes(cells[server!]!))
        states[cells[server!]!] = cells[status!]!;
    }
    return states;
  };

  const haproxy: Haproxy = {
    url: `http://127.0.0.1:${options.port}`,
    pid: child.pid!,
    serverStates,
    async waitForUp(names = options.backends.map((backend) => backend.name), timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let states: Record<string, string> = {};
      while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`haproxy exited (${child.exitCode}):\n${output}`);
        states = await serverStates().catch(() => ({}));
        if (names.every((name) => states[name] === 'UP')) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(
        `haproxy servers ${names.join(', ')} not UP within ${timeoutMs} ms: ${JSON.stringify(states)}`,
      );
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
  // The stats socket is there once HAProxy has started.
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`haproxy exited (${child.exitCode}):\n${output}`);
    if (
      await serverStates().then(
        () => true,
        () => false,
      )
    )
      return haproxy;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await haproxy.stop();
  throw new Error(`haproxy did not open its stats socket ${socket}:\n${output}`);
}
