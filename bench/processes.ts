import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { BenchProcess } from '../src/modules/kernel';

const ROOT = resolve(__dirname, '../..');

/** The node flags `npm run <script>` passes (a worker's young-generation size matters to its memory). */
export function nodeFlags(script: string): string[] {
  const { scripts } = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  return (scripts[script] ?? '').split(' ').filter((word) => word.startsWith('--'));
}

/** Runs the built gateway (`main`) or worker as its own OS process, with the node flags its npm script uses. */
export function startProcess(entry: 'main' | 'worker', env: Record<string, string>): BenchProcess {
  return startNodeProcess(`dist/src/${entry}.js`, nodeFlags(entry === 'main' ? 'start' : 'worker'), env);
}

/** Runs a built script (a path under the project root, e.g. `dist/bench/peers/mercurius.peer.js`) as its own process. */
export function startNodeProcess(script: string, flags: string[], env: Record<string, string>): BenchProcess {
  const child = spawn(process.execPath, [...flags, resolve(ROOT, script)], {
    // Load generators send far past any production quota from one user: a scenario that measures the rate limits
    // turns them on itself.
    env: { PATH: process.env.PATH ?? '', RATE_LIMITS: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return {
    process: child,
    output: () => output,
    async waitFor(pattern) {
      for (let i = 0; i < 600; i++) {
        const match = output.match(pattern);
        if (match) return match;
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`${script} did not print ${pattern}:\n${output.slice(-2000)}`);
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** CPU time (user + system) a process has used so far, in ms, from /proc (Linux). */
export function processCpuMs(pid: number): number {
  // Fields after the command name (which may hold spaces): state is field 3, utime 14 and stime 15.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** Linux's USER_HZ, the unit of /proc's CPU times: 100 on every mainstream build. */
const CLOCK_TICKS_PER_SECOND = 100;

/** A process's own event-loop p99 from its metrics listener (prom-client resets it at each scrape), in ms. */
export async function eventLoopP99(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const match = /^crm_nodejs_eventloop_lag_p99_seconds(?:\{[^}]*\})? ([\d.e+-]+)$/m.exec(text);
  return match ? Number(match[1]) * 1000 : NaN;
}

/** One GraphQL call over HTTP; throws with the errors when there are any. */
export async function graphql(
  url: string,
  token: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<Record<string, Record<string, unknown>>> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as {
    data?: Record<string, Record<string, unknown>>;
    errors?: unknown;
  };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data!;
}
