import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Pool } from 'pg';
import type { PoolerPolicy } from '../../platform/db/pooler';
import type { Counter } from 'prom-client';
import { AppError, ValidationError } from '../../platform/errors/app-error';
import { ReportErrorCode } from './report.errors';

export interface Statement {
  text: string;
  values: unknown[];
}

/** A statement's prepared-statement name and the planner's estimate of its cost. */
export interface PricedStatement {
  /** The prepared statement's name. */
  name: string;
  cost: number;
}

interface CompiledShape {
  /** Name of the prepared statement (the same on every connection). */
  name: string;
  cost: number;
}

export interface ReportStatementsDeps {
  /** The reports' own pool: named prepared statements live per connection, and a slow report cannot starve others. */
  pool: Pool;
  metrics: { planCache: Counter<'result'>; rejected: Counter<'reason'> };
  settings: { readonly planCacheSize: number; readonly statementTimeoutMs: number };
  /** Behind a transaction pooler the statements run unnamed (parsed and planned on every run). */
  pooler: PoolerPolicy;
}

/**
 * The reports' statements: each aggregate's SQL depends only on the report's shape (values are bound), so its text
 * keys a bounded plan cache: the first run EXPLAINs it, every run executes it as a named prepared statement, so
 * Postgres keeps its plan. Every statement runs under the reports' time limit.
 */
export class ReportStatements {
  private readonly shapes: LRUCache<string, CompiledShape>;
  private readonly costs: LRUCache<string, number>;

  constructor(private readonly deps: ReportStatementsDeps) {
    this.shapes = new LRUCache({ max: deps.settings.planCacheSize });
    this.costs = new LRUCache({ max: deps.settings.planCacheSize * 4 });
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
  async price(
    statement: Statement,
    pricing: Statement = statement,
    pool: Pool = this.deps.pool,
  ): Promise<PricedStatement> {
    const shapeKey = createHash('sha256').update(statement.text).digest('hex');
    const name = statementName(statement.text, shapeKey);
    const known = this.shapes.has(shapeKey);
    this.deps.metrics.planCache.inc({ result: known ? 'hit' : 'miss' });
    const { text, values } = pricing;
    const costKey = createHash('sha256').update(text).update(JSON.stringify(values)).digest('hex');
    let cost = this.costs.get(costKey);
    if (cost === undefined) {
      const { rows } = await this.timed(() =>
        pool.query<{ 'QUERY PLAN': Array<{ Plan: { 'Total Cost': number } }> }>(
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

  /** The prepared-statement name of a statement priced by the parts it stands for (not EXPLAINed itself). */
  named(statement: Statement, cost: number): PricedStatement {
    return { name: statementName(statement.text), cost };
  }

  /** Runs a priced statement as its named prepared statement on `pool` (unnamed behind a transaction pooler). */
  async execute(
    priced: PricedStatement,
    statement: Statement,
    pool: Pool = this.deps.pool,
  ): Promise<Array<Record<string, unknown>>> {
    const { rows } = await this.timed(() =>
      this.deps.pooler.run((named) =>
        pool.query<Record<string, unknown>>({
          ...(named ? { name: priced.name } : {}),
          text: statement.text,
          values: statement.values,
        }),
      ),
    );
    return rows;
  }

  /**
   * Runs a statement of the reports' pool (every one: the report's own and its bookkeeping reads share the time limit),
   * turning Postgres's statement timeout into REPORT_TIMEOUT.
   */
  async timed<T>(statement: () => Promise<T>): Promise<T> {
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
}

/** One prepared statement per text, whatever its values, named after the text's hash. */
function statementName(text: string, hash = createHash('sha256').update(text).digest('hex')): string {
  return `report_${hash.slice(0, 24)}`;
}
