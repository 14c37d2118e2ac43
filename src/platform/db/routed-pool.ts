import { Pool, type PoolConfig } from 'pg';
import type { ReadRouting } from './read-routing';

/**
 * A pg pool on the primary that, inside a read (`ReadRouting.read`) routed to a replica, runs its statements on that
 * replica's pool of the same settings instead. Module code keeps one pool and marks which of its work is a read;
 * outside a read (writes, locking reads, migrations) everything stays on the primary.
 */
export class RoutedPool extends Pool {
  constructor(
    config: PoolConfig,
    private readonly routing: ReadRouting,
    private readonly replicas: readonly Pool[],
    private readonly replicaUrls: readonly string[],
  ) {
    super(config);
  }

  /** The pool of the current read's target. */
  private target(): Pool | undefined {
    const replica = this.routing.current().replica;
    return replica === undefined ? undefined : this.replicas[replica];
  }

  /** The server the current read runs on, for a connection of its own (e.g. one that imports a snapshot). */
  get connectionString(): string | undefined {
    const replica = this.routing.current().replica;
    return replica === undefined ? this.options.connectionString : this.replicaUrls[replica];
  }

  // pg's overloads (callback and promise forms, query configs) pass through unchanged.
  override query(...args: unknown[]): never {
    const replica = this.target();
    return replica ? replica.query(...(args as [never])) : super.query(...(args as [never]));
  }

  override connect(...args: unknown[]): never {
    const replica = this.target();
    return (replica ? replica.connect(...(args as [never])) : super.connect(...(args as [never]))) as never;
  }

  override async end(): Promise<void> {
    await Promise.all([super.end(), ...this.replicas.map((replica) => replica.end())]);
  }
}
