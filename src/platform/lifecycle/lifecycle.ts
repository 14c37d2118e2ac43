import type { Logger } from '../logging/logger';

/** Shutdown phases run in this order; within a phase, resources close one by one, last registered first. */
export const ShutdownPhase = {
  transport: 1,
  workers: 2,
  queues: 3,
  cache: 4,
  database: 5,
} as const;
export type ShutdownPhase = (typeof ShutdownPhase)[keyof typeof ShutdownPhase];

interface Registration {
  name: string;
  phase: ShutdownPhase;
  close: () => Promise<void> | void;
}

/** Collects disposables and closes them once, in phase order; `stop` is idempotent. */
export class Lifecycle {
  private readonly registrations: Registration[] = [];
  private stopping?: Promise<void>;

  constructor(private readonly logger: Logger) {}

  register(name: string, phase: ShutdownPhase, close: () => Promise<void> | void): void {
    this.registrations.push({ name, phase, close });
  }

  stop(timeoutMs: number): Promise<void> {
    this.stopping ??= this.runShutdown(timeoutMs);
    return this.stopping;
  }

  private async runShutdown(timeoutMs: number): Promise<void> {
    const phases = [...new Set(this.registrations.map((r) => r.phase))].sort((a, b) => a - b);
    const deadline = Date.now() + timeoutMs;
    for (const phase of phases) {
      const inPhase = this.registrations.filter((r) => r.phase === phase).reverse();
      for (const registration of inPhase) await this.close(registration, deadline, timeoutMs);
    }
  }

  /** Closes one resource within what is left of the budget; a failure is logged and shutdown goes on. */
  private async close(registration: Registration, deadline: number, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(registration.close),
        new Promise<void>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`shutdown budget of ${timeoutMs} ms exceeded`)),
            Math.max(0, deadline - Date.now()),
          );
        }),
      ]);
      this.logger.debug({ resource: registration.name }, 'closed');
    } catch (error) {
      this.logger.error({ resource: registration.name, err: error }, 'failed to close cleanly');
    } finally {
      clearTimeout(timer);
    }
  }
}
