import { execFile, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * A real Postgres streaming pair (primary + one hot standby) in a temp directory on loopback ports, for the
 * read-replica tests, `npm run cluster` and the fault bench. Dependency-light on purpose (node built-ins and the
 * Postgres binaries only: no `pg`, no jest), so tests, the cluster command and the bench share it.
 *
 * The shared cluster on :5432 is not touched: this pair has its own data directories, ports and socket directory.
 */
export interface PostgresPairOptions {
  /** Parent of the pair's temp directory (default: the OS temp dir). The temp directory is removed by `stop()`. */
  dir?: string;
  /** Primary's port (default: a free loopback port). */
  primaryPort?: number;
  /** Replica's port (default: a free loopback port). */
  replicaPort?: number;
  /** max_connections of each server (default 200: two gateways, two workers and PgBouncer fit). */
  maxConnections?: number;
}

export interface PostgresPair {
  primaryUrl: string;
  replicaUrl: string;
  primaryPort: number;
  replicaPort: number;
  /** The temp directory holding both data directories, their logs and the unix sockets. */
  dir: string;
  /** Stops the replica cleanly (pg_ctl stop -m fast). */
  stopReplica(): Promise<void>;
  /** Starts the replica again and waits until it streams from the primary. */
  startReplica(): Promise<void>;
  /** Kills the replica's postmaster with SIGKILL (a crash, not a shutdown). `startReplica()` brings it back. */
  killReplica(): Promise<void>;
  /** Resolves once the replica is in recovery and the primary's pg_stat_replication shows it streaming. */
  waitForStreaming(timeoutMs?: number): Promise<void>;
  /** Runs one SQL statement through psql on the primary or the replica; the rows as tab-separated lines. */
  psql(target: 'primary' | 'replica', sql: string, database?: string): Promise<string>;
  /** The postmasters' process ids (of those running). */
  pids(): number[];
  /** Stops both servers and removes the temp directory. Idempotent. */
  stop(): Promise<void>;
}

const run = promisify(execFile);

/** The newest installed Postgres's bin directory (Debian's /usr/lib/postgresql/<major>/bin), or pg_config's. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const majors = readdirSync(root)
      .filter((name) => /^\d+$/.test(name) && existsSync(join(root, name, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (majors[0]) return join(root, majors[0], 'bin');
  }
  const pgConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  const bindir = pgConfig.status === 0 ? pgConfig.stdout.trim() : '';
  if (bindir && existsSync(join(bindir, 'initdb'))) return bindir;
  throw new Error(
    'Postgres server binaries not found (looked for /usr/lib/postgresql/<major>/bin/initdb and pg_config --bindir): ' +
      'install the postgresql package',
  );
}

/** A loopback TCP port that was free a moment ago. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

const isRoot = process.getuid?.() === 0;

/** initdb, pg_ctl and pg_basebackup refuse to run as root: as root they run as the `postgres` OS user. */
function asPostgres(bin: string, args: string[]): [string, string[]] {
  return isRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

async function runAsPostgres(bin: string, args: string[]): Promise<string> {
  const [command, argv] = asPostgres(bin, args);
  try {
    // cwd: the postgres user may not be able to enter the caller's directory (root's).
    const { stdout } = await run(command, argv, { cwd: '/', encoding: 'utf8', maxBuffer: 16 << 20 });
    return stdout;
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    throw new Error(`${[command, ...argv].join(' ')} failed: ${stderr || stdout || String(error)}`);
  }
}

function postgresOwner(): { uid: number; gid: number } | undefined {
  if (!isRoot) return undefined;
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0)
    throw new Error('running as root, but there is no `postgres` OS user');
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function serverSettings(port: number, socketDir: string, maxConnections: number): string {
  return [
    '',
    '# postgres-pair',
    "listen_addresses = '127.0.0.1'",
    `port = ${port}`,
    `unix_socket_directories = '${socketDir}'`,
    `max_connections = ${maxConnections}`,
    'wal_level = replica',
    'max_wal_senders = 10',
    'max_replication_slots = 10',
    'hot_standby = on',
    "wal_keep_size = '256MB'",
    // A throwaway pair: durability against an OS crash buys nothing here, and fsync costs the shared disk. Commits
    // stay synchronous: with synchronous_commit off, pg_current_wal_lsn() (the WAL *written*) can be behind a commit
    // that returned, and read-your-writes compares replicas against it.
    'fsync = off',
    'full_page_writes = off',
    '',
  ].join('\n');
}

/** Starts a primary and a streaming replica; resolves once the replica streams. */
export async function startPostgresPair(options: PostgresPairOptions = {}): Promise<PostgresPair> {
  const bin = postgresBinDir();
  const owner = postgresOwner();
  const parent = options.dir ?? tmpdir();
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(join(parent, 'crm-pgpair-'));
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const primaryDir = join(dir, 'primary');
  const replicaDir = join(dir, 'replica');
  const primaryPort = options.primaryPort ?? (await freeLoopbackPort());
  let replicaPort = options.replicaPort ?? (await freeLoopbackPort());
  while (replicaPort === primaryPort) replicaPort = await freeLoopbackPort();
  const maxConnections = options.maxConnections ?? 200;
  const tool = (name: string) => join(bin, name);
  const pgCtl = (dataDir: string, ...args: string[]) =>
    runAsPostgres(tool('pg_ctl'), ['-D', dataDir, ...args]);
  const startServer = (dataDir: string, log: string) =>
    pgCtl(dataDir, '-l', join(dir, log), '-w', '-t', '60', 'start');

  let stopped = false;
  const stopNow = () => {
    // On process exit: synchronous, immediate (no checkpoint), and both servers whatever state they are in.
    for (const dataDir of [replicaDir, primaryDir]) {
      if (!existsSync(join(dataDir, 'postmaster.pid'))) continue;
      const [command, argv] = asPostgres(tool('pg_ctl'), ['-D', dataDir, '-m', 'immediate', 'stop']);
      spawnSync(command, argv, { cwd: '/', stdio: 'ignore' });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const onExit = () => {
    if (!stopped) stopNow();
  };
  process.once('exit', onExit);

  const psql = async (target: 'primary' | 'replica', sql: string, database = 'postgres') => {
    const port = target === 'primary' ? primaryPort : replicaPort;
    const args = ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', database];
    try {
      const { stdout } = await run(
        tool('psql'),
        [...args, '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql],
        {
          encoding: 'utf8',
        },
      );
      return stdout.trim();
    } catch (error) {
      throw new Error(
        `psql on the ${target} (${sql}) failed: ${(error as { stderr?: string }).stderr ?? String(error)}`,
      );
    }
  };

  const waitForStreaming = async (timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const inRecovery = await psql('replica', 'SELECT pg_is_in_recovery()');
        const streaming = await psql(
          'primary',
          "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
        );
        if (inRecovery === 't' && Number(streaming) > 0) return;
        last = `in recovery: ${inRecovery}, streaming senders: ${streaming}`;
      } catch (error) {
        last = (error as Error).message;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(
      `the replica on :${replicaPort} did not start streaming within ${timeoutMs} ms (${last})`,
    );
  };

  const replicaLog = () => {
    try {
      return readFileSync(join(dir, 'replica.log'), 'utf8').slice(-2000);
    } catch {
      return '';
    }
  };

  try {
    await runAsPostgres(tool('initdb'), [
      '-D',
      primaryDir,
      '-A',
      'trust',
      '-U',
      'postgres',
      '--no-sync',
      '-E',
      'UTF8',
    ]);
    appendFileSync(join(primaryDir, 'pg_hba.conf'), '\nhost replication all 127.0.0.1/32 trust\n');
    appendFileSync(join(primaryDir, 'postgresql.conf'), serverSettings(primaryPort, dir, maxConnections));
    await startServer(primaryDir, 'primary.log');
    await runAsPostgres(tool('pg_basebackup'), [
      ...['-h', '127.0.0.1', '-p', String(primaryPort), '-U', 'postgres'],
      ...['-D', replicaDir, '-R', '-X', 'stream', '-c', 'fast', '--no-sync'],
    ]);
    // The base backup copied the primary's postgresql.conf: the later `port` line wins.
    appendFileSync(join(replicaDir, 'postgresql.conf'), `\nport = ${replicaPort}\n`);
    await startServer(replicaDir, 'replica.log');
    await waitForStreaming();
  } catch (error) {
    stopped = true;
    process.removeListener('exit', onExit);
    stopNow();
    throw error;
  }

  const replicaRunning = () => existsSync(join(replicaDir, 'postmaster.pid'));
  const postmasterPid = (dataDir: string) => {
    try {
      return Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return undefined;
    }
  };
  return {
    primaryUrl: `postgres://postgres@127.0.0.1:${primaryPort}/postgres`,
    replicaUrl: `postgres://postgres@127.0.0.1:${replicaPort}/postgres`,
    primaryPort,
    replicaPort,
    dir,
    psql,
    waitForStreaming,
    pids: () => [primaryDir, replicaDir].flatMap((dataDir) => postmasterPid(dataDir) ?? []),
    async stopReplica() {
      if (replicaRunning()) await pgCtl(replicaDir, '-m', 'fast', '-w', 'stop');
    },
    async startReplica() {
      try {
        await startServer(replicaDir, 'replica.log');
      } catch (error) {
        throw new Error(`${(error as Error).message}\nreplica.log:\n${replicaLog()}`);
      }
      await waitForStreaming();
    },
    async killReplica() {
      const pid = postmasterPid(replicaDir);
      if (pid === undefined) return;
      process.kill(pid, 'SIGKILL');
      // The postmaster's children notice its death and exit; pg_ctl start then finds a stale pid file and recovers.
      for (let i = 0; i < 100; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await waitForBackendsGone(replicaPort);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', onExit);
      for (const dataDir of [replicaDir, primaryDir]) {
        if (existsSync(join(dataDir, 'postmaster.pid'))) {
          await pgCtl(dataDir, '-m', 'fast', '-w', 'stop').catch(() => undefined);
        }
      }
      stopNow();
    },
  };
}

/** After a SIGKILLed postmaster, its backends hold the port until they exit (they do within a moment). */
async function waitForBackendsGone(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const busy = await new Promise<boolean>((resolve) => {
      const server = createServer()
        .once('error', () => resolve(true))
        .listen(port, '127.0.0.1', () => server.close(() => resolve(false)));
    });
    if (!busy) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
