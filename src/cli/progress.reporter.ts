import { Presets, SingleBar } from 'cli-progress';

/** Where progress goes: process.stdout unless a test hands another stream. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface ProgressOptions {
  /** What is counted, after the numbers: `vectors`, `rows`. */
  unit: string;
  stream?: ProgressStream;
  /** Without a terminal: a line at least this often while work goes on (default 5 s)... */
  intervalMs?: number;
  /** ...and one each time this many more percent are done, at most one a second (default 10). */
  stepPercent?: number;
  /** The clock (tests). */
  now?: () => number;
}

/**
 * One task's progress at a time: a redrawn bar on a terminal; without one (CI logs, `| tee`, a file), whole
 * newline-terminated lines (never a carriage return), every few seconds or every few percent, and a summary line when
 * the task stops. `total` may be unknown (undefined): the lines then say how many so far.
 */
export interface ProgressReporter {
  start(label: string, total?: number): void;
  update(done: number, total?: number): void;
  /** Ends the task with a summary line (`<label>: <done>/<total> <unit> in <s> s`, or `summary` when given). */
  stop(summary?: string): void;
}

const MIN_GAP_MS = 1000;

export function createProgressReporter(options: ProgressOptions): ProgressReporter {
  const stream = options.stream ?? process.stdout;
  return stream.isTTY ? new BarProgress(stream, options) : new LineProgress(stream, options);
}

abstract class TaskProgress implements ProgressReporter {
  protected label = '';
  protected done = 0;
  protected total: number | undefined;
  protected startedAt = 0;
  protected running = false;

  constructor(
    protected readonly stream: ProgressStream,
    protected readonly options: ProgressOptions,
  ) {}

  protected now(): number {
    return (this.options.now ?? Date.now)();
  }

  protected counted(): string {
    return `${this.done}${this.total === undefined ? '' : `/${this.total}`} ${this.options.unit}`;
  }

  start(label: string, total?: number): void {
    if (this.running) this.stop();
    this.label = label;
    this.total = total;
    this.done = 0;
    this.startedAt = this.now();
    this.running = true;
  }

  update(done: number, total?: number): void {
    this.done = done;
    if (total !== undefined) this.total = total;
  }

  stop(summary?: string): void {
    if (!this.running) return;
    this.running = false;
    const seconds = ((this.now() - this.startedAt) / 1000).toFixed(1);
    this.stream.write(`${summary ?? `${this.label}: ${this.counted()} in ${seconds} s`}\n`);
  }
}

/** Without a terminal: a line now and then, each ending in a newline. */
class LineProgress extends TaskProgress {
  private lastLineAt = 0;
  private lastPercent = 0;

  override start(label: string, total?: number): void {
    super.start(label, total);
    this.lastLineAt = this.startedAt;
    this.lastPercent = 0;
  }

  override update(done: number, total?: number): void {
    super.update(done, total);
    if (!this.running) return;
    const now = this.now();
    const since = now - this.lastLineAt;
    const percent = this.total ? Math.min(100, Math.floor((100 * this.done) / this.total)) : undefined;
    const step = this.options.stepPercent ?? 10;
    const stepped = percent !== undefined && percent >= this.lastPercent + step && since >= MIN_GAP_MS;
    if (!stepped && since < (this.options.intervalMs ?? 5000)) return;
    if (percent !== undefined && percent >= 100) return; // the summary says it
    this.lastLineAt = now;
    if (percent !== undefined) this.lastPercent = percent;
    this.stream.write(`${this.label}: ${this.counted()}${percent === undefined ? '' : ` (${percent}%)`}\n`);
  }
}

/** On a terminal: cli-progress's bar, redrawn in place (drawn once the total is known), then the summary line. */
class BarProgress extends TaskProgress {
  private bar: SingleBar | undefined;

  override start(label: string, total?: number): void {
    super.start(label, total);
    if (total !== undefined) this.open(total);
  }

  override update(done: number, total?: number): void {
    super.update(done, total);
    if (!this.running) return;
    if (!this.bar) this.open(this.total);
    else if (total !== undefined) this.bar.setTotal(Math.max(total, 1));
    this.bar!.update(done);
  }

  override stop(summary?: string): void {
    this.bar?.stop();
    this.bar = undefined;
    super.stop(summary);
  }

  private open(total: number | undefined): void {
    const format =
      total === undefined
        ? `${this.label}: {value} ${this.options.unit}`
        : `${this.label} [{bar}] {value}/{total} ${this.options.unit}  {eta_formatted} left`;
    this.bar = new SingleBar(
      {
        format,
        hideCursor: true,
        stream: this.stream as NodeJS.WritableStream,
        clearOnComplete: true,
        gracefulExit: true,
      },
      Presets.shades_classic,
    );
    this.bar.start(Math.max(total ?? 1, 1), this.done);
  }
}
