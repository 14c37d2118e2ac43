import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { TokenService } from '../identity';
import type { DataSource } from 'typeorm';
import type { BenchContext, BenchResult, BenchScenario } from '../kernel';
import { CpuLedger, cpuStepMs, lowerBound } from './workflow.bench-bound';

const JWT_SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';
const IO_MS = 100;
const CPU_MS = 150;

/**
 * SHA-256 rounds that take about `ms` of CPU on this machine (the CPU steps' real computation); CPU time, so that
 * other processes slowing the wall clock do not shrink the workload.
 */
function calibrateRounds(ms: number): number {
  let digest = createHash('sha256').update('calibrate').digest();
  const rounds = 50_000;
  const started = process.cpuUsage();
  for (let i = 0; i < rounds; i++) digest = createHash('sha256').update(digest).digest();
  const used = process.cpuUsage(started);
  return Math.round((rounds / ((used.user + used.system) / 1000)) * ms);
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

/** The longest path (fetch, enrich, score, digest, notify, final) and where the CPU steps sit on every path. */
const SHAPE = { pathIo: 4, pathCpu: 2, cpuSteps: 4, ioBeforeFirstCpu: 2, ioAfterLastCpu: 2 };
const STEPS_PER_RUN = 10;

interface ModeFigures {
  makespanMs: number;
  boundMs: number;
  ratioToBound: number;
  criticalPathMs: number;
  cpuTermMs: number;
  cpuStepMs: number;
  coresForSteps: number;
  otherCores: number;
  /** From a step's last dependency finishing to the step's claim (queue latency between dependent steps). */
  handoffMeanMs: number;
  handoffP95Ms: number;
  /** The gateway's CPU beyond the CPU steps' own work, and its Postgres backends' CPU, per step. */
  gatewayCpuPerStepMs: number;
  postgresCpuPerStepMs: number;
  runP50Ms: number;
  runP95Ms: number;
  eventLoopP99Ms: number;
  failed: number;
}

interface FinishedRun {
  status: string;
  createdAt: string;
  finishedAt: string;
  steps: Array<{ key: string; startedAt: string; finishedAt: string }>;
}

/** Backends of the bench database other than `db`'s own: the gateway's pool. */
async function backendPids(db: DataSource): Promise<number[]> {
  const rows = await db.query<Array<{ pid: number }>>(
    'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
  );
  return rows.map((row) => row.pid);
}

/** Per step with dependencies: its claim minus its last dependency's finish. */
function handoffs(runs: readonly FinishedRun[], steps: ReturnType<typeof mixedWorkflow>): number[] {
  return runs
    .flatMap((run) => {
      const finished = new Map(run.steps.map((step) => [step.key, Date.parse(step.finishedAt)]));
      return run.steps.flatMap((step) => {
        const dependsOn = steps.find((candidate) => candidate.key === step.key)!.dependsOn;
        if (dependsOn.length === 0) return [];
        return [Date.parse(step.startedAt) - Math.max(...dependsOn.map((key) => finished.get(key)!))];
      });
    })
    .sort((a, b) => a - b);
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;

async function runMode(
  context: BenchContext,
  mode: 'single' | 'partitioned',
  options: {
    db: DataSource;
    databaseUrl: string;
    serverUrl: string;
    rounds: number;
    runs: number;
    token: string;
  },
): Promise<ModeFigures> {
  const steps = mixedWorkflow(options.serverUrl, options.rounds);
  const cpuStep = steps.find((step) => step.action === 'compute.hash')!;
  const calibrate = () => cpuStepMs(cpuStep.action, cpuStep.config, { input: { n: 0 }, steps: {} });
  const cpuBefore = calibrate();
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
    // waitFor gives up after 30 s; a gateway booting on a loaded machine gets two minutes.
    let graphqlUrl: string | undefined;
    for (let attempt = 1; !graphqlUrl; attempt++)
      graphqlUrl = await gateway
        .waitFor(/"url":"(http:\/\/[^"]+)\/graphql"/)
        .then(([, found]) => found)
        .catch((error: unknown) => {
          if (attempt >= 4 || gateway.process.exitCode !== null) throw error;
          return undefined;
        });
    const url = graphqlUrl;
    const { createWorkflow } = await context.graphql(
      url,
      options.token,
      'mutation ($input: CreateWorkflowInput!) { createWorkflow(input: $input) { id } }',
      { input: { name: `bench ${mode}`, steps } },
    );
    const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    await context.eventLoopP99(metricsUrl);
    const own = async () => ({
      gateway: [gateway.process.pid!],
      postgres: await backendPids(options.db),
      bench: [process.pid],
    });
    const ledger = new CpuLedger(await own());
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
    const done = new Map<string, FinishedRun>();
    let pollFailures = 0;
    const deadline = Date.now() + 10 * 60_000;
    while (done.size < runIds.length) {
      if (Date.now() > deadline)
        throw new Error(
          `${mode}: ${runIds.length - done.size} runs still unfinished after 10 minutes:\n${gateway.output().slice(-2000)}`,
        );
      // Every run must finish, so one unfinished run at a time is polled, once a second while it runs: the
      // makespan comes from the runs' own timestamps, and polling all of them would compete with the runs for the
      // gateway and Postgres.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      for (const id of runIds.filter((candidate) => !done.has(candidate))) {
        const answer = await context
          .graphql(
            url,
            options.token,
            'query ($id: ID!) { workflowRun(id: $id) { status createdAt finishedAt steps { key startedAt finishedAt } } }',
            { id },
          )
          .catch((error: unknown) => {
            // On a loaded machine a poll may fail (SERVICE_UNAVAILABLE when the pool is short, a reset keep-alive
            // socket): ask again at the next tick, unless the gateway keeps failing.
            if (++pollFailures > 10) throw error;
            context.log(`${mode}: poll failed (${String(error).slice(0, 200)}); asking again`);
            return undefined;
          });
        if (!answer || answer.workflowRun!.status === 'RUNNING') break;
        done.set(id, answer.workflowRun as never);
      }
    }
    const spend = ledger.stop(await own());
    const eventLoopP99Ms = await context.eventLoopP99(metricsUrl);
    const runs = [...done.values()];
    const starts = runs.map((run) => Date.parse(run.createdAt));
    const ends = runs.map((run) => Date.parse(run.finishedAt));
    const durations = runs
      .map((run) => Date.parse(run.finishedAt) - Date.parse(run.createdAt))
      .sort((a, b) => a - b);
    const makespanMs = Math.max(...ends) - Math.min(...starts);
    const stepMs = (cpuBefore + calibrate()) / 2;
    const bound = lowerBound({
      runs: runs.length,
      ioMs: IO_MS,
      cpuStepMs: stepMs,
      shape: SHAPE,
      otherCores: spend.otherCores,
    });
    const handoff = handoffs(runs, steps);
    const stepCount = runs.length * STEPS_PER_RUN;
    const cpuWorkMs = runs.length * SHAPE.cpuSteps * stepMs;
    return {
      makespanMs,
      ...bound,
      ratioToBound: makespanMs / bound.boundMs,
      cpuStepMs: stepMs,
      otherCores: spend.otherCores,
      handoffMeanMs: handoff.reduce((sum, value) => sum + value, 0) / handoff.length,
      handoffP95Ms: quantile(handoff, 0.95),
      gatewayCpuPerStepMs: (spend.ownMs.gateway! - cpuWorkMs) / stepCount,
      postgresCpuPerStepMs: spend.ownMs.postgres! / stepCount,
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
  const token = await new TokenService({ secret: JWT_SECRET }).mint(user!.id, user!.company_id, 3600);
  const rounds = calibrateRounds(CPU_MS);
  context.log(`CPU steps: ${rounds} SHA-256 rounds (~${CPU_MS} ms here); ${runs} runs per mode`);
  const { url: serverUrl, server } = await slowServer();
  try {
    // `db` stays open: it finds the gateway's Postgres backends, whose CPU the ledger counts as the bench's own.
    const options = { db, databaseUrl, serverUrl, rounds, runs, token };
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
      ratio: partitioned.ratioToBound,
      ratioOf: 'makespan / lower bound, partitioned (target <= 1.2; each round against its own bound)',
      notes:
        'bound = max(critical path, I/O before the first and after the last CPU step + CPU work / cores left by other processes); ' +
        `ratioToBound per round: partitioned ${results.partitioned.map((f) => f.ratioToBound.toFixed(2)).join(', ')}; ` +
        `single ${results.single.map((f) => f.ratioToBound.toFixed(2)).join(', ')}`,
    };
  } finally {
    server.closeAllConnections();
    server.close();
    await db.destroy();
  }
}

export const workflowBench: readonly BenchScenario[] = [
  { name: 'workflow.partitioned', run: partitionedScenario },
];
