import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import type { Pool } from 'pg';
import type { Counter, Histogram } from 'prom-client';
import { AppError } from '../../platform/errors/app-error';
import { bindNamed, RECORD_TABLE, type Principal, type ServiceRegistry } from '../kernel';
import {
  aggregateSql,
  validateReport,
  type AggregateType,
  type ReportInput,
  type ReportSource,
  type ValidAggregate,
} from './report.model';

export const ReportErrorCode = {
  REPORT_TOO_EXPENSIVE: 'REPORT_TOO_EXPENSIVE',
  REPORT_TIMEOUT: 'REPORT_TIMEOUT',
} as const;

export interface ReportRowView {
  dimensions: Record<string, unknown>;
  value: number | null;
}

export interface AggregateView {
  name: string;
  type: AggregateType;
  field: string | null;
  dimensions: string[];
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
}

export interface ReportMetrics {
  duration: Histogram<'source'>;
  planCache: Counter<'result'>;
  rejected: Counter<'reason'>;
}

export interface ReportServiceDeps {
  /** The reports' own pool: named prepared statements live per connection, and a slow report cannot starve others. */
  pool: Pool;
  visibility: ServiceRegistry['visibility'];
  metrics: ReportMetrics;
  settings: ReportSettings;
}

interface CompiledShape {
  /** Name of the prepared statement (the same on every connection). */
  name: string;
  /** The planner's estimate for the shape, from the first EXPLAIN. */
  cost: number;
}

/**
 * Report aggregates computed live under the caller's visibility. Each aggregate's SQL depends only on the report's
 * shape (values are bound), so its text keys a bounded plan cache: the first run EXPLAINs it (and refuses it when
 * the estimate passes the budget), every run executes it as a named prepared statement, so Postgres keeps its plan.
 */
export class ReportService {
  private readonly shapes: LRUCache<string, CompiledShape>;

  constructor(private readonly deps: ReportServiceDeps) {
    this.shapes = new LRUCache({ max: deps.settings.planCacheSize });
  }

  get settings(): ReportSettings {
    return this.deps.settings;
  }

  async report(principal: Principal, input: ReportInput): Promise<ReportView> {
    const report = validateReport(input);
    const started = performance.now();
    const visible = await this.deps.visibility.readPredicate(principal, report.entityType, 'r');
    const table = RECORD_TABLE[report.entityType];
    const statements = report.aggregates.map((aggregate) => ({
      aggregate,
      ...aggregateSql(report, aggregate, table, (bind) => bindNamed(visible, bind)),
    }));
    // Every shape is priced before any of them runs: a refused report runs nothing.
    const compiled: CompiledShape[] = [];
    for (const statement of statements) compiled.push(await this.compile(statement.text, statement.values));
    const aggregates = await Promise.all(
      statements.map(async (statement, i) => this.run(statement.aggregate, compiled[i]!, statement)),
    );
    const tookMs = performance.now() - started;
    this.deps.metrics.duration.observe({ source: 'live' }, tookMs / 1000);
    return { entityType: report.entityType, source: 'LIVE', computedAt: new Date(), tookMs, aggregates };
  }

  /** Shapes in the plan cache (for operators and tests). */
  get cachedShapes(): number {
    return this.shapes.size;
  }

  /** The statements prepared on one of the pool's connections (all of them when the pool holds one). */
  async preparedStatements(): Promise<string[]> {
    const { rows } = await this.deps.pool.query<{ name: string }>(
      'SELECT name FROM pg_prepared_statements ORDER BY name',
    );
    return rows.map((row) => row.name);
  }

  private async compile(text: string, values: unknown[]): Promise<CompiledShape> {
    const key = createHash('sha256').update(text).digest('hex');
    const known = this.shapes.get(key);
    if (known) {
      this.deps.metrics.planCache.inc({ result: 'hit' });
      if (known.cost > this.deps.settings.maxCost) this.refuse(known.cost);
      return known;
    }
    this.deps.metrics.planCache.inc({ result: 'miss' });
    const { rows } = await this.timed(() =>
      this.deps.pool.query<{ 'QUERY PLAN': Array<{ Plan: { 'Total Cost': number } }> }>(
        `EXPLAIN (FORMAT JSON) ${text}`,
        values,
      ),
    );
    const shape = { name: `report_${key.slice(0, 24)}`, cost: rows[0]!['QUERY PLAN'][0]!.Plan['Total Cost'] };
    this.shapes.set(key, shape);
    if (shape.cost > this.deps.settings.maxCost) this.refuse(shape.cost);
    return shape;
  }

  private refuse(cost: number): never {
    this.deps.metrics.rejected.inc({ reason: 'cost' });
    throw new AppError(
      ReportErrorCode.REPORT_TOO_EXPENSIVE,
      `This report would cost about ${Math.round(cost)} (the budget is ${this.deps.settings.maxCost}): narrow it with a filter or a date range`,
      { estimatedCost: Math.round(cost), budget: this.deps.settings.maxCost },
    );
  }

  /** Runs a statement of the reports' pool, turning Postgres's statement timeout into REPORT_TIMEOUT. */
  private async timed<T>(statement: () => Promise<T>): Promise<T> {
    try {
      return await statement();
    } catch (error) {
      if ((error as { code?: string }).code !== '57014') throw error;
      this.deps.metrics.rejected.inc({ reason: 'timeout' });
      throw new AppError(
        ReportErrorCode.REPORT_TIMEOUT,
        `The report took longer than ${this.deps.settings.statementTimeoutMs} ms and was stopped: narrow it with a filter or a date range`,
      );
    }
  }

  private async run(
    aggregate: ValidAggregate,
    shape: CompiledShape,
    statement: { text: string; values: unknown[] },
  ): Promise<AggregateView> {
    const { rows } = await this.timed(() =>
      this.deps.pool.query<Record<string, unknown>>({
        name: shape.name,
        text: statement.text,
        values: statement.values,
      }),
    );
    return {
      name: aggregate.name,
      type: aggregate.type,
      field: aggregate.field?.name ?? null,
      dimensions: aggregate.dimensions.map((d) => d.key),
      rows: rows.map((row) => ({
        dimensions: Object.fromEntries(aggregate.dimensions.map((d, i) => [d.key, row[`d${i}`] ?? null])),
        value: row.value === null || row.value === undefined ? null : Number(row.value),
      })),
    };
  }
}
