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

/** What every scenario returns (the module contract's BenchResult). */
export type ScenarioResult = BenchResult;

export interface BenchContext {
  scale: number;
  log: (message: string) => void;
  /** `--duration`, for the scenarios that run for a time (cluster.faults); each has its default. */
  durationSeconds?: number;
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
