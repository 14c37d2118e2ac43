import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { TokenService } from '../identity';
import type { BenchContext, BenchResult, BenchScenario } from '../kernel';

const JWT_SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';
const IO_MS = 100;
const CPU_MS = 150;

/** SHA-256 rounds that take about `ms` on this machine (the CPU steps' real computation). */
function calibrateRounds(ms: number): number {
  let digest = createHash('sha256').update('calibrate').digest();
  const rounds = 50_000;
  const started = performance.now();
  for (let i = 0; i < rounds; i++) digest = createHash('sha256').update(digest).digest();
  return Math.round((rounds / (performance.now() - started)) * ms);
}

/** The far side of the I/O steps: answers after `ms`. */
async function slowServer(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? IO_MS);
    req.resume();
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    }, ms);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** 6 I/O steps of ~100 ms and 4 CPU steps of ~150 ms in two parallel branches between a fetch and a final call. */
function mixedWorkflow(url: string, rounds: number) {
  const io = (key: string, type: string, dependsOn: string[]) => ({
    key,
    name: key,
    type,
    action: 'http.request',
    dependsOn,
    config: { url: `${url}/slow?ms=${IO_MS}` },
  });
  const cpu = (key: string, type: string, dependsOn: string[]) => ({
    key,
    name: key,
    type,
    action: 'compute.hash',
    dependsOn,
    config: { of: `'${key}' & input.n`, rounds },
  });
  return [
    io('fetch', 'api', []),
    ...['A', 'B'].flatMap((branch) => [
      io(`enrich${branch}`, 'http', ['fetch']),
      cpu(`score${branch}`, 'score', [`enrich${branch}`]),
      cpu(`digest${branch}`, 'hash', [`score${branch}`]),
      io(`notify${branch}`, 'webhook', [`digest${branch}`]),
    ]),
    io('final', 'api', ['notifyA', 'notifyB']),
  ];
}

interface ModeFigures {
  makespanMs: number;
  runP50Ms: number;
  runP95Ms: number;
  eventLoopP99Ms: number;
  failed: number;
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;

async function runMode(
  context: BenchContext,
  mode: 'single' | 'partitioned',
  options: { databaseUrl: string; serverUrl: string; rounds: number; runs: number; token: string },
): Promise<ModeFigures> {
  const metricsPort = await context.freePort();
  const gateway = context.startProcess('main', {
    NODE_ENV: 'production',
    JWT_SECRET,
    DATABASE_URL: options.databaseUrl,
    // No Redis: the gateway runs the steps itself, so its event loop is the one CPU steps would block.
    REDIS_URL: '',
    PORT: '0',
    HOST: '127.0.0.1',
    METRICS_PORT: String(metricsPort),
    LOG_LEVEL: 'info',
    WORKFLOW_ROUTING: mode,
    WORKFLOW_HTTP_ALLOWLIST: `${options.serverUrl}/`,
    WORKFLOW_CPU_CONCURRENCY: String(availableParallelism()),
  });
  try {
    const [, graphqlUrl] = await gateway.waitFor(/"url":"(http:\/\/[^"]+)\/graphql"/);
    const url = graphqlUrl!;
    const { createWorkflow } = await context.graphql(
      url,
      options.token,
      'mutation ($input: CreateWorkflowInput!) { createWorkflow(input: $input) { id } }',
      { input: { name: `bench ${mode}`, steps: mixedWorkflow(options.serverUrl, options.rounds) } },
    );
    const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    await context.eventLoopP99(metricsUrl);
    const runIds = await Promise.all(
      Array.from({ length: options.runs }, async (_, n) => {
        const { runWorkflow } = await context.graphql(
          url,
          options.token,
          'mutation ($id: ID!, $input: JSON) { runWorkflow(id: $id, input: $input) { id } }',
          { id: createWorkflow!.id, input: { n } },
        );
        return runWorkflow!.id as string;
      }),
    );
    const done = new Map<string, { status: string; createdAt: string; finishedAt: string }>();
    const deadline = Date.now() + 10 * 60_000;
    while (done.size < runIds.length) {
      if (Date.now() > deadline)
        throw new Error(
          `${mode}: ${runIds.length - done.size} runs still unfinished after 10 minutes:\n${gateway.output().slice(-2000)}`,
        );
      // Once a second: polling competes with the runs for the gateway's CPU in both modes.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      for (const id of runIds.filter((candidate) => !done.has(candidate))) {
        const { workflowRun } = await context.graphql(
          url,
          options.token,
          'query ($id: ID!) { workflowRun(id: $id) { status createdAt finishedAt } }',
          { id },
        );
        if (workflowRun!.status !== 'RUNNING') done.set(id, workflowRun as never);
      }
    }
    const eventLoopP99Ms = await context.eventLoopP99(metricsUrl);
    const runs = [...done.values()];
    const starts = runs.map((run) => Date.parse(run.createdAt));
    const ends = runs.map((run) => Date.parse(run.finishedAt));
    const durations = runs
      .map((run) => Date.parse(run.finishedAt) - Date.parse(run.createdAt))
      .sort((a, b) => a - b);
    return {
      makespanMs: Math.max(...ends) - Math.min(...starts),
      runP50Ms: quantile(durations, 0.5),
      runP95Ms: quantile(durations, 0.95),
      eventLoopP99Ms,
      failed: runs.filter((run) => run.status !== 'COMPLETED').length,
    };
  } finally {
    await gateway.stop();
  }
}

async function partitionedScenario(context: BenchContext): Promise<BenchResult> {
  const runs = Math.max(10, Math.round(50 * context.scale));
  const db = await context.openDatabase('workflows', {
    companies: 1,
    users: 2,
    accounts: 0,
    leads: 0,
    deals: 0,
  });
  const [user] = await db.query<Array<{ id: string; company_id: string }>>(
    'SELECT id, company_id FROM users ORDER BY id LIMIT 1',
  );
  await db.query('DELETE FROM workflows');
  const databaseUrl = (db.options as { url: string }).url;
  await db.destroy();
  const token = await new TokenService({ secret: JWT_SECRET }).mint(user!.id, user!.company_id, 3600);
  const rounds = calibrateRounds(CPU_MS);
  context.log(`CPU steps: ${rounds} SHA-256 rounds (~${CPU_MS} ms here); ${runs} runs per mode`);
  const { url: serverUrl, server } = await slowServer();
  try {
    const options = { databaseUrl, serverUrl, rounds, runs, token };
    // Interleaved: single, partitioned, single, partitioned; each figure is the mean of its mode's two rounds.
    const results: Record<'single' | 'partitioned', ModeFigures[]> = { single: [], partitioned: [] };
    for (let round = 0; round < 2; round++) {
      for (const mode of ['single', 'partitioned'] as const) {
        const figures = await runMode(context, mode, options);
        context.log(`${mode} round ${round + 1}: ${JSON.stringify(figures)}`);
        results[mode].push(figures);
      }
    }
    const mean = (list: ModeFigures[]) =>
      Object.fromEntries(
        (Object.keys(list[0]!) as Array<keyof ModeFigures>).map((key) => [
          key,
          list.reduce((sum, figures) => sum + figures[key], 0) / list.length,
        ]),
      ) as unknown as ModeFigures;
    const partitioned = mean(results.partitioned);
    const single = mean(results.single);
    return {
      scenario: 'workflow.partitioned',
      description: `${runs} runs at once of 6 I/O steps (~${IO_MS} ms) + 4 CPU steps (~${CPU_MS} ms) in two branches, steps run by the gateway, ${availableParallelism()} cores`,
      measured: {
        ...partitioned,
        makespanReductionPct: 100 * (1 - partitioned.makespanMs / single.makespanMs),
        runP95ReductionPct: 100 * (1 - partitioned.runP95Ms / single.runP95Ms),
      },
      baseline: { ...single },
      baselineName: 'one queue with the same total concurrency, CPU steps inline (WORKFLOW_ROUTING=single)',
      ratio: partitioned.makespanMs / single.makespanMs,
      ratioOf: 'makespan partitioned / single (lower is better)',
    };
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

export const workflowBench: readonly BenchScenario[] = [
  { name: 'workflow.partitioned', run: partitionedScenario },
];
