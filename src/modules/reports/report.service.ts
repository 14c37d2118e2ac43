import { performance } from 'node:perf_hooks';
import type { Pool } from 'pg';
import type { ReadRouting } from '../../platform/db/read-routing';
import type { PoolerPolicy } from '../../platform/db/pooler';
import type { Counter, Histogram } from 'prom-client';
import { AppError, ForbiddenError } from '../../platform/errors/app-error';
import type { Logger } from '../../platform/logging/logger';
import { bindNamed, RECORD_TABLE, type Principal, type RecordType, type ServiceRegistry } from '../kernel';
import type { ReadScope } from '../sharing';
import { ReportErrorCode } from './report.errors';
import {
  aggregateSql,
  validateReport,
  type AggregateType,
  type ReportInput,
  type ReportSource,
} from './report.model';
import { measureColumns } from './report.materialized';
import { RollupReads, type PlannedAggregate, type ReportRun } from './report.rollup-reads';
import { RollupRebuild } from './report.rollup-rebuild';
import type { RollupStateView } from './report.rollup-state';
import { ROLLUPS } from './report.rollups';
import { ReportResults } from './report.results';
import { ReportStatements } from './report.statements';

export interface ReportRowView {
  dimensions: Record<string, unknown>;
  value: number | null;
}

export interface AggregateView {
  name: string;
  type: AggregateType;
  field: string | null;
  dimensions: string[];
  source: ReportSource;
  /** The rollup that answered it (MATERIALIZED). */
  rollup: string | null;
  rows: ReportRowView[];
}

export interface ReportView {
  entityType: string;
  source: ReportSource;
  computedAt: Date;
  tookMs: number;
  aggregates: AggregateView[];
}

export interface ReportSettings {
  /** Reports whose estimated cost (EXPLAIN) passes this are refused before they run. */
  maxCost: number;
  statementTimeoutMs: number;
  planCacheSize: number;
  rollupMaxRatio: number;
  rollupRebuildMs: number;
  /** Report answers kept per process under their data version and visibility key (0: none). */
  resultCacheSize: number;
  /** Answers with more rows than this are not kept. */
  resultCacheMaxRows: number;
}

export interface ReportMetrics {
  duration: Histogram<'source'>;
  planCache: Counter<'result'>;
  rejected: Counter<'reason'>;
  /** Aggregates answered from a rollup (hit), or why not. */
  rollups: Counter<'result'>;
  rebuild: Histogram<'entity'>;
  /** Report answers found in the result cache (hit), computed (miss), or not kept (raced, too_large). */
  results: Counter<'result'>;
}

export interface ReportServiceDeps {
  /** The reports' own pool: named prepared statements live per connection, and a slow report cannot starve others. */
  pool: Pool;
  reads: ReadRouting;
  /** Where reports read from rollups run (planned without parallel workers). */
  rollupPool: Pool;
  /** Named statements or not (not behind PgBouncer 1.18), for the plan cache's prepared statements. */
  pooler: PoolerPolicy;
  visibility: ServiceRegistry['visibility'];
  metrics: ReportMetrics;
  settings: ReportSettings;
  logger: Logger;
}

/**
 * Report aggregates computed under the caller's visibility, live or from rollups. Each aggregate's SQL depends only on
 * the report's shape (values are bound), so its text keys a bounded plan cache (`ReportStatements`): the first run
 * EXPLAINs it (and the report is refused when the estimate passes the budget), every run executes it as a named
 * prepared statement, so Postgres keeps its plan. `RollupReads` picks the rollup that answers an aggregate, when one
 * does for less; `RollupRebuild` rebuilds the rollups.
 */
export class ReportService {
  private readonly statements: ReportStatements;
  private readonly rollups: RollupReads;
  private readonly rebuilder: RollupRebuild;
  private readonly results: ReportResults<AggregateView>;

  constructor(private readonly deps: ReportServiceDeps) {
    // One settings object for all: a change to it (rollupMaxRatio, in tests) is seen everywhere.
    const { pool, rollupPool, visibility, metrics, settings, logger, pooler } = deps;
    this.statements = new ReportStatements({ pool, metrics, settings, pooler });
    this.rollups = new RollupReads({ pool, rollupPool, statements: this.statements, metrics, settings });
    this.rebuilder = new RollupRebuild({ pool, visibility, metrics, settings, logger });
    this.results = new ReportResults({
      pool,
      statements: this.statements,
      metrics,
      size: settings.resultCacheSize,
      maxRows: settings.resultCacheMaxRows,
    });
  }

  get settings(): ReportSettings {
    return this.deps.settings;
  }

  async report(principal: Principal, input: ReportInput): Promise<ReportView> {
    const report = validateReport(input);
    // Live aggregates and rollup reads alike, on one server: a replica when the caller's writes are there.
    return this.deps.reads.read(principal, () => this.compute(principal, report));
  }

  /**
   * The report at the data version it reads: from the result cache when an answer for the same report, visibility key
   * and data version is held (exact: see `ReportResults`), computed otherwise. `source: LIVE` always computes.
   */
  private async compute(
    principal: Principal,
    report: ReturnType<typeof validateReport>,
  ): Promise<ReportView> {
    const started = performance.now();
    const cached = this.results.enabled && report.source !== 'LIVE';
    const [{ scope, key: visibilityKey }, usable, before] = await Promise.all([
      this.deps.visibility.readScopeWithKey(principal, report.entityType),
      this.rollups.usableRollups(principal.companyId),
      cached ? this.results.version(principal.companyId, report.entityType) : null,
    ]);
    const key = cached ? this.results.key(principal.companyId, visibilityKey, report) : null;
    const held = key !== null && before !== null ? this.results.get(key, before) : undefined;
    let aggregates: AggregateView[];
    let computedAt: Date;
    if (held) {
      ({ aggregates, computedAt } = held);
    } else {
      computedAt = new Date();
      aggregates = await this.aggregates(report, scope, usable);
      if (key !== null && before !== null) {
        const after = await this.results.version(principal.companyId, report.entityType);
        this.results.set(key, before, after, { aggregates, computedAt });
      }
    }
    const source: ReportSource = aggregates.every((aggregate) => aggregate.rollup) ? 'MATERIALIZED' : 'LIVE';
    const tookMs = performance.now() - started;
    this.deps.metrics.duration.observe({ source: held ? 'cached' : source.toLowerCase() }, tookMs / 1000);
    return { entityType: report.entityType, source, computedAt, tookMs, aggregates };
  }

  /** Every aggregate of the report under the caller's scope, each from a rollup or live, priced together first. */
  private async aggregates(
    report: ReturnType<typeof validateReport>,
    scope: ReadScope,
    usable: ReadonlySet<string>,
  ): Promise<AggregateView[]> {
    const visible = scope.predicate('r');
    const table = RECORD_TABLE[report.entityType];
    // Each aggregate's path, priced before any of it runs: the whole report must fit the budget.
    const plans: PlannedAggregate[] = [];
    for (const aggregate of report.aggregates) {
      const live = aggregateSql(report, aggregate, table, (bind) => bindNamed(visible, bind));
      plans.push(await this.rollups.choosePath(report, aggregate, live, scope, usable));
    }
    const cost = plans.reduce((sum, plan) => sum + plan.cost, 0);
    if (cost > this.deps.settings.maxCost) this.refuse(cost);
    const runs = this.rollups.runs(report, plans, scope);
    const views = new Map<PlannedAggregate, AggregateView>();
    await Promise.all(
      runs.map(async (run) => {
        const answered = await this.run(run);
        run.members.forEach((member, k) => views.set(member, answered[k]!));
      }),
    );
    return plans.map((plan) => views.get(plan)!);
  }

  /**
   * Rebuilds a company's rollups of one record type (or all) from its records and records how large each came out (a
   * rollup over `rollupMaxRatio` of its records is not read until a rebuild finds it smaller). The triggers keep the
   * rollups exact; the rebuild repairs anything that bypassed them and measures. It holds the company's writes to the
   * type while it runs (seconds at a million records); when writers hold it up past a second it gives way and retries.
   */
  async precompute(
    companyId: string,
    entityType?: RecordType | null,
    { attempts = 3, vacuum = true } = {},
  ): Promise<RollupStateView[]> {
    const entities = [...new Set(ROLLUPS.map((d) => d.entityType))].filter(
      (e) => !entityType || e === entityType,
    );
    const views = await this.rebuilder.rebuild(companyId, entities, attempts);
    this.rollups.forget(companyId);
    this.results.forget(companyId);
    if (vacuum) await this.rebuilder.vacuum(entities);
    return views;
  }

  /** `precompute` for a company admin, on their own company. */
  async precomputeFor(principal: Principal, entityType: RecordType | null): Promise<RollupStateView[]> {
    if (!principal.isAdmin) throw new ForbiddenError('Only company admins may rebuild report rollups');
    return this.precompute(principal.companyId, entityType);
  }

  /** The periodic rebuild: every company, one after another. */
  async rebuildAll(): Promise<void> {
    const { rows } = await this.deps.pool.query<{ id: string }>('SELECT id FROM companies ORDER BY id');
    for (const row of rows)
      await this.precompute(row.id, null, { vacuum: false }).catch((error: unknown) => {
        // A busy company waits for the next round; the others go on.
        if (!(error instanceof AppError && error.code === ReportErrorCode.REPORT_ROLLUPS_BUSY)) throw error;
      });
    await this.rebuilder.vacuum([...new Set(ROLLUPS.map((d) => d.entityType))]);
  }

  /** `rollupStates` for a company admin, of their own company. */
  async rollupStatesFor(principal: Principal): Promise<RollupStateView[]> {
    if (!principal.isAdmin) throw new ForbiddenError('Only company admins may see report rollups');
    return this.rollupStates(principal.companyId);
  }

  /** The state of a company's rollups (those never rebuilt are absent). */
  async rollupStates(companyId: string): Promise<RollupStateView[]> {
    return this.rollups.states(companyId);
  }

  /** The result cache's answers held, and its lookups answered (hits) and computed (misses) since start. */
  get resultCache(): { size: number; hits: number; misses: number } {
    return { size: this.results.size, ...this.results.counts };
  }

  /** Shapes in the plan cache (for operators and tests). */
  get cachedShapes(): number {
    return this.statements.cachedShapes;
  }

  /** The statements prepared on one of the pool's connections (all of them when the pool holds one). */
  async preparedStatements(): Promise<string[]> {
    return this.statements.preparedStatements();
  }

  private refuse(cost: number): never {
    this.deps.metrics.rejected.inc({ reason: 'cost' });
    throw new AppError(
      ReportErrorCode.REPORT_TOO_EXPENSIVE,
      `This report would cost about ${Math.round(cost)} (the budget is ${this.deps.settings.maxCost}): narrow it with a filter or a date range`,
      { estimatedCost: Math.round(cost), budget: this.deps.settings.maxCost },
    );
  }

  /** One statement's rows, as the view of each aggregate it answers. */
  private async run(run: ReportRun): Promise<AggregateView[]> {
    const rows = await this.statements.execute(
      run,
      run.statement,
      run.rollup ? this.deps.rollupPool : this.deps.pool,
    );
    return run.members.map(({ aggregate }, k) => {
      const { value } = measureColumns(k, run.members.length);
      return {
        name: aggregate.name,
        type: aggregate.type,
        field: aggregate.field?.name ?? null,
        dimensions: aggregate.dimensions.map((d) => d.key),
        source: run.rollup ? 'MATERIALIZED' : 'LIVE',
        rollup: run.rollup,
        rows: rows.map((row) => ({
          dimensions: Object.fromEntries(aggregate.dimensions.map((d, i) => [d.key, row[`d${i}`] ?? null])),
          value: row[value] === null || row[value] === undefined ? null : Number(row[value]),
        })),
      };
    });
  }
}
