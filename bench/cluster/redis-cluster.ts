import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/*
 * A real Redis Cluster of masters only (no replicas) on loopback, made in a temporary directory and removed by stop().
 * Used by the integration tests and by `npm run cluster`; it needs redis-server and redis-cli (Debian's redis-server
 * package) and nothing but node's own modules.
 */

const run = promisify(execFile);

export interface RedisClusterOptions {
  /** How many masters share the 16384 slots (redis-cli wants at least 3). */
  masters?: number;
  /** Where the nodes keep their cluster config files; a fresh temporary directory (removed by stop()) if absent. */
  dir?: string;
}

export interface RedisCluster {
  /** `127.0.0.1:port` of each master, in the order they were started. */
  nodes: string[];
  /** Kills every node and removes the directory if this launcher made it. */
  stop(): Promise<void>;
  /** SIGKILLs master i (its slots become unavailable: there are no replicas to fail over to). */
  kill(i: number): Promise<void>;
}

export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  if (!Number.isInteger(masters) || masters < 3) {
    throw new Error(
      `startRedisCluster: masters must be an integer >= 3 (redis-cli's minimum), got ${masters}`,
    );
  }
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'crm-redis-cluster-'));
  const servers: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(servers.map(killProcess));
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const nodes: string[] = [];
    for (let i = 0; i < masters; i++) {
      // The cluster bus port is chosen too: the default (port + 10000) can fall outside 65535 for ephemeral ports.
      const [port, busPort] = [await freePort(), await freePort()];
      servers.push(await startNode(port, busPort, dir));
      nodes.push(`127.0.0.1:${port}`);
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes']);
    await waitForClusterOk(nodes);
    return {
      nodes,
      stop,
      async kill(i) {
        const server = servers[i];
        if (!server) throw new Error(`startRedisCluster: no node ${i} (there are ${servers.length})`);
        await killProcess(server);
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function startNode(port: number, busPort: number, dir: string): Promise<ChildProcess> {
  const server = spawn('redis-server', [
    ...['--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1'],
    ...['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--dir', dir],
    ...['--save', '', '--appendonly', 'no'],
  ]);
  return new Promise((resolve, reject) => {
    let output = '';
    server.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept')) resolve(server);
    });
    server.once('error', reject);
    server.once('exit', (code) => reject(new Error(`redis-server :${port} exited (${code}):\n${output}`)));
  });
}

/** Every node must agree the cluster is ok (all slots covered, gossip settled) before a client may use it. */
async function waitForClusterOk(nodes: string[]): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const infos = await Promise.all(
      nodes.map(async (node) => {
        const port = node.split(':')[1]!;
        return (await run('redis-cli', ['-p', port, 'cluster', 'info'])).stdout;
      }),
    );
    if (infos.every((info) => info.includes('cluster_state:ok'))) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Redis Cluster ${nodes.join(',')} did not reach cluster_state:ok in 10 s`);
}

function killProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}
