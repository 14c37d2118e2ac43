import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import type { Pool } from 'pg';
import type { Counter, Histogram } from 'prom-client';
import { AppError, ValidationError } from '../../platform/errors/app-error';
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
  cost: number;
}

/**
 * Report aggregates computed live under the caller's visibility. Each aggregate's SQL depends only on the report's
 * shape (values are bound), so its text keys a bounded plan cache: the first run EXPLAINs it (and refuses it when
 * the estimate passes the budget), every run executes it as a named prepared statement, so Postgres keeps its plan.
 */
export class ReportService {
  private readonly shapes: LRUCache<string, CompiledShape>;
  private readonly costs: LRUCache<string, number>;

  constructor(private readonly deps: ReportServiceDeps) {
    this.shapes = new LRUCache({ max: deps.settings.planCacheSize });
    this.costs = new LRUCache({ max: deps.settings.planCacheSize * 4 });
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
    // The whole report is priced (every aggregate, with its values) before any of it runs.
    const priced: Array<{ name: string; cost: number }> = [];
    for (const statement of statements) priced.push(await this.price(statement.text, statement.values));
    const cost = priced.reduce((sum, shape) => sum + shape.cost, 0);
    if (cost > this.deps.settings.maxCost) this.refuse(cost);
    const aggregates = await Promise.all(
      statements.map(async (statement, i) => this.run(statement.aggregate, priced[i]!.name, statement)),
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

  /**
   * The statement of a shape (named by its text: one prepared statement per shape, whatever the values) and the
   * planner's estimate for these values (a company ten times larger, or a wider date range, costs more): estimates
   * are cached per text and values, so a dashboard repeating a question is not EXPLAINed again.
   */
  private async price(text: string, values: unknown[]): Promise<{ name: string; cost: number }> {
    const shapeKey = createHash('sha256').update(text).digest('hex');
    const name = `report_${shapeKey.slice(0, 24)}`;
    const known = this.shapes.has(shapeKey);
    this.deps.metrics.planCache.inc({ result: known ? 'hit' : 'miss' });
    const costKey = createHash('sha256').update(text).update(JSON.stringify(values)).digest('hex');
    let cost = this.costs.get(costKey);
    if (cost === undefined) {
      const { rows } = await this.timed(() =>
        this.deps.pool.query<{ 'QUERY PLAN': Array<{ Plan: { 'Total Cost': number } }> }>(
          `EXPLAIN (FORMAT JSON) ${text}`,
          values,
        ),
      );
      cost = rows[0]!['QUERY PLAN'][0]!.Plan['Total Cost'];
      this.costs.set(costKey, cost);
    }
    // Known once it could be planned (a shape whose EXPLAIN failed is not one).
    if (!known) this.shapes.set(shapeKey, { name, cost });
    return { name, cost };
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
      const code = (error as { code?: string }).code;
      // A zone the runtime knows but this Postgres's tzdata does not.
      if (code === '22023' && /time zone/.test((error as Error).message))
        throw ValidationError.single('input.timeZone', 'is not a time zone this database knows');
      if (code !== '57014') throw error;
      this.deps.metrics.rejected.inc({ reason: 'timeout' });
      throw new AppError(
        ReportErrorCode.REPORT_TIMEOUT,
        `The report took longer than ${this.deps.settings.statementTimeoutMs} ms and was stopped: narrow it with a filter or a date range`,
      );
    }
  }

  private async run(
    aggregate: ValidAggregate,
    name: string,
    statement: { text: string; values: unknown[] },
  ): Promise<AggregateView> {
    const { rows } = await this.timed(() =>
      this.deps.pool.query<Record<string, unknown>>({
        name,
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
