import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { BenchProcess } from '../../src/modules/kernel';
import { startProcess } from '../processes';
import { startHaproxy, type Haproxy } from './haproxy';
import { startPgBouncer, type PgBouncer } from './pgbouncer';
import { freeLoopbackPort, startPostgresPair, type PostgresPair } from './postgres-pair';
import { startRedisCluster, type RedisCluster } from './redis-cluster';

const ROOT = resolve(__dirname, '../../..');
const run = promisify(execFile);

/** `npm run seed`'s default sizes: scale 1 of the local cluster. */
const SEED_DEFAULTS = { companies: 10, users: 200, accounts: 2_000, leads: 20_000, deals: 10_000 };

export interface LocalClusterOptions {
  /** Seeded data as a fraction of `npm run seed`'s defaults (20k leads at 1); default 0.1, a small demo. */
  scale?: number;
  /** Gateways behind the balancer (default 2). */
  gateways?: number;
  /** Worker processes (default 2). */
  workers?: number;
  /** Extra settings for every gateway and worker (e.g. a shorter lock). */
  env?: Record<string, string>;
  log?: (message: string) => void;
}

/** A gateway or worker the cluster started, which it can kill and start again (on the same port). */
export interface ClusterProcess {
  name: string;
  /** A gateway's Prometheus listener (the same across restarts). */
  metricsUrl?: string;
  /** The running process, if any. */
  current(): BenchProcess | undefined;
  /** Starts it (again) and resolves once it is ready (a gateway: `/readyz` answers 200). */
  start(): Promise<void>;
  /** Kills it with `signal` (default SIGKILL: a crash) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface LocalCluster {
  /** The balancer's URL (GraphQL at `${url}/graphql`, WebSocket too). */
  url: string;
  /** An admin token of the largest seeded company. */
  token: string;
  adminEmail: string;
  /** The primary's `crm` database, directly (not through PgBouncer). */
  databaseUrl: string;
  replicaDatabaseUrl: string;
  pair: PostgresPair;
  redis: RedisCluster;
  haproxy: Haproxy;
  pgbouncer: PgBouncer;
  gateways: ClusterProcess[];
  workers: ClusterProcess[];
  /** Every process the cluster started that is running now. */
  pids(): Promise<number[]>;
  /** Every directory the cluster made. */
  dirs: string[];
  /** Stops everything it started and removes its directories. Idempotent. */
  stop(): Promise<void>;
}

function databaseUrl(serverUrl: string, database: string): string {
  return Object.assign(new URL(serverUrl), { pathname: `/${database}` }).toString();
}

/** A built CLI (dist/src/cli/<name>.cli.js) run to its end; its stdout. */
async function runCli(name: string, args: string[], env: Record<string, string>): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, [join(ROOT, `dist/src/cli/${name}.cli.js`), ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      cwd: ROOT,
      maxBuffer: 16 << 20,
    });
    return stdout;
  } catch (error) {
    throw new Error(`npm run ${name} failed: ${(error as { stderr?: string }).stderr ?? String(error)}`);
  }
}

function seedArgs(scale: number): string[] {
  if (!(scale > 0 && scale <= 10)) throw new Error(`scale must be a number in (0, 10], got ${scale}`);
  return Object.entries(SEED_DEFAULTS).flatMap(([flag, size]) => [
    `--${flag}`,
    String(Math.max(flag === 'companies' ? 2 : 10, Math.round(size * scale))),
  ]);
}

async function waitForReady(url: string, child: BenchProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null || child.process.signalCode !== null)
      throw new Error(`gateway exited before it was ready:\n${child.output().slice(-3000)}`);
    const ready = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) }).then(
      (response) => response.status === 200,
      () => false,
    );
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`gateway ${url} not ready within ${timeoutMs} ms:\n${child.output().slice(-3000)}`);
}

function clusterProcess(
  name: string,
  launch: () => BenchProcess,
  ready: (child: BenchProcess) => Promise<void>,
  metricsUrl?: string,
) {
  let child: BenchProcess | undefined;
  const managed: ClusterProcess = {
    name,
    metricsUrl,
    current: () => child,
    async start() {
      if (child && child.process.exitCode === null && child.process.signalCode === null) return;
      child = launch();
      await ready(child);
    },
    async kill(signal = 'SIGKILL') {
      const running = child;
      if (!running || running.process.exitCode !== null || running.process.signalCode !== null) return;
      const exited = new Promise((resolve) => running.process.once('exit', resolve));
      running.process.kill(signal);
      await exited;
    },
  };
  return managed;
}

/** The process id of a gateway or worker while it runs. */
function running(managed: ClusterProcess): number | undefined {
  const child = managed.current()?.process;
  return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
}

/** Stops a process gracefully, and kills it when it has not exited within `ms`. */
async function stopWithin(processToStop: ClusterProcess, ms: number): Promise<void> {
  const child = processToStop.current();
  if (!child) return;
  const timer = setTimeout(() => child.process.kill('SIGKILL'), ms);
  await processToStop.kill('SIGTERM');
  clearTimeout(timer);
}

/** Migrates and seeds (`npm run seed`, no vectors) the primary's database; the largest company's admin and a token. */
async function seedDemo(env: Record<string, string>, scale: number) {
  const seeded = await runCli('seed', [...seedArgs(scale), '--skip-vectors'], env);
  const adminEmail = /--email (\S+)\)/.exec(seeded)?.[1];
  if (!adminEmail) throw new Error(`npm run seed printed no admin email:\n${seeded}`);
  const token = await runCli('token', ['--email', adminEmail, '--ttl', String(7 * 24 * 3600)], env);
  return { adminEmail, token: token.trim() };
}

/** The gateways (each on a port of its own, kept across restarts) and the workers, not started yet. */
async function gatewaysAndWorkers(env: Record<string, string>, options: LocalClusterOptions) {
  const gatewayPorts: Array<{ port: number; metrics: number }> = [];
  for (let i = 0; i < (options.gateways ?? 2); i++)
    gatewayPorts.push({ port: await freeLoopbackPort(), metrics: await freeLoopbackPort() });
  const gateways = gatewayPorts.map(({ port, metrics }, i) =>
    clusterProcess(
      `gateway-${i + 1}`,
      () => startProcess('main', { ...env, PORT: String(port), METRICS_PORT: String(metrics) }),
      (child) => waitForReady(`http://127.0.0.1:${port}`, child),
      `http://127.0.0.1:${metrics}/metrics`,
    ),
  );
  const workers = Array.from({ length: options.workers ?? 2 }, (_, i) =>
    clusterProcess(
      `worker-${i + 1}`,
      // info: the worker says "worker started" once its processors run.
      () => startProcess('worker', { ...env, METRICS_PORT: '0', LOG_LEVEL: 'info' }),
      async (child) => void (await child.waitFor(/worker started/)),
    ),
  );
  return { gateways, workers, gatewayPorts };
}

/**
 * Postgres primary + one streaming replica, PgBouncer (transaction mode) in front of the primary, a 3-master Redis
 * Cluster, the schema migrated and seeded, gateways behind HAProxy and workers; resolves once every gateway is UP in
 * the balancer. On failure part-way, whatever was started is stopped.
 */
export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  const log = options.log ?? (() => undefined);
  const root = mkdtempSync(join(tmpdir(), 'crm-cluster-'));
  const stops: Array<() => Promise<void>> = [];
  const children: Array<() => number | undefined> = [];
  // When this process exits without stop() (an uncaught error, process.exit): no gateway, worker, pooler or balancer
  // stays; the Postgres pair has an exit hook of its own. The Redis nodes are not reached from here (their launcher
  // holds them), so a crash of this process can leave them: stop() is the way out.
  const onExit = () => {
    for (const pid of children.map((child) => child())) {
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
    process.removeListener('exit', onExit);
  };
  try {
    for (const dir of ['redis', 'storage', 'audit', 'exports']) mkdirSync(join(root, dir));
    log('starting Postgres primary + streaming replica ...');
    const pair = await startPostgresPair();
    stops.push(() => pair.stop());
    await pair.psql('primary', 'CREATE DATABASE crm');
    const primaryUrl = databaseUrl(pair.primaryUrl, 'crm');
    const replicaUrl = databaseUrl(pair.replicaUrl, 'crm');

    log('starting PgBouncer (transaction mode) and a 3-master Redis Cluster ...');
    const pgbouncer = await startPgBouncer({ upstreamUrl: primaryUrl, poolMode: 'transaction' });
    stops.push(() => pgbouncer.stop());
    children.push(() => pgbouncer.pid);
    const redis = await startRedisCluster({ masters: 3, dir: join(root, 'redis') });
    stops.push(() => redis.stop());

    const env: Record<string, string> = {
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      JWT_SECRET: randomBytes(32).toString('hex'),
      DATABASE_URL: pgbouncer.url,
      DATABASE_REPLICA_URLS: replicaUrl,
      // Read by the pooler fallback (wip/budget): named prepared statements do not survive PgBouncer 1.18's sessions.
      DATABASE_POOLER: 'pgbouncer',
      REDIS_CLUSTER_NODES: redis.nodes.join(','),
      STORAGE_DIR: join(root, 'storage'),
      AUDIT_ARCHIVE_DIR: join(root, 'audit'),
      EXPORT_DIR: join(root, 'exports'),
      HOST: '127.0.0.1',
      // Ctrl-C in a terminal signals every process of the group at once: Redis and Postgres may be gone before a
      // gateway has drained, and its shutdown then waits out this budget.
      SHUTDOWN_TIMEOUT_MS: '5000',
      ...options.env,
    };

    log('migrating and seeding ...');
    const { adminEmail, token } = await seedDemo({ ...env, DATABASE_URL: primaryUrl }, options.scale ?? 0.1);

    const { gateways, workers, gatewayPorts } = await gatewaysAndWorkers(env, options);
    children.push(...[...gateways, ...workers].map((managed) => () => running(managed)));
    stops.push(async () => {
      await Promise.all([...gateways, ...workers].map((managed) => stopWithin(managed, 8000)));
    });
    log(`starting ${gateways.length} gateways and ${workers.length} workers ...`);
    await Promise.all([...gateways, ...workers].map((managed) => managed.start()));

    const haproxy = await startHaproxy({
      dir: root,
      port: await freeLoopbackPort(),
      backends: gateways.map((gateway, i) => ({ name: gateway.name, port: gatewayPorts[i]!.port })),
    });
    stops.push(() => haproxy.stop());
    children.push(() => haproxy.pid);
    await haproxy.waitForUp();

    let stopping: Promise<void> | undefined;
    return {
      url: haproxy.url,
      token,
      adminEmail,
      databaseUrl: primaryUrl,
      replicaDatabaseUrl: replicaUrl,
      pair,
      redis,
      haproxy,
      pgbouncer,
      gateways,
      workers,
      dirs: [root, pair.dir],
      async pids() {
        const processes = [...gateways, ...workers].flatMap((managed) => running(managed) ?? []);
        return [
          haproxy.pid,
          ...(pgbouncer.pid ? [pgbouncer.pid] : []),
          ...processes,
          ...pair.pids(),
          ...(await redisPids(redis)),
        ];
      },
      stop: () => (stopping ??= stopAll()),
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** The redis-servers' process ids (INFO server's process_id). */
async function redisPids(redis: RedisCluster): Promise<number[]> {
  const pids: number[] = [];
  for (const node of redis.nodes) {
    const [, port] = node.split(':');
    const { stdout } = await run('redis-cli', ['-p', port!, 'info', 'server']).catch(() => ({ stdout: '' }));
    const pid = /process_id:(\d+)/.exec(stdout)?.[1];
    if (pid) pids.push(Number(pid));
  }
  return pids;
}
