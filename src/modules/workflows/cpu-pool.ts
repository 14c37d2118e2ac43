import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../platform/logging/logger';

/** The thread script: compiled beside this file; under ts-jest-like runners (sources), the build's copy. */
function threadScript(): string {
  const compiled = resolve(__dirname, 'cpu-thread.js');
  if (existsSync(compiled)) return compiled;
  return resolve(__dirname, '../../../dist/src/modules/workflows/cpu-thread.js');
}

export class StepTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms (the step's thread was stopped)`);
    this.name = 'StepTimeoutError';
  }
}

export class StepCancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'StepCancelledError';
  }
}

interface Task {
  id: number;
  action: string;
  config: Record<string, unknown>;
  scope: Record<string, unknown>;
  timeoutMs: number;
  signal?: AbortSignal;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  task?: Task;
  timer?: NodeJS.Timeout;
  onAbort?: () => void;
}

/**
 * Worker threads started once, for CPU steps: a step computes on its own core and never blocks an event loop, and a
 * timeout or cancel really stops it (the thread is terminated and a fresh one takes its place).
 */
export class CpuPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Task[] = [];
  private nextId = 1;
  private closed = false;
  private readonly script = threadScript();

  constructor(
    readonly size: number,
    private readonly logger: Logger,
  ) {
    for (let i = 0; i < size; i++) this.slots.push({ worker: this.spawn() });
  }

  run(
    action: string,
    config: Record<string, unknown>,
    scope: Record<string, unknown>,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('the CPU pool is closed'));
    if (options.signal?.aborted) return Promise.reject(new StepCancelledError());
    return new Promise((resolvePromise, rejectPromise) => {
      const task: Task = {
        id: this.nextId++,
        action,
        config,
        scope,
        timeoutMs: options.timeoutMs,
        signal: options.signal,
        resolve: resolvePromise,
        reject: rejectPromise,
      };
      // Cancelled while still waiting: leave the queue at once.
      options.signal?.addEventListener(
        'abort',
        () => {
          const index = this.waiting.indexOf(task);
          if (index < 0) return;
          this.waiting.splice(index, 1);
          task.reject(new StepCancelledError());
        },
        { once: true },
      );
      this.waiting.push(task);
      this.dispatch();
    });
  }

  /** Threads busy right now. */
  get busy(): number {
    return this.slots.filter((slot) => slot.task).length;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const task of this.waiting.splice(0)) task.reject(new Error('the CPU pool is closed'));
    await Promise.all(
      this.slots.map(async (slot) => {
        slot.task?.reject(new Error('the CPU pool is closed'));
        this.release(slot);
        await slot.worker.terminate();
      }),
    );
  }

  private spawn(): Worker {
    // Bounded heap: a step that builds a huge result dies alone instead of taking the process with it.
    const worker = new Worker(this.script, { resourceLimits: { maxOldGenerationSizeMb: 256 } });
    worker.unref();
    worker.on('message', (message: { id: number; ok: boolean; value?: unknown; message?: string }) => {
      const slot = this.slots.find((candidate) => candidate.worker === worker);
      if (!slot?.task || slot.task.id !== message.id) return;
      const task = slot.task;
      this.release(slot);
      if (message.ok) task.resolve(message.value);
      else task.reject(new Error(message.message));
      this.dispatch();
    });
    worker.on('error', (error) => {
      this.logger.warn({ err: error }, 'CPU pool thread failed; replacing it');
      this.replace(worker, error);
    });
    worker.on('exit', (code) => {
      if (!this.closed && code !== 0) this.replace(worker, new Error(`CPU thread exited with code ${code}`));
    });
    return worker;
  }

  private replace(worker: Worker, error: Error): void {
    const slot = this.slots.find((candidate) => candidate.worker === worker);
    if (!slot) return;
    const task = slot.task;
    this.release(slot);
    task?.reject(error);
    if (!this.closed) slot.worker = this.spawn();
    this.dispatch();
  }

  /** Stops the slot's thread mid-task and puts a fresh one in its place. */
  private kill(slot: Slot, error: Error): void {
    const { worker, task } = slot;
    this.release(slot);
    slot.worker = this.spawn();
    worker.removeAllListeners();
    void worker.terminate();
    task?.reject(error);
    this.dispatch();
  }

  private release(slot: Slot): void {
    clearTimeout(slot.timer);
    if (slot.onAbort) slot.task?.signal?.removeEventListener('abort', slot.onAbort);
    slot.task = undefined;
    slot.timer = undefined;
    slot.onAbort = undefined;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.task) continue;
      // Fill this slot with the first task not cancelled while it waited.
      let task = this.waiting.shift();
      while (task?.signal?.aborted) {
        task.reject(new StepCancelledError());
        task = this.waiting.shift();
      }
      if (!task) return;
      const current = task;
      slot.task = current;
      slot.timer = setTimeout(
        () => this.kill(slot, new StepTimeoutError(current.timeoutMs)),
        current.timeoutMs,
      );
      slot.onAbort = () => this.kill(slot, new StepCancelledError());
      current.signal?.addEventListener('abort', slot.onAbort, { once: true });
      slot.worker.postMessage({
        id: current.id,
        action: current.action,
        config: current.config,
        scope: current.scope,
      });
    }
  }
}
