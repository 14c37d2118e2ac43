import type { Pool } from 'pg';
import type { Metrics } from '../metrics/metrics';

/** A pool's claim on its database server's connection budget (declared before any pool opens). */
export interface PoolClaim {
  /** The name the pool is opened with (`openPool(name, ...)`; `main` is the DataSource's). */
  name: string;
  /** Its size when the budget holds every pool's: its default size, and its share when the budget is smaller. */
  weight: number;
  /** An operator's explicit size (the pool's `*_DB_POOL_SIZE`): taken as it is, and counted against the budget. */
  size?: number;
  /** The fewest connections the pool works with. Default 1. */
  min?: number;
  /** Where the explicit size or the minimum comes from, for the refusal message (e.g. `DATABASE_POOL_SIZE`). */
  setting?: string;
}

export class ConnectionBudgetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectionBudgetError';
  }
}

/**
 * The most connections one process opens to one database server (the primary, or one replica), shared by all its
 * pools there. Explicit sizes are taken first; the other pools get their weight when the rest of the budget holds
 * every weight, and otherwise shares of it in proportion to their weights (never below their minimum). A process
 * whose explicit sizes and minimums together exceed the budget does not start: the error says by how much.
 */
export class ConnectionBudget {
  private readonly sizes: ReadonlyMap<string, number>;
  private readonly pools = new Map<string, Pool>();

  constructor(
    readonly options: {
      /** Which server the budget is for: a metrics label and the start-up line (`primary`, `replica 1`, ...). */
      server: string;
      max: number;
      /** The setting the budget comes from, for the refusal message. */
      setting?: string;
      claims: readonly PoolClaim[];
    },
  ) {
    this.sizes = planConnections(options.max, options.claims, options.setting ?? 'the connection budget');
  }

  get max(): number {
    return this.options.max;
  }

  /** The pool's size under the budget; a pool that was not declared is a programming error. */
  sizeOf(name: string): number {
    const size = this.sizes.get(name);
    if (size === undefined)
      throw new Error(
        `pool "${name}" has no share of the ${this.options.server} connection budget: declare it in its module's pools`,
      );
    return size;
  }

  /** Every pool's size, in declaration order. */
  plan(): Record<string, number> {
    return Object.fromEntries(this.sizes);
  }

  /** The start-up line's message: `budget 16 on primary: main 5, search pool 3, ...`. */
  describe(): string {
    const pools = [...this.sizes].map(([name, size]) => `${name} ${size}`).join(', ');
    return `database connections: budget ${this.options.max} on ${this.options.server}: ${pools}`;
  }

  /** Reports the opened pool's connections in `crm_db_connections`. */
  track(name: string, pool: Pool): void {
    this.sizeOf(name);
    this.pools.set(name, pool);
  }

  /** Connections in use and idle, and callers waiting for one, per opened pool. */
  usage(): Array<{ pool: string; max: number; inUse: number; idle: number; waiting: number }> {
    return [...this.pools].map(([name, pool]) => ({
      pool: name,
      max: this.sizeOf(name),
      inUse: pool.totalCount - pool.idleCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
    }));
  }
}

/** The pools' sizes under `max` connections, or a ConnectionBudgetError naming what does not fit. */
export function planConnections(
  max: number,
  claims: readonly PoolClaim[],
  budgetSetting: string,
): Map<string, number> {
  const names = new Set<string>();
  for (const claim of claims) {
    if (names.has(claim.name)) throw new Error(`pool "${claim.name}" is declared twice`);
    names.add(claim.name);
  }
  const minOf = (claim: PoolClaim) => Math.max(1, claim.min ?? 1);
  const sizes = new Map<string, number>(claims.map((claim) => [claim.name, 0]));
  const explicit = claims.filter((claim) => claim.size !== undefined);
  for (const claim of explicit) sizes.set(claim.name, Math.max(claim.size!, minOf(claim)));
  const shared = claims.filter((claim) => claim.size === undefined);
  const fixed = explicit.reduce((sum, claim) => sum + sizes.get(claim.name)!, 0);
  const needed = fixed + shared.reduce((sum, claim) => sum + minOf(claim), 0);
  if (needed > max) throw new ConnectionBudgetError(refusal(max, needed, claims, sizes, budgetSetting));

  let rest = max - fixed;
  let open = shared;
  const wanted = (claim: PoolClaim) => Math.max(claim.weight, minOf(claim));
  if (open.reduce((sum, claim) => sum + wanted(claim), 0) <= rest) {
    for (const claim of open) sizes.set(claim.name, wanted(claim));
    return sizes;
  }
  // Pools whose proportional share is below their minimum get the minimum; the rest share what remains.
  for (;;) {
    const weights = open.reduce((sum, claim) => sum + claim.weight, 0);
    const starved = open.filter((claim) => (rest * claim.weight) / weights < minOf(claim));
    if (starved.length === 0) break;
    for (const claim of starved) {
      sizes.set(claim.name, minOf(claim));
      rest -= minOf(claim);
    }
    open = open.filter((claim) => !starved.includes(claim));
  }
  const weights = open.reduce((sum, claim) => sum + claim.weight, 0);
  const exact = open.map((claim) => ({ claim, share: (rest * claim.weight) / weights }));
  for (const { claim, share } of exact) sizes.set(claim.name, Math.floor(share));
  // Largest remainders take the connections the floors left over, so the shares add up to the budget.
  let left = rest - exact.reduce((sum, { share }) => sum + Math.floor(share), 0);
  for (const { claim } of [...exact].sort(
    (a, b) => b.share - Math.floor(b.share) - (a.share - Math.floor(a.share)),
  )) {
    if (left-- <= 0) break;
    sizes.set(claim.name, sizes.get(claim.name)! + 1);
  }
  return sizes;
}

function refusal(
  max: number,
  needed: number,
  claims: readonly PoolClaim[],
  sizes: Map<string, number>,
  budgetSetting: string,
): string {
  const parts = claims.map((claim) => {
    if (claim.size !== undefined)
      return `${claim.name} ${sizes.get(claim.name)}${claim.setting ? ` (${claim.setting})` : ''}`;
    const min = Math.max(1, claim.min ?? 1);
    return `${claim.name} at least ${min}${min > 1 && claim.setting ? ` (${claim.setting})` : ''}`;
  });
  return (
    `${budgetSetting}=${max} cannot hold this process's database pools: ${parts.join(' + ')} = ${needed}. ` +
    `Raise ${budgetSetting} to at least ${needed}, or lower the explicit pool sizes`
  );
}

export const ConnectionMetric = {
  connections: 'crm_db_connections',
  max: 'crm_db_connections_max',
  waiting: 'crm_db_pool_waiting',
} as const;

/** The pools' connections (in use, idle), their sizes and their waiting callers, per server and pool, at scrape time. */
export function declareConnectionMetrics(metrics: Metrics, budgets: () => readonly ConnectionBudget[]): void {
  const each = <T>(
    read: (budget: ConnectionBudget, usage: ReturnType<ConnectionBudget['usage']>[number]) => T[],
  ) => budgets().flatMap((budget) => budget.usage().flatMap((usage) => read(budget, usage)));
  metrics.declare({
    type: 'gauge',
    name: ConnectionMetric.connections,
    help: 'Connections of each database pool, in use or idle',
    labelNames: ['server', 'pool', 'state'],
    collect: async () =>
      each(({ options: { server } }, { pool, inUse, idle }) => [
        { labels: { server, pool, state: 'in_use' }, value: inUse },
        { labels: { server, pool, state: 'idle' }, value: idle },
      ]),
  });
  metrics.declare({
    type: 'gauge',
    name: ConnectionMetric.max,
    help: "Each database pool's size under its server's connection budget",
    labelNames: ['server', 'pool'],
    collect: async () =>
      each(({ options: { server } }, { pool, max }) => [{ labels: { server, pool }, value: max }]),
  });
  metrics.declare({
    type: 'gauge',
    name: ConnectionMetric.waiting,
    help: 'Queries waiting for a connection of each database pool',
    labelNames: ['server', 'pool'],
    collect: async () =>
      each(({ options: { server } }, { pool, waiting }) => [{ labels: { server, pool }, value: waiting }]),
  });
}
