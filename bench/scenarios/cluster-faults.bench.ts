import { loadavg } from 'node:os';
import { Client } from 'pg';
import { startLocalCluster, type LocalCluster } from '../cluster/local-cluster';
import { MixedLoad, type MixedLoadFigures } from '../cluster/mixed-load';
import { latencyStats, type Scenario, type ScenarioResult } from '../harness';

/** How long the mixed load runs at scale 1 (`--duration` overrides; a shorter scale gives a shorter run, >= 30 s). */
const FULL_DURATION_S = 120;
/** How long a killed process stays down before it is started again. */
const DOWN_MS = 2000;

interface Fault {
  name: 'gateway' | 'worker' | 'replica';
  /** When the kill was sent, and when the process had exited. */
  killedAt: number;
  deadAt: number;
  recoveredMs: number;
  /** Extra figure of the fault (the replica: until gateways read from it again, when they report it). */
  detail?: Record<string, number>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Kills gateway 1 (SIGKILL), starts it again; recovered when HAProxy has it UP again. */
async function gatewayFault(cluster: LocalCluster): Promise<Fault> {
  const gateway = cluster.gateways[0]!;
  const killedAt = Date.now();
  await gateway.kill('SIGKILL');
  const deadAt = Date.now();
  await sleep(DOWN_MS);
  await gateway.start();
  await cluster.haproxy.waitForUp([gateway.name], 60_000);
  return { name: 'gateway', killedAt, deadAt, recoveredMs: Date.now() - killedAt };
}

/**
 * Kills worker 1 (SIGKILL) while exports and workflow runs are in flight, starts it again; recovered when every
 * export and run that was in flight at the kill has finished (on either worker).
 */
async function workerFault(cluster: LocalCluster, load: MixedLoad): Promise<Fault> {
  const exportsInFlight = [...load.figures.exportIds];
  const runsInFlight = [...load.figures.workflowRunIds];
  const killedAt = Date.now();
  await cluster.workers[0]!.kill('SIGKILL');
  const deadAt = Date.now();
  await sleep(DOWN_MS);
  await cluster.workers[0]!.start();
  const deadline = Date.now() + 120_000;
  for (;;) {
    const states = await Promise.all([
      ...exportsInFlight.map((id) =>
        load
          .call('ExportJob', 'query ($id: ID!) { exportJob(id: $id) { status } }', { id })
          .then((answer) => answer?.exportJob?.status as string | undefined),
      ),
      ...runsInFlight.map((id) =>
        load
          .call('WorkflowRun', 'query ($id: ID!) { workflowRun(id: $id) { status } }', { id })
          .then((answer) => answer?.workflowRun?.status as string | undefined),
      ),
    ]);
    if (states.every((status) => status && !['QUEUED', 'RUNNING'].includes(status)) || Date.now() > deadline)
      break;
    await sleep(250);
  }
  return { name: 'worker', killedAt, deadAt, recoveredMs: Date.now() - killedAt };
}

/** Reads the gateways sent to a replica so far (`crm_db_reads_total{target="replica"}`), NaN where not reported. */
async function replicaReads(cluster: LocalCluster): Promise<number> {
  let total = NaN;
  for (const gateway of cluster.gateways) {
    const text = await fetch(gateway.metricsUrl!).then(
      (response) => response.text(),
      () => '',
    );
    for (const match of text.matchAll(/^crm_db_reads_total\{[^}]*target="replica"[^}]*\} ([\d.e+]+)$/gm))
      total = (Number.isNaN(total) ? 0 : total) + Number(match[1]);
  }
  return total;
}

/** Kills the replica's postmaster (SIGKILL), starts it again; recovered when it streams again. */
async function replicaFault(cluster: LocalCluster): Promise<Fault> {
  const killedAt = Date.now();
  await cluster.pair.killReplica();
  const deadAt = Date.now();
  await sleep(DOWN_MS);
  await cluster.pair.startReplica();
  const recoveredMs = Date.now() - killedAt;
  // With replica routing, the gateways health-check the replica and send reads there again by themselves.
  const before = await replicaReads(cluster);
  let readsResumedMs = NaN;
  for (let i = 0; !Number.isNaN(before) && i < 120; i++) {
    if ((await replicaReads(cluster)) > before) {
      readsResumedMs = Date.now() - killedAt;
      break;
    }
    await sleep(250);
  }
  return {
    name: 'replica',
    killedAt,
    deadAt,
    recoveredMs,
    detail: { replicaReadsResumedMs: readsResumedMs },
  };
}

async function rowsInPostgres(databaseUrl: string, marker: string, ids: string[]) {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const {
      rows: [counts],
    } = await client.query<{ acknowledged: number; marked: number }>(
      `SELECT (SELECT count(*) FROM leads WHERE id = ANY($1::uuid[]))::int AS acknowledged,
              (SELECT count(*) FROM leads WHERE last_name = $2)::int AS marked`,
      [ids, marker],
    );
    return counts!;
  } finally {
    await client.end();
  }
}

/**
 * Failures of requests that were in flight when a gateway was killed: sent before it had exited, failed from the kill
 * on and within 3 s of the exit.
 */
function failuresAtGatewayKill(figures: MixedLoadFigures, faults: Fault[]): number {
  const kills = faults.filter((fault) => fault.name === 'gateway');
  return figures.failures.filter((failure) =>
    kills.some(
      ({ killedAt, deadAt }) =>
        failure.at <= deadAt && failure.endedAt >= killedAt && failure.endedAt <= deadAt + 3000,
    ),
  ).length;
}

export function durationSeconds(scale: number, duration?: number): number {
  return duration ?? Math.max(30, Math.round(FULL_DURATION_S * scale));
}

/**
 * The local cluster (`npm run cluster`) under mixed load through HAProxy while one gateway, one worker and the
 * replica are killed in turn and started again: requests and failures, acknowledged writes against the rows in
 * Postgres, exports and workflow runs started against completed, and the time each fault took to recover.
 */
export const clusterFaults: Scenario = {
  name: 'cluster.faults',
  async run({ scale, log, durationSeconds: duration }): Promise<ScenarioResult> {
    // Long by choice: one scenario that reads top to bottom as the table it prints (start, load, faults, settle,
    // count); cut into parts, its figures would be spread over several functions.
    const seconds = durationSeconds(scale, duration);
    const cluster = await startLocalCluster({
      scale,
      log,
      // A killed worker's claim on an export or a step lapses after this: the job is retried on the other one.
      env: { EXPORT_LOCK_MS: '5000', WORKFLOW_LOCK_MS: '5000' },
    });
    try {
      const marker = `faults${Date.now()}`;
      const load = new MixedLoad({ url: cluster.url, token: cluster.token, marker });
      await load.prepare();
      log(`mixed load through ${cluster.url} for ${seconds} s; faults at 20%, 45% and 70% of it`);
      const startedAt = Date.now();
      load.start();
      const faults: Fault[] = [];
      const plan = [
        { at: 0.2, fault: () => gatewayFault(cluster) },
        { at: 0.45, fault: () => workerFault(cluster, load) },
        { at: 0.7, fault: () => replicaFault(cluster) },
      ];
      for (const { at, fault } of plan) {
        await sleep(Math.max(0, startedAt + at * seconds * 1000 - Date.now()));
        const done = await fault();
        log(`${done.name} killed and back in ${done.recoveredMs} ms`);
        faults.push(done);
      }
      await sleep(Math.max(0, startedAt + seconds * 1000 - Date.now()));
      await load.stop();
      const elapsedS = (Date.now() - startedAt) / 1000;
      const figures = { ...load.figures, failures: [...load.figures.failures] };
      const requests = figures.requests;
      log(`load stopped after ${elapsedS.toFixed(0)} s; waiting for exports and workflow runs to finish ...`);
      const settled = await load.settle();
      const rows = await rowsInPostgres(cluster.databaseUrl, marker, figures.acknowledgedLeadIds);

      const firstFault = faults[0]!.killedAt;
      // The baseline leaves out the first seconds, while caches and search indexes warm up.
      const warmUntil = startedAt + Math.min(5000, (firstFault - startedAt) / 2);
      const before = latencyStats(
        figures.latenciesMs.filter((l) => l.at >= warmUntil && l.at < firstFault).map((l) => l.ms),
      );
      const during = latencyStats(figures.latenciesMs.filter((l) => l.at >= firstFault).map((l) => l.ms));
      const beforeRate = before.count / ((firstFault - warmUntil) / 1000);
      const duringRate = during.count / ((startedAt + elapsedS * 1000 - firstFault) / 1000);
      const byName = (name: Fault['name']) => faults.find((fault) => fault.name === name)!;
      const failuresAtKill = failuresAtGatewayKill(figures, faults);
      const failureKinds = [
        ...new Set(figures.failures.map((f) => `${f.operation}: ${f.message.slice(0, 120)}`)),
      ];
      const failuresByOperation = Object.entries(
        figures.failures.reduce<Record<string, number>>((counts, failure) => {
          counts[failure.operation] = (counts[failure.operation] ?? 0) + 1;
          return counts;
        }, {}),
      ).map(([operation, count]) => `${operation} ${count}`);
      const replicaReadsResumed = byName('replica').detail!.replicaReadsResumedMs!;
      // Where each failure fell against the gateway kill (sent and failed, ms after the kill was sent).
      const gatewayKilledAt = byName('gateway').killedAt;
      const failureTimes = figures.failures
        .slice(0, 10)
        .map((f) => `${f.operation} sent ${f.at - gatewayKilledAt}, failed ${f.endedAt - gatewayKilledAt}`);
      const [one, five] = loadavg();
      return {
        scenario: 'cluster.faults',
        description:
          `mixed load (6 users: lists, single reads, searches, reports, creates; an export with a progress ` +
          `subscription every 8 s, a workflow run every 3 s) through HAProxy on 2 gateways, 2 workers, a streaming ` +
          `replica, PgBouncer and a 3-master Redis Cluster for ${elapsedS.toFixed(0)} s, killing a gateway, a worker ` +
          `and the replica in turn`,
        measured: {
          requests,
          failedRequests: figures.failed,
          failedInFlightOnKilledGateway: failuresAtKill,
          failedOtherwise: figures.failed - failuresAtKill,
          retriedReads: figures.retried,
          acknowledgedWrites: figures.acknowledgedLeadIds.length,
          acknowledgedRowsInPostgres: rows.acknowledged,
          markedRowsInPostgres: rows.marked,
          exportsStarted: figures.exportIds.length,
          exportsCompleted: settled.exportsCompleted,
          exportProgressEvents: figures.exportEventsSeen,
          workflowsStarted: figures.workflowRunIds.length,
          workflowsCompleted: settled.workflowsCompleted,
          gatewayRecoverMs: byName('gateway').recoveredMs,
          workerRecoverMs: byName('worker').recoveredMs,
          replicaRecoverMs: byName('replica').recoveredMs,
          replicaReadsResumedMs: replicaReadsResumed,
          requestsPerSecondDuringFaults: duringRate,
          p95MsDuringFaults: during.p95Ms,
        },
        baseline: { requestsPerSecondDuringFaults: beforeRate, p95MsDuringFaults: before.p95Ms },
        baselineName: 'the same load before the first fault (after 5 s of warm-up)',
        ratio: duringRate / beforeRate,
        ratioOf: 'req/s from the first fault on / req/s before it',
        notes:
          `load average ${one!.toFixed(2)} (1 min), ${five!.toFixed(2)} (5 min); must be equal: acknowledged writes ` +
          `and their rows (${figures.acknowledgedLeadIds.length} / ${rows.acknowledged}), exports ` +
          `(${figures.exportIds.length} / ${settled.exportsCompleted}), workflows (${figures.workflowRunIds.length} / ` +
          `${settled.workflowsCompleted}); target: failures only in flight on the killed gateway. ` +
          (Number.isNaN(replicaReadsResumed)
            ? 'The gateways report no replica reads (crm_db_reads_total{target="replica"}): no replica routing here. '
            : '') +
          (failureKinds.length
            ? `Failed by operation: ${failuresByOperation.join(', ')}. Failures seen: ${failureKinds.slice(0, 8).join(' | ')}. ` +
              `Against the gateway kill (ms): ${failureTimes.join('; ')}. The gateway went down ` +
              `${byName('gateway').deadAt - gatewayKilledAt} ms after the kill was sent. Rows marked but not ` +
              `acknowledged (committed, their answer lost with the gateway): ${rows.marked - rows.acknowledged}`
            : 'No failure.'),
      };
    } finally {
      await cluster.stop();
    }
  },
};
