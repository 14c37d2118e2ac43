import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MODULES } from '../src/modules/modules';
import type { BenchScenario } from '../src/modules/kernel';
import {
  BENCH_REDIS_URL,
  openBenchDatabase,
  openEmbeddedBenchDatabase,
  releaseBenchDatabases,
} from './bench-database';
import { freePort, printTable, timeCalls, type Scenario, type ScenarioResult } from './harness';
import { eventLoopP99, graphql, startProcess } from './processes';
import { clusterFaults } from './scenarios/cluster-faults.bench';
import { gatewayPeers } from './scenarios/gateway-peers.bench';
import { metricsScrape } from './scenarios/metrics.bench';
import { preparedReads } from './scenarios/prepared-reads.bench';

/** A module's scenario, handed what it needs from the bench (databases, Redis, timing) so it imports none of it. */
function fromModule(scenario: BenchScenario): Scenario {
  return {
    name: scenario.name,
    run: ({ scale, log }) =>
      scenario.run({
        scale,
        log,
        redisUrl: BENCH_REDIS_URL,
        timeCalls,
        startProcess,
        freePort,
        eventLoopP99,
        graphql,
        openDatabase: (name, sizes) => openBenchDatabase(name, sizes, log),
        openEmbeddedDatabase: (name) => openEmbeddedBenchDatabase(name, log),
      }),
  };
}

/**
 * Every scenario, in run order: the gateway's (against its peers, then prepared against unnamed single reads), each
 * module's (module order), then the metrics scrape, then the local cluster under faults.
 */
const SCENARIOS: Scenario[] = [
  gatewayPeers,
  preparedReads,
  ...MODULES.flatMap((module) => module.bench ?? []).map(fromModule),
  metricsScrape,
  clusterFaults,
];

/** `--duration 30s`, `2m` or `90` (seconds); undefined when not given. */
function parseDuration(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)(s|m)?$/.exec(value);
  if (!match || Number(match[1]) <= 0)
    throw new Error(
      `--duration must be a positive number of seconds, optionally with s or m (30s, 2m), got "${value}"`,
    );
  return Number(match[1]) * (match[2] === 'm' ? 60 : 1);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      scale: { type: 'string', default: '1' },
      duration: { type: 'string' },
      out: { type: 'string', default: 'bench-results.json' },
    },
  });
  const scale = Number(values.scale);
  if (!(scale > 0 && scale <= 1)) throw new Error('--scale must be a number in (0, 1]');
  const durationSeconds = parseDuration(values.duration);
  const selected = SCENARIOS.filter((scenario) => !values.only || scenario.name.startsWith(values.only));
  if (selected.length === 0)
    throw new Error(
      `no scenario matches --only ${values.only}; have ${SCENARIOS.map((s) => s.name).join(', ')}`,
    );

  const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
  const results: ScenarioResult[] = [];
  for (const scenario of selected) {
    log(`running ${scenario.name} (scale ${scale})`);
    results.push(await scenario.run({ scale, log, durationSeconds }));
  }
  process.stdout.write(`\n${printTable(results)}\n`);
  for (const result of results)
    if (result.notes) process.stdout.write(`${result.scenario}: ${result.notes}\n`);
  const out = resolve(values.out);
  writeFileSync(
    out,
    JSON.stringify(
      {
        at: new Date().toISOString(),
        scale,
        machine: { cpus: cpus().length, node: process.version },
        results,
      },
      null,
      2,
    ),
  );
  process.stdout.write(`wrote ${out}\n`);
  await releaseBenchDatabases();
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
