import type { Logger } from '../../platform/logging/logger';
import type { FallbackBackend } from './backends/fallback.backend';
import type { VectorBackend } from './backends/vector-backend';
import type { VectorBackendName } from './vector.model';

export interface Health {
  healthy: boolean;
  reason: string | null;
  checkedAt: Date | null;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export interface VectorBackendHealthOptions {
  /** In priority order; the fallback last. */
  backends: readonly VectorBackend[];
  fallback: FallbackBackend;
  logger: Logger;
  /** How long a backend's health check may take before it counts as down. */
  checkTimeoutMs: number;
}

/**
 * Which backends can serve, as this process last saw it: set by the periodic checks and by failures met on the way
 * (a query or write that fails marks its backend down until the next check says otherwise).
 */
export class VectorBackendHealth {
  private readonly health = new Map<VectorBackendName, Health>();

  constructor(private readonly options: VectorBackendHealthOptions) {
    for (const backend of options.backends)
      this.health.set(backend.name, { healthy: false, reason: 'not checked yet', checkedAt: null });
  }

  /** Asks every backend whether it can serve; logs each change. */
  async check(): Promise<void> {
    await Promise.all(
      this.options.backends.map(async (backend) => {
        try {
          await withTimeout(backend.check(), this.options.checkTimeoutMs, backend.name);
          this.set(backend, null);
        } catch (error) {
          this.set(backend, (error as Error).message);
        }
      }),
    );
  }

  /** The backend queries go to first: the first healthy one, else the fallback. */
  active(): VectorBackend {
    return this.options.backends.find((backend) => this.isHealthy(backend)) ?? this.options.fallback;
  }

  /** The healthy backends in priority order, then the fallback whatever its health: the order a query tries. */
  candidates(): VectorBackend[] {
    const candidates = this.options.backends.filter((backend) => this.isHealthy(backend));
    if (!candidates.includes(this.options.fallback)) candidates.push(this.options.fallback);
    return candidates;
  }

  isHealthy(backend: VectorBackend): boolean {
    return this.health.get(backend.name)?.healthy ?? false;
  }

  of(backend: VectorBackend): Health {
    return this.health.get(backend.name)!;
  }

  /** Records a check's or a failure's outcome (`problem` null: healthy); logs each change. */
  set(backend: VectorBackend, problem: string | null): void {
    const before = this.health.get(backend.name);
    const healthy = problem === null;
    if (before?.healthy !== healthy || (before.reason !== problem && before.checkedAt === null))
      this.options.logger[healthy ? 'info' : 'warn'](
        { backend: backend.name, reason: problem },
        healthy ? 'vector backend up' : 'vector backend down',
      );
    this.health.set(backend.name, { healthy, reason: problem, checkedAt: new Date() });
  }
}
