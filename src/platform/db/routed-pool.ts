import { Pool } from 'pg';
import type { ReadRouting } from './read-routing';

/**
 * A pg pool that runs statements on the primary's pool and, inside a read (`ReadRouting.read`) routed to a replica,
 * on that replica's pool of the same settings instead. Module code keeps one pool and marks which of its work is a
 * read; outside a read (writes, locking reads, migrations) everything stays on the primary. It opens no connection of
 * its own: it is a Pool only so that module code keeps its type.
 */
export class RoutedPool extends Pool {
  constructor(
    private readonly primary: Pool,
    private readonly routing: ReadRouting,
    private readonly replicas: readonly Pool[],
  ) {
    super({ max: 1 });
    // The pool's size and counts are the target's (a caller checks them before taking a connection).
    for (const property of ['options', 'totalCount', 'idleCount', 'waitingCount'] as const)
      Object.defineProperty(this, property, { get: () => this.target()[property] });
  }

  /** The pool of the current read's target. */
  private target(): Pool {
    const replica = this.routing.current().replica;
    return (replica === undefined ? undefined : this.replicas[replica]) ?? this.primary;
  }

  // pg's overloads (callback and promise forms, query configs) pass through unchanged.
  override query(...args: unknown[]): never {
    return this.target().query(...(args as [never]));
  }

  override connect(...args: unknown[]): never {
    return this.target().connect(...(args as [never])) as never;
  }

  override async end(): Promise<void> {
    await Promise.all([this.primary.end(), ...this.replicas.map((replica) => replica.end())]);
  }
}
