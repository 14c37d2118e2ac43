import { loadavg } from 'node:os';
import { Client } from 'pg';
import type { BenchProcess } from '../../src/modules/kernel';
import { startPgBouncer } from '../cluster/pgbouncer';
import { BENCH_REDIS_URL, prepareBenchDatabase } from '../bench-database';
import type { App } from '../../src/app';
import { freePort, timeCalls, type Scenario, type ScenarioResult } from '../harness';
import { startProcess } from '../processes';
import { pickBenchCallers } from './bench-callers';
import {
  BENCH_JWT_SECRET as JWT_SECRET,
  GATEWAY_DATABASE_URL,
  gatewaySizes,
  startBenchGateway,
} from './gateway.bench';
import { runLoad, waitForHttp } from './gateway-peers.bench';

const CONNECTIONS = 16;
const ROUNDS = 3;
const DEAL = `query ($id: ID!) { deal(id: $id) { id name amount stage owner { id name } account { id name } } }`;

/**
 * What the fallback for a transaction pooler costs a single read (`deal(id)` with its owner and account: one SQL
 * statement, run as a named prepared statement where it can be): three gateways on the gateway bench's data, loaded
 * in turn, each round in the same order, the rep as the caller (its visibility predicate is the SQL worth planning once):
 * - named: direct to Postgres, DATABASE_POOLER=none (prepared once per connection; the baseline);
 * - unnamed: direct to Postgres, DATABASE_POOLER=pgbouncer (parsed and planned on every call: the fallback alone);
 * - pgbouncer: through a real PgBouncer 1.18 in transaction mode (detected at start: the fallback plus the hop).
 * Over HTTP the gateway's own work hides much of the statement's; so the same reads are also timed one at a time on
 * the records service in this process (no HTTP, no GraphQL), where the statement is most of the cost.
 */
export const preparedReads: Scenario = {
  name: 'db.prepared-reads',
  async run({ scale, log }): Promise<ScenarioResult> {
    await prepareBenchDatabase(GATEWAY_DATABASE_URL, gatewaySizes(scale), log);
    const callers = await pickBenchCallers(GATEWAY_DATABASE_URL, JWT_SECRET, log);
    const dealId = await ownDeal(callers.repId);
    const bouncer = await startPgBouncer({ upstreamUrl: GATEWAY_DATABASE_URL, poolSize: 20 });
    const variants = [
      { key: 'named', env: { DATABASE_URL: GATEWAY_DATABASE_URL, DATABASE_POOLER: 'none' } },
      { key: 'unnamed', env: { DATABASE_URL: GATEWAY_DATABASE_URL, DATABASE_POOLER: 'pgbouncer' } },
      { key: 'pgbouncer', env: { DATABASE_URL: bouncer.url, DATABASE_POOLER: 'auto' } },
    ] as const;
    const gateways: Array<{ key: string; url: string; process: BenchProcess }> = [];
    const loadBefore = loadavg();
    try {
      for (const variant of variants) {
        const port = await freePort();
        const gateway = startProcess('main', {
          NODE_ENV: 'production',
          JWT_SECRET,
          LOG_LEVEL: 'info',
          PORT: String(port),
          HOST: '127.0.0.1',
          METRICS_PORT: '0',
          REDIS_URL: BENCH_REDIS_URL,
          ...variant.env,
        });
        gateways.push({ key: variant.key, url: `http://127.0.0.1:${port}`, process: gateway });
        await waitForHttp(`http://127.0.0.1:${port}/healthz`, gateway);
      }
      if (!gateways[2]!.process.output().includes('through a transaction pooler'))
        throw new Error('the gateway behind PgBouncer did not detect it');
      const request = (url: string) => ({
        url: `${url}/graphql`,
        method: 'POST' as const,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${callers.repToken}` },
        body: JSON.stringify({ query: DEAL, variables: { id: dealId } }),
      });
      // The same answer from each (it is the body the load generator expects), then a warm-up.
      let expected: string | undefined;
      for (const gateway of gateways) {
        const { url, ...init } = request(gateway.url);
        const body = await (await fetch(url, init)).text();
        if (!body.includes(dealId) || body.includes('"errors"'))
          throw new Error(`${gateway.key}: ${body.slice(0, 300)}`);
        if (expected !== undefined && body !== expected) throw new Error(`${gateway.key} answered otherwise`);
        expected = body;
        await runLoad({
          ...request(gateway.url),
          connections: CONNECTIONS,
          durationSeconds: 2,
          expectBody: body,
        });
      }
      const durationSeconds = scale < 1 ? 4 : 8;
      const samples = new Map<string, Array<{ rps: number; p50: number; p99: number }>>();
      for (let round = 1; round <= ROUNDS; round++) {
        for (const gateway of gateways) {
          const report = await runLoad({
            ...request(gateway.url),
            connections: CONNECTIONS,
            durationSeconds,
            expectBody: expected,
          });
          if (report.errors > 0) throw new Error(`${gateway.key}: ${report.errors} errors`);
          samples.set(gateway.key, [
            ...(samples.get(gateway.key) ?? []),
            { rps: report.requestsPerSecond, p50: report.p50Ms, p99: report.p99Ms },
          ]);
          log(
            `round ${round} ${gateway.key}: ${report.requestsPerSecond.toFixed(0)} req/s, p50 ${report.p50Ms} ms`,
          );
        }
      }
      const serviceP50 = await serviceLatencies(bouncer.url, callers.repToken, dealId, log);
      const loadAfter = loadavg();
      const figure = (key: string, of: 'rps' | 'p50' | 'p99') => median(samples.get(key)!.map((s) => s[of]));
      return {
        scenario: 'db.prepared-reads',
        description: `deal(id) single reads as the rep, ${CONNECTIONS} connections, median of ${ROUNDS} rounds`,
        measured: {
          unnamedRps: figure('unnamed', 'rps'),
          unnamedP50Ms: figure('unnamed', 'p50'),
          unnamedP99Ms: figure('unnamed', 'p99'),
          pgbouncerRps: figure('pgbouncer', 'rps'),
          pgbouncerP50Ms: figure('pgbouncer', 'p50'),
          pgbouncerP99Ms: figure('pgbouncer', 'p99'),
          pgbouncerRatio: figure('pgbouncer', 'rps') / figure('named', 'rps'),
          serviceUnnamedP50Ms: serviceP50.unnamed,
          servicePgbouncerP50Ms: serviceP50.pgbouncer,
          serviceUnnamedRatio: serviceP50.unnamed / serviceP50.named,
        },
        baseline: {
          namedRps: figure('named', 'rps'),
          namedP50Ms: figure('named', 'p50'),
          namedP99Ms: figure('named', 'p99'),
          serviceNamedP50Ms: serviceP50.named,
        },
        baselineName: 'named prepared statements, direct to Postgres',
        ratio: figure('unnamed', 'rps') / figure('named', 'rps'),
        ratioOf: 'unnamed req/s / named req/s',
        notes:
          `scale ${scale}; load average ${loadBefore.map((n) => n.toFixed(2)).join(' ')} before, ` +
          `${loadAfter.map((n) => n.toFixed(2)).join(' ')} after`,
      };
    } finally {
      await Promise.all(gateways.map((gateway) => gateway.process.stop()));
      await bouncer.stop();
    }
  },
};

/** The deal's fields and its owner's and account's, as the HTTP query selects them. */
const SELECTION: NonNullable<Parameters<App['services']['records']['deals']['get']>[2]> = {
  fields: new Set(['id', 'name', 'amount', 'stage', 'owner', 'account']),
  related: new Map([
    ['owner', new Set(['id', 'name'])],
    ['account', new Set(['id', 'name'])],
  ]),
};

/** Median p50 (ms) of `records.deals.get` one call at a time, per variant, rounds interleaved. */
async function serviceLatencies(
  bouncerUrl: string,
  token: string,
  dealId: string,
  log: (message: string) => void,
): Promise<Record<'named' | 'unnamed' | 'pgbouncer', number>> {
  const apps: Array<[key: 'named' | 'unnamed' | 'pgbouncer', app: App]> = [];
  try {
    apps.push(['named', await startBenchGateway({ DATABASE_POOLER: 'none' })]);
    apps.push(['unnamed', await startBenchGateway({ DATABASE_POOLER: 'pgbouncer' })]);
    apps.push(['pgbouncer', await startBenchGateway({ DATABASE_URL: bouncerUrl })]);
    const expected = { named: [false, true], unnamed: [true, false], pgbouncer: [true, false] };
    for (const [key, app] of apps)
      if (String([app.pooler.transactionPooling, app.pooler.namedStatements]) !== String(expected[key]))
        throw new Error(
          `${key}: pooler ${app.pooler.transactionPooling}, named ${app.pooler.namedStatements}`,
        );
    const p50s = new Map<string, number[]>();
    for (let round = 1; round <= ROUNDS; round++)
      for (const [key, app] of apps) {
        const principal = await app.services.identity.authenticate(token);
        const stats = await timeCalls(
          async () => {
            if (!(await app.services.records.deals.get(principal, dealId, SELECTION)))
              throw new Error(`${key}: the rep's deal was not read`);
          },
          { iterations: 1500, warmup: 200 },
        );
        p50s.set(key, [...(p50s.get(key) ?? []), stats.p50Ms]);
        log(
          `round ${round} service ${key}: p50 ${stats.p50Ms.toFixed(3)} ms, p99 ${stats.p99Ms.toFixed(3)} ms`,
        );
      }
    const of = (key: string) => median(p50s.get(key)!);
    return { named: of('named'), unnamed: of('unnamed'), pgbouncer: of('pgbouncer') };
  } finally {
    await Promise.all(apps.map(([, app]) => app.stop()));
  }
}

/** A deal the rep owns (so the single read answers it). */
async function ownDeal(repId: string): Promise<string> {
  const client = new Client({ connectionString: GATEWAY_DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string }>(
      'SELECT id FROM deals WHERE owner_id = $1 AND account_id IS NOT NULL ORDER BY id LIMIT 1',
      [repId],
    );
    if (!rows[0]) throw new Error('the rep owns no deal with an account (raise --scale)');
    return rows[0].id;
  } finally {
    await client.end();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
