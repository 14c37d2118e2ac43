import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import type { BenchResult, LatencyStats } from '../src/modules/kernel';

export type { LatencyStats };

export function latencyStats(samplesMs: number[]): LatencyStats {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const mean = sorted.reduce((sum, v) => sum + v, 0) / Math.max(1, sorted.length);
  return { count: sorted.length, p50Ms: at(0.5), p95Ms: at(0.95), p99Ms: at(0.99), meanMs: mean };
}

/** Times `fn` `iterations` times after `warmup` untimed runs. */
export async function timeCalls(
  fn: () => Promise<unknown>,
  options: { iterations: number; warmup: number },
): Promise<LatencyStats> {
  for (let i = 0; i < options.warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < options.iterations; i++) {
    const started = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return latencyStats(samples);
}

export interface LoadResult extends LatencyStats {
  requestsPerSecond: number;
  errors: number;
}

export interface HttpCall {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Checks a response body; a false return counts as an error. */
  check?: (status: number, body: string) => boolean;
}

/** A bounded closed-loop load: `concurrency` keep-alive connections, each sending the next request on reply. */
export async function runHttpLoad(
  baseUrl: string,
  call: HttpCall,
  options: { concurrency: number; durationMs: number; warmupMs: number },
): Promise<LoadResult> {
  const url = new URL(baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency });
  const send = () =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: call.path,
          method: call.method,
          agent,
          headers: call.headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      if (call.body) req.write(call.body);
      req.end();
    });

  const phase = async (durationMs: number, record: boolean) => {
    const samples: number[] = [];
    let errors = 0;
    const deadline = Date.now() + durationMs;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (Date.now() < deadline) {
          const t0 = process.hrtime.bigint();
          try {
            const { status, body } = await send();
            if (status !== 200 || (call.check && !call.check(status, body))) errors++;
          } catch {
            errors++;
          }
          if (record) samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
      }),
    );
    return { samples, errors, elapsedMs: Date.now() - started };
  };

  await phase(options.warmupMs, false);
  const { samples, errors, elapsedMs } = await phase(options.durationMs, true);
  agent.destroy();
  return { ...latencyStats(samples), requestsPerSecond: (samples.length / elapsedMs) * 1000, errors };
}

/** What every scenario returns (the module contract's BenchResult). */
export type ScenarioResult = BenchResult;

export interface BenchContext {
  scale: number;
  log: (message: string) => void;
}

export interface Scenario {
  name: string;
  run(context: BenchContext): Promise<ScenarioResult>;
}

function format(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 1) return value.toFixed(2);
  return value.toFixed(4);
}

export function printTable(results: ScenarioResult[]): string {
  const rows: string[][] = [['scenario', 'figure', 'measured', 'baseline', 'baseline is']];
  for (const result of results) {
    const keys = Object.keys(result.measured);
    keys.forEach((key, index) => {
      rows.push([
        index === 0 ? result.scenario : '',
        key,
        format(result.measured[key]!),
        key in result.baseline ? format(result.baseline[key]!) : '',
        index === 0 ? result.baselineName : '',
      ]);
    });
    for (const key of Object.keys(result.baseline).filter((k) => !(k in result.measured))) {
      rows.push(['', key, '', format(result.baseline[key]!), '']);
    }
    rows.push(['', `ratio (${result.ratioOf})`, format(result.ratio), '', '']);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ')).join('\n');
}

/** A TCP port that was free a moment ago (for listeners whose port 0 means "off"). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
