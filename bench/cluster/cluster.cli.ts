import { parseArgs } from 'node:util';
import { startLocalCluster, type LocalCluster } from './local-cluster';

const USAGE = "npm run cluster [-- --scale <fraction of npm run seed's sizes, default 0.1>]";

/**
 * `npm run cluster`: the local cluster (bench/cluster/local-cluster.ts) until Ctrl-C or SIGTERM, which stop everything
 * it started. Prints the balancer's URL and an admin token, and one JSON line (`{"cluster":"ready",...}`) with every
 * process id and directory, for scripts.
 */
async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({ options: { scale: { type: 'string', default: '0.1' } }, strict: true }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\nusage: ${USAGE}\n`);
    process.exit(64);
  }
  const scale = Number(values.scale);
  if (!(scale > 0 && scale <= 10)) {
    process.stderr.write(`--scale must be a number in (0, 10], got "${values.scale}"\nusage: ${USAGE}\n`);
    process.exit(64);
  }
  const log = (message: string) => process.stderr.write(`[cluster] ${message}\n`);

  const started: { cluster?: LocalCluster } = {};
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping everything ...`);
    await started.cluster?.stop();
    log('stopped');
    process.exit(0);
  };
  // Before the start, so a Ctrl-C during it stops what has been started so far (when the start returns or fails).
  let interrupted: string | undefined;
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => (started.cluster ? void stop(signal) : (interrupted = signal)));

  const startedAt = Date.now();
  const cluster = (started.cluster = await startLocalCluster({ scale, log }));
  if (interrupted) return stop(interrupted);
  process.stdout.write(
    `\nlocal cluster up in ${((Date.now() - startedAt) / 1000).toFixed(1)} s\n` +
      `  GraphQL (HTTP and WebSocket) through HAProxy: ${cluster.url}/graphql\n` +
      `  admin token (${cluster.adminEmail}):\n  ${cluster.token}\n` +
      `  try: curl -s ${cluster.url}/graphql -H 'content-type: application/json' -H "authorization: Bearer $TOKEN" ` +
      `-d '{"query":"{ me { name } leads(pageSize: 3) { total items { lastName } } }"}'\n` +
      `  Postgres primary ${cluster.databaseUrl} (PgBouncer ${cluster.pgbouncer.url}), replica ${cluster.replicaDatabaseUrl}\n` +
      `  Redis Cluster ${cluster.redis.nodes.join(',')}\n` +
      `Ctrl-C stops everything.\n`,
  );
  process.stdout.write(
    `${JSON.stringify({ cluster: 'ready', url: cluster.url, token: cluster.token, pids: await cluster.pids(), dirs: cluster.dirs })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`npm run cluster failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
