import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { CPU_ACTIONS } from './workflow.cpu-actions';

// The workflow bench's lower bound and CPU ledger: what the machine could at best do with the workload, measured in
// the same run as the makespan it is compared with.

/** Linux's USER_HZ, the unit of /proc's CPU times: 100 on every mainstream build. */
const USER_HZ = 100;

/**
 * CPU time (ms) of one CPU step: the step's own action with its own config, run on this thread and timed by the
 * process CPU clock (the bench is otherwise idle meanwhile), median of 5. CPU time rather than wall time: other
 * processes on a shared machine stretch the wall clock, and what they take is counted separately (`CpuLedger`).
 */
export function cpuStepMs(action: string, config: Record<string, unknown>, scope: Record<string, unknown>) {
  const run = CPU_ACTIONS[action]!;
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const before = process.cpuUsage();
    run(config, scope);
    const used = process.cpuUsage(before);
    samples.push((used.user + used.system) / 1000);
  }
  return samples.sort((a, b) => a - b)[2]!;
}

function machineBusyMs(): number {
  // cpu  user nice system idle iowait irq softirq steal ...: busy is everything but idle and iowait.
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/);
  const ticks = fields.slice(0, 8).map(Number);
  const busy = ticks.reduce((sum, value) => sum + value, 0) - ticks[3]! - ticks[4]!;
  return (busy * 1000) / USER_HZ;
}

/** A process's CPU time so far (ms, every thread), 0 once it is gone. */
function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime is field 14 and stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
  } catch {
    return 0;
  }
}

export interface CpuSpend {
  /** Cores' worth (average over the window) taken by processes outside the bench: other work on a shared machine. */
  otherCores: number;
  /** CPU ms of each group of the bench's own processes over the window. */
  ownMs: Record<string, number>;
  windowMs: number;
}

/**
 * Who used the machine's CPU between `start` and `stop`: the bench's own processes (grouped, e.g. the gateway and
 * its Postgres backends) and, as the rest of the machine's busy time, everyone else.
 */
export class CpuLedger {
  private readonly startedAt = performance.now();
  private readonly machineAtStart = machineBusyMs();
  private readonly atStart = new Map<number, number>();

  constructor(pids: Record<string, readonly number[]>) {
    for (const pid of Object.values(pids).flat()) this.atStart.set(pid, processCpuMs(pid));
  }

  /** `pids`: the groups' processes now (a process started during the window counts from 0). */
  stop(pids: Record<string, readonly number[]>): CpuSpend {
    const windowMs = performance.now() - this.startedAt;
    const ownMs = Object.fromEntries(
      Object.entries(pids).map(([group, list]) => [
        group,
        [...new Set(list)].reduce((sum, pid) => sum + processCpuMs(pid) - (this.atStart.get(pid) ?? 0), 0),
      ]),
    );
    const own = Object.values(ownMs).reduce((sum, value) => sum + value, 0);
    const otherMs = Math.max(0, machineBusyMs() - this.machineAtStart - own);
    return { otherCores: otherMs / windowMs, ownMs, windowMs };
  }
}

export interface BoundInput {
  runs: number;
  ioMs: number;
  cpuStepMs: number;
  /** Per run: I/O steps on the longest path, CPU steps on it, CPU steps in all. */
  shape: {
    pathIo: number;
    pathCpu: number;
    cpuSteps: number;
    ioBeforeFirstCpu: number;
    ioAfterLastCpu: number;
  };
  otherCores: number;
}

export interface Bound {
  boundMs: number;
  criticalPathMs: number;
  cpuTermMs: number;
  coresForSteps: number;
}

/**
 * The makespan no schedule can beat: the longest path of one run's DAG (I/O steps at their server delay, CPU steps
 * at their CPU time), or all runs' CPU work spread over the cores left by other processes, plus the I/O that must
 * come before the first CPU step (no CPU step is ready earlier) and after the last one. The gateway's own work
 * (queueing, state writes, Postgres) gets no core of its own: it is overhead the design should keep small, so the
 * bound does not excuse it.
 */
export function lowerBound(input: BoundInput): Bound {
  const { runs, ioMs, cpuStepMs, shape } = input;
  const criticalPathMs = shape.pathIo * ioMs + shape.pathCpu * cpuStepMs;
  // At least a tenth of a core, so a machine saturated by others gives a finite (and large) bound.
  const coresForSteps = Math.max(0.1, availableParallelism() - input.otherCores);
  const cpuTermMs =
    (shape.ioBeforeFirstCpu + shape.ioAfterLastCpu) * ioMs +
    (runs * shape.cpuSteps * cpuStepMs) / coresForSteps;
  return { boundMs: Math.max(criticalPathMs, cpuTermMs), criticalPathMs, cpuTermMs, coresForSteps };
}
