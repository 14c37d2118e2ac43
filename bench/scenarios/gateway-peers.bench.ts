import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { BENCH_REDIS_URL, prepareBenchDatabase } from '../bench-database';
import { freePort, type Scenario, type ScenarioResult } from '../harness';
import type { LoadReport, LoadRequest } from '../load-generator';
import { nodeFlags, processCpuMs, startNodeProcess, startProcess } from '../processes';
import { pickBenchCallers } from './bench-callers';
import { BENCH_JWT_SECRET as JWT_SECRET, GATEWAY_DATABASE_URL, gatewaySizes } from './gateway.bench';
import type { BenchProcess } from '../../src/modules/kernel';

const CONNECTIONS = 32;
const ROUNDS = 3;

type ServerName =
  'project' | 'project-traced' | 'project+limits' | 'project@baseline' | 'mercurius' | 'postgraphile';
/**
 * The project's variants, compared with the project itself: tracing on, rate limits on, and (when
 * BENCH_BASELINE_CHECKOUT names another built checkout, e.g. a worktree of an earlier commit) that checkout's gateway
 * with the same settings, so "off does not regress" is measured in the same run.
 */
const VARIANTS = ['project-traced', 'project+limits', 'project@baseline'] as const;
const isVariant = (name: ServerName): name is (typeof VARIANTS)[number] =>
  (VARIANTS as readonly string[]).includes(name);
const BASELINE_CHECKOUT = process.env.BENCH_BASELINE_CHECKOUT;
/** The peers each query's project figure is compared with. */
const PEERS: ServerName[] = ['mercurius', 'postgraphile'];
/** The traced gateway's sampling: one trace in ten, as the README suggests for production. */
const TRACED_ENV = {
  OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
  OTEL_TRACES_SAMPLER_ARG: '0.1',
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
};
/** Quotas far above what the load sends: the limits count every operation and refuse none. */
const UNREACHED_QUOTA = '1000000000';
const LIMITS_ENV = {
  RATE_LIMITS: 'true',
  RATE_LIMIT_USER_REQUESTS: UNREACHED_QUOTA,
  RATE_LIMIT_COMPANY_REQUESTS: UNREACHED_QUOTA,
  RATE_LIMIT_USER_COMPLEXITY: UNREACHED_QUOTA,
  RATE_LIMIT_COMPANY_COMPLEXITY: UNREACHED_QUOTA,
};

interface RunningServer {
  name: ServerName;
  url: string;
  process: BenchProcess;
  /** SQL statements the server has sent so far. */
  statements(): Promise<number>;
}

interface BenchQuery {
  label: string;
  /** The caller's token. */
  token: string;
  /** The document each server answers it with (PostGraphile names its fields its own way). */
  documents: Record<
    Exclude<ServerName, (typeof VARIANTS)[number]>,
    { query: string; variables?: Record<string, unknown> }
  >;
  /** What an answer holds, checked against the project's before any load: the ids in order. */
  ids(body: unknown): string[];
}

interface Sample {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  cpuMsPerRequest: number;
  errors: number;
}

const ITEM_FIELDS = 'id name amount owner { id name } account { id name }';
const POSTGRAPHILE_ITEM_FIELDS =
  'id name amount userByCompanyIdAndOwnerId { id name } accountByCompanyIdAndAccountId { id name }';

function queries(ids: { companyId: string; dealId: string }, admin: string, rep: string): BenchQuery[] {
  const q2 = {
    project: {
      query: `{ deals(pageSize: 100, sortBy: "amount", sortDirection: DESC) { items { ${ITEM_FIELDS} } } }`,
    },
    mercurius: {
      query: `{ deals(pageSize: 100, sortBy: "amount", sortDirection: DESC) { items { ${ITEM_FIELDS} } } }`,
    },
    postgraphile: {
      query: `query($company: UUID!) { allDeals(first: 100, orderBy: [AMOUNT_DESC, ID_DESC], condition: { companyId: $company }) { nodes { ${POSTGRAPHILE_ITEM_FIELDS} } } }`,
      variables: { company: ids.companyId },
    },
  };
  type Body = { data?: Record<string, { id?: string; items?: { id: string }[]; nodes?: { id: string }[] }> };
  const listIds = (body: unknown) => {
    const page = Object.values((body as Body).data ?? {})[0];
    return (page?.items ?? page?.nodes ?? []).map((item) => item.id);
  };
  const singleId = (body: unknown) => {
    const record = Object.values((body as Body).data ?? {})[0];
    return record?.id ? [record.id] : [];
  };
  const q3 = `deal(id: "${ids.dealId}") { ${ITEM_FIELDS} }`;
  return [
    {
      label: 'Q1 { me { id } }',
      token: admin,
      documents: {
        project: { query: '{ me { id } }' },
        mercurius: { query: '{ me { id } }' },
        postgraphile: { query: '{ me { id } }' },
      },
      ids: singleId,
    },
    { label: 'Q2 100 deals by amount + owner + account (admin)', token: admin, documents: q2, ids: listIds },
    {
      label: 'Q2 the same as a rep (PRIVATE deals, rules)',
      token: rep,
      documents: q2,
      ids: listIds,
    },
    {
      label: 'Q3 deal(id) + owner + account',
      token: admin,
      documents: {
        project: { query: `{ ${q3} }` },
        mercurius: { query: `{ ${q3} }` },
        postgraphile: {
          query: `{ dealById(id: "${ids.dealId}") { ${POSTGRAPHILE_ITEM_FIELDS} } }`,
        },
      },
      ids: singleId,
    },
  ];
}

export async function waitForHttp(url: string, server: BenchProcess): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (server.process.exitCode !== null) throw new Error(`server exited:\n${server.output().slice(-2000)}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer:\n${server.output().slice(-2000)}`);
}

/** An OTLP/HTTP endpoint that takes every export and keeps nothing (what a collector costs the gateway is its I/O). */
async function startOtlpSink(): Promise<{ url: string; exports: () => number; close: () => Promise<void> }> {
  let exports = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      exports += 1;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exports: () => exports,
    close: () => new Promise((resolveClose) => server.close(() => resolveClose())),
  };
}

/** The gateway as `npm start` runs it; warnings only, so no log line per request is written. */
async function startProject(
  name: 'project' | (typeof VARIANTS)[number],
  env: Record<string, string> = {},
): Promise<RunningServer> {
  const port = await freePort();
  const metricsPort = await freePort();
  const projectEnv = {
    NODE_ENV: 'production',
    JWT_SECRET,
    LOG_LEVEL: 'warn',
    PORT: String(port),
    HOST: '127.0.0.1',
    METRICS_PORT: String(metricsPort),
    DATABASE_URL: GATEWAY_DATABASE_URL,
    REDIS_URL: BENCH_REDIS_URL,
    RATE_LIMITS: 'false',
    ...env,
  };
  const project =
    name === 'project@baseline'
      ? startNodeProcess(resolve(BASELINE_CHECKOUT!, 'dist/src/main.js'), nodeFlags('start'), projectEnv)
      : startProcess('main', projectEnv);
  const projectUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${projectUrl}/healthz`, project);
  return {
    name,
    url: projectUrl,
    process: project,
    statements: async () => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      let total = 0;
      for (const match of text.matchAll(/^crm_db_query_duration_seconds_count(?:\{[^}]*\})? ([\d.e+]+)$/gm))
        total += Number(match[1]);
      return total;
    },
  };
}

async function startServers(otlpUrl: string): Promise<RunningServer[]> {
  const started: RunningServer[] = [];
  try {
    started.push(await startProject('project'));
    started.push(
      await startProject('project-traced', { ...TRACED_ENV, OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl }),
    );
    started.push(await startProject('project+limits', LIMITS_ENV));
    if (BASELINE_CHECKOUT) started.push(await startProject('project@baseline'));
    for (const name of ['mercurius', 'postgraphile'] as const) {
      // The same node flags as `npm start` gives the project.
      const peer = startNodeProcess(`dist/bench/peers/${name}.peer.js`, nodeFlags('start'), {
        NODE_ENV: 'production',
        DATABASE_URL: GATEWAY_DATABASE_URL,
        JWT_SECRET,
        PORT: '0',
      });
      const [, url] = await peer.waitFor(/listening on (http:\/\/[\d.:]+)/);
      started.push({
        name,
        url: url!,
        process: peer,
        statements: async () =>
          ((await (await fetch(`${url}/__sql`)).json()) as { statements: number }).statements,
      });
    }
    return started;
  } catch (error) {
    await Promise.all(started.map((server) => server.process.stop()));
    throw error;
  }
}

function requestFor(server: RunningServer, query: BenchQuery) {
  return {
    url: `${server.url}/graphql`,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${query.token}` },
    body: JSON.stringify(query.documents[isVariant(server.name) ? 'project' : server.name]),
  };
}

async function send(server: RunningServer, query: BenchQuery): Promise<string> {
  const { url, ...init } = requestFor(server, query);
  const response = await fetch(url, init);
  const body = await response.text();
  if (!response.ok || body.includes('"errors"'))
    throw new Error(`${server.name} failed ${query.label}: ${response.status} ${body.slice(0, 500)}`);
  return body;
}

/** autocannon in a process of its own. */
export function runLoad(request: LoadRequest): Promise<LoadReport> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(
      process.execPath,
      [resolve(__dirname, '../load-generator.js'), JSON.stringify(request)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`load generator exited with ${code}`));
      else resolvePromise(JSON.parse(output) as LoadReport);
    });
  });
}

async function measure(
  server: RunningServer,
  query: BenchQuery,
  expectBody: string,
  durationSeconds: number,
): Promise<Sample> {
  const pid = server.process.process.pid!;
  const cpuBefore = processCpuMs(pid);
  const report = await runLoad({
    ...requestFor(server, query),
    connections: CONNECTIONS,
    durationSeconds,
    expectBody,
  });
  const cpu = processCpuMs(pid) - cpuBefore;
  return {
    requestsPerSecond: report.requestsPerSecond,
    p50Ms: report.p50Ms,
    p99Ms: report.p99Ms,
    cpuMsPerRequest: cpu / Math.max(1, report.requests),
    errors: report.errors,
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

function fmt(value: number, digits = 2): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

/** The project, Mercurius and PostGraphile side by side, each its own process, driven by autocannon in another. */
export const gatewayPeers: Scenario = {
  name: 'gateway.peers',
  async run(context): Promise<ScenarioResult> {
    await prepareBenchDatabase(GATEWAY_DATABASE_URL, gatewaySizes(context.scale), context.log);
    const callers = await pickBenchCallers(GATEWAY_DATABASE_URL, JWT_SECRET, context.log);
    const benchQueries = queries(callers, callers.adminToken, callers.repToken);
    const durationSeconds = context.scale < 1 ? 3 : 5;
    const sink = await startOtlpSink();
    const servers = await startServers(sink.url).catch(async (error: unknown) => {
      await sink.close();
      throw error;
    });
    try {
      // Every server's answer, checked: the same records in the same order; it is then the body autocannon expects.
      const expected = new Map<string, string>();
      const sqlPerRequest = new Map<string, number>();
      const redisPerRequest = new Map<string, number>();
      const redis = new Redis(BENCH_REDIS_URL);
      const redisCommands = async () =>
        Number(/total_commands_processed:(\d+)/.exec(await redis.info('stats'))?.[1] ?? NaN);
      for (const query of benchQueries) {
        let reference: string[] | undefined;
        for (const server of servers) {
          const body = await send(server, query);
          const ids = query.ids(JSON.parse(body));
          if (ids.length === 0) throw new Error(`${server.name} answered ${query.label} with nothing`);
          // The peers know no sharing: they answer the rep's query with the company's page, as for the admin.
          const comparable = query.token === callers.adminToken || isVariant(server.name);
          if (comparable && reference && ids.join() !== reference.join())
            throw new Error(`${server.name} answered ${query.label} with other records than the project`);
          reference ??= ids;
          expected.set(`${query.label}/${server.name}`, body);
          // Statements per request, one request at a time so nothing else is counted.
          for (let i = 0; i < 3; i++) await send(server, query);
          const before = await server.statements();
          // Redis commands per request (only the project uses Redis; the INFO call itself counts one, and the
          // idle gateway's own background commands land in the peers' samples, so theirs are not shown).
          const redisBefore = await redisCommands();
          for (let i = 0; i < 20; i++) await send(server, query);
          redisPerRequest.set(
            `${query.label}/${server.name}`,
            ((await redisCommands()) - redisBefore - 1) / 20,
          );
          sqlPerRequest.set(`${query.label}/${server.name}`, ((await server.statements()) - before) / 20);
          context.log(`warming ${server.name} on ${query.label}`);
          await measure(server, query, body, 2);
        }
      }
      const samples = new Map<string, Sample[]>();
      for (let round = 1; round <= ROUNDS; round++) {
        for (const query of benchQueries)
          for (const server of servers) {
            const key = `${query.label}/${server.name}`;
            const sample = await measure(server, query, expected.get(key)!, durationSeconds);
            if (sample.errors > 0)
              throw new Error(`${server.name}: ${sample.errors} errors on ${query.label}`);
            samples.set(key, [...(samples.get(key) ?? []), sample]);
            context.log(
              `round ${round} ${server.name} ${query.label}: ${sample.requestsPerSecond.toFixed(0)} req/s, p99 ${sample.p99Ms} ms`,
            );
          }
      }

      const summary = (key: string) => {
        const of = samples.get(key)!;
        const pick = (field: keyof Sample) => median(of.map((s) => s[field]));
        return {
          requestsPerSecond: pick('requestsPerSecond'),
          p50Ms: pick('p50Ms'),
          p99Ms: pick('p99Ms'),
          cpuMsPerRequest: pick('cpuMsPerRequest'),
          sql: sqlPerRequest.get(key)!,
          redis: redisPerRequest.get(key)!,
        };
      };
      const lines = [
        `median of ${ROUNDS} interleaved rounds, ${durationSeconds} s each, ${CONNECTIONS} connections (autocannon in its own process)`,
        '| query | server | req/s | p50 ms | p99 ms | CPU ms/req | SQL/req | Redis/req | project ÷ Mercurius | project ÷ PostGraphile | variant ÷ project |',
        '|---|---|---|---|---|---|---|---|---|---|---|',
      ];
      const measured: Record<string, number> = {};
      const baseline: Record<string, number> = {};
      let worstRatio = Infinity;
      const tracedRatios: number[] = [];
      const limitsRatios: number[] = [];
      const baselineRatios: number[] = [];
      // CPU per request of the server process: steadier than req/s when the machine has other work.
      const cpuRatios = { traced: [] as number[], limits: [] as number[] };
      for (const query of benchQueries) {
        const project = summary(`${query.label}/project`);
        for (const server of servers) {
          const row = summary(`${query.label}/${server.name}`);
          const ratios =
            server.name === 'project'
              ? [
                  ...PEERS.map((peer) =>
                    fmt(project.requestsPerSecond / summary(`${query.label}/${peer}`).requestsPerSecond),
                  ),
                  '',
                ]
              : isVariant(server.name)
                ? ['', '', fmt(row.requestsPerSecond / project.requestsPerSecond)]
                : ['', '', ''];
          lines.push(
            `| ${server.name === 'project' ? query.label : ''} | ${server.name} | ${fmt(row.requestsPerSecond, 0)} | ${row.p50Ms} | ${row.p99Ms} | ${fmt(row.cpuMsPerRequest)} | ${fmt(row.sql, 1)} | ${server.name.startsWith('project') ? fmt(row.redis, 1) : '-'} | ${ratios.join(' | ')} |`,
          );
        }
        const fastestPeer = Math.max(
          ...PEERS.map((peer) => summary(`${query.label}/${peer}`).requestsPerSecond),
        );
        const name = query.label.split(' ')[0]! + (query.token === callers.repToken ? ' rep' : '');
        measured[`${name} req/s`] = project.requestsPerSecond;
        const traced = summary(`${query.label}/project-traced`).requestsPerSecond;
        measured[`${name} traced req/s`] = traced;
        tracedRatios.push(traced / project.requestsPerSecond);
        const limited = summary(`${query.label}/project+limits`).requestsPerSecond;
        measured[`${name} rate-limited req/s`] = limited;
        limitsRatios.push(limited / project.requestsPerSecond);
        cpuRatios.traced.push(
          project.cpuMsPerRequest / summary(`${query.label}/project-traced`).cpuMsPerRequest,
        );
        cpuRatios.limits.push(
          project.cpuMsPerRequest / summary(`${query.label}/project+limits`).cpuMsPerRequest,
        );
        if (BASELINE_CHECKOUT)
          baselineRatios.push(
            project.requestsPerSecond / summary(`${query.label}/project@baseline`).requestsPerSecond,
          );
        baseline[`${name} req/s`] = fastestPeer;
        worstRatio = Math.min(worstRatio, project.requestsPerSecond / fastestPeer);
      }
      const admin = summary(`${benchQueries[1]!.label}/project`).requestsPerSecond;
      const rep = summary(`${benchQueries[2]!.label}/project`).requestsPerSecond;
      lines.push(
        `project's Q2 as the rep ÷ as the admin: ${fmt(rep / admin)}`,
        `tracing on (project-traced: ${TRACED_ENV.OTEL_TRACES_SAMPLER} ${TRACED_ENV.OTEL_TRACES_SAMPLER_ARG}, OTLP/HTTP ` +
          `protobuf to a local sink, ${sink.exports()} exports) ÷ off, worst query: ${fmt(Math.min(...tracedRatios))}`,
        `rate limits on (project+limits: RATE_LIMITS=true, quotas the load never reaches, so every operation is ` +
          `counted and none refused) ÷ off, worst query: ${fmt(Math.min(...limitsRatios))} (target >= 0.95)`,
        `per query (Q1, Q2, Q2 rep, Q3), req/s on ÷ off: tracing ${tracedRatios.map((r) => fmt(r)).join(', ')}; ` +
          `limits ${limitsRatios.map((r) => fmt(r)).join(', ')}`,
        `per query, CPU ms/req off ÷ on: tracing ${cpuRatios.traced.map((r) => fmt(r)).join(', ')}; ` +
          `limits ${cpuRatios.limits.map((r) => fmt(r)).join(', ')}`,
        ...(BASELINE_CHECKOUT
          ? [
              `this checkout (tracing and limits off) ÷ project@baseline (${BASELINE_CHECKOUT}), req/s per query: ` +
                `${baselineRatios.map((r) => fmt(r)).join(', ')}`,
            ]
          : []),
        'CPU ms/req is the server process alone (not Postgres, Redis or the load generator). The peers check the JWT',
        "(and keep verified tokens, as the project does) but apply no record-level sharing: they answer the rep's Q2",
        "with the company's page. PostGraphile takes the company from a query variable, and its Q3 (dealById) has no",
        'company condition.',
      );
      await redis.quit();
      const table = lines.join('\n');
      context.log(`\n${table}`);
      return {
        scenario: 'gateway.peers',
        description:
          'Q1-Q3 against Mercurius and PostGraphile on the same database, each server its own process',
        measured,
        baseline,
        baselineName: 'the faster peer on each query',
        ratio: worstRatio,
        ratioOf: 'req/s vs the faster peer, worst query',
        notes: `\n${table}`,
      };
    } finally {
      await Promise.all(servers.map((server) => server.process.stop()));
      await sink.close();
    }
  },
};
