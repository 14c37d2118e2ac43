import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import type { Pool } from 'pg';
import type { Counter, Histogram } from 'prom-client';
import { AppError, ForbiddenError, ValidationError } from '../../platform/errors/app-error';
import type { Logger } from '../../platform/logging/logger';
import { bindNamed, RECORD_TABLE, type Principal, type RecordType, type ServiceRegistry } from '../kernel';
import { criteriaToSql, type ReadScope } from '../sharing';
import { coveringRollup, rollupAggregateSql, type RollupMiss } from './report.materialized';
import {
  aggregateSql,
  validateReport,
  type AggregateType,
  type ReportInput,
  type ReportSource,
  type ValidAggregate,
  type ValidReport,
} from './report.model';
import {
  carriesRule,
  MAX_MATERIALIZED_RULES,
  recordColumnsOf,
  ROLLUPS,
  rollupColumns,
  rollupLockSql,
  rollupRowsSql,
  rollupsOf,
  type RollupDefinition,
} from './report.rollups';

export const ReportErrorCode = {
  REPORT_TOO_EXPENSIVE: 'REPORT_TOO_EXPENSIVE',
  REPORT_TIMEOUT: 'REPORT_TIMEOUT',
  REPORT_ROLLUPS_BUSY: 'REPORT_ROLLUPS_BUSY',
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
  source: ReportSource;
  /** The rollup that answered it (MATERIALIZED). */
  rollup: string | null;
  rows: ReportRowView[];
}

/** A rollup of one company as its last rebuild left it. */
export interface RollupStateView {
  name: string;
  entityType: RecordType;
  dimensions: string[];
  rollupRows: number;
  recordRows: number;
  builtAt: Date;
  buildMs: number;
  /** Small enough against its records to be read. */
  usable: boolean;
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
}

export interface ReportMetrics {
  duration: Histogram<'source'>;
  planCache: Counter<'result'>;
  rejected: Counter<'reason'>;
  /** Aggregates answered from a rollup (hit), or why not. */
  rollups: Counter<'result'>;
  rebuild: Histogram<'entity'>;
}

export interface ReportServiceDeps {
  /** The reports' own pool: named prepared statements live per connection, and a slow report cannot starve others. */
  pool: Pool;
  /** Where reports read from rollups run (planned without parallel workers). */
  rollupPool: Pool;
  visibility: ServiceRegistry['visibility'];
  metrics: ReportMetrics;
  settings: ReportSettings;
  logger: Logger;
}

interface Statement {
  text: string;
  values: unknown[];
}

interface PlannedAggregate {
  aggregate: ValidAggregate;
  statement: Statement;
  /** The prepared statement's name. */
  name: string;
  cost: number;
  rollup: string | null;
}

/** A rollup's dimensions as report dimensions (`closeDate:month`), owner first. */
function rollupDimensionNames(definition: RollupDefinition): string[] {
  return [
    'ownerId',
    ...definition.dimensions.map((d) => (d.bucket ? `${d.spec.name}:${d.bucket}` : d.spec.name)),
  ];
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
  private readonly usable = new LRUCache<string, ReadonlySet<string>>({ max: 1000, ttl: 10_000 });
  private readonly held = new LRUCache<string, ReadonlySet<string>>({ max: 3000, ttl: 10_000 });

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
    const [scope, usable] = await Promise.all([
      this.deps.visibility.readScope(principal, report.entityType),
      this.usableRollups(principal.companyId),
    ]);
    const visible = scope.predicate('r');
    const table = RECORD_TABLE[report.entityType];
    // Each aggregate's path, priced before any of it runs: the whole report must fit the budget.
    const plans: PlannedAggregate[] = [];
    for (const aggregate of report.aggregates) {
      const live = aggregateSql(report, aggregate, table, (bind) => bindNamed(visible, bind));
      plans.push(await this.choosePath(report, aggregate, live, scope, usable));
    }
    const cost = plans.reduce((sum, plan) => sum + plan.cost, 0);
    if (cost > this.deps.settings.maxCost) this.refuse(cost);
    const aggregates = await Promise.all(plans.map((plan) => this.run(plan)));
    const source: ReportSource = plans.every((plan) => plan.rollup) ? 'MATERIALIZED' : 'LIVE';
    const tookMs = performance.now() - started;
    this.deps.metrics.duration.observe({ source: source.toLowerCase() }, tookMs / 1000);
    return { entityType: report.entityType, source, computedAt: new Date(), tookMs, aggregates };
  }

  /**
   * The rollup when one holds the aggregate and the planner prices it below the live query (or the caller asked for
   * it); the live query otherwise. Rollups are exact after every write, so choosing one never changes the figures.
   */
  private async choosePath(
    report: ValidReport,
    aggregate: ValidAggregate,
    live: Statement,
    scope: ReadScope,
    usable: ReadonlySet<string>,
  ): Promise<PlannedAggregate> {
    const liveOnly = async (miss: RollupMiss): Promise<PlannedAggregate> => {
      this.deps.metrics.rollups.inc({ result: miss });
      return { aggregate, statement: live, ...(await this.price(live)), rollup: null };
    };
    if (report.source === 'LIVE') return liveOnly('live_requested');
    const plan = coveringRollup(report, aggregate, (definition) => usable.has(definition.name));
    if (!plan) {
      if (report.source === 'MATERIALIZED') this.notMaterialized(report, aggregate);
      const refusedForSize = coveringRollup(report, aggregate, () => true) !== null;
      return liveOnly(refusedForSize ? 'too_large' : 'not_covered');
    }
    const held = await this.heldRules(scope.companyId, report.entityType, plan.definition.name);
    const statement = rollupAggregateSql(report, aggregate, plan, scope, (rule) =>
      held.has(`${rule.ruleId} ${JSON.stringify(rule.conditions)}`),
    );
    const priced = await this.price(statement, statement.pricing, this.deps.rollupPool);
    if (report.source !== 'MATERIALIZED') {
      const livePrice = await this.price(live);
      if (livePrice.cost < priced.cost) {
        this.deps.metrics.rollups.inc({ result: 'costlier' });
        return { aggregate, statement: live, ...livePrice, rollup: null };
      }
    }
    this.deps.metrics.rollups.inc({ result: 'hit' });
    return { aggregate, statement, ...priced, rollup: plan.definition.name };
  }

  private notMaterialized(report: ValidReport, aggregate: ValidAggregate): never {
    const index = report.aggregates.indexOf(aggregate);
    const presets = rollupsOf(report.entityType)
      .map((definition) => `(${rollupDimensionNames(definition).join(', ')})`)
      .join(', ');
    throw ValidationError.single(
      'input.source',
      `MATERIALIZED: no usable rollup holds aggregates[${index}] ("${aggregate.name}"); rollups of ${report.entityType} group by ownerId and one of ${presets}, with months of dates (in UTC for timestamps), filters on those fields only and date ranges on whole months`,
    );
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
    const views: RollupStateView[] = [];
    const entities = [...new Set(ROLLUPS.map((d) => d.entityType))].filter(
      (e) => !entityType || e === entityType,
    );
    for (const entity of entities) {
      for (let attempt = 1; ; attempt++) {
        try {
          views.push(...(await this.rebuild(companyId, entity)));
          break;
        } catch (error) {
          if ((error as { code?: string }).code !== '55P03') throw error;
          this.deps.logger.warn(
            { companyId, entity, attempt },
            'report rollup rebuild waited too long for writers',
          );
          if (attempt >= attempts)
            throw new AppError(
              ReportErrorCode.REPORT_ROLLUPS_BUSY,
              `Writes to ${entity.toLowerCase()} records kept the rollup rebuild waiting: try again in a moment`,
            );
          await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
        }
      }
    }
    this.usable.delete(companyId);
    this.held.clear();
    if (vacuum) await this.vacuum(entities);
    return views;
  }

  /**
   * A rebuild rewrote rollup rows: reclaim the old ones and refresh the planner's view of the tables now, rather than
   * whenever autovacuum comes by (or never, where it is off). Once per rebuild call, not per company.
   */
  private async vacuum(entities: readonly RecordType[]): Promise<void> {
    const tables = [
      ...entities.flatMap((entity) => rollupsOf(entity).map((d) => d.table)),
      'report_criteria_rules',
    ];
    for (const table of tables)
      await this.deps.pool
        .query(`VACUUM (ANALYZE) ${table}`)
        .catch((error: unknown) =>
          this.deps.logger.warn({ err: error, table }, 'vacuum after a rollup rebuild failed'),
        );
  }

  private async rebuild(companyId: string, entity: RecordType): Promise<RollupStateView[]> {
    const views: RollupStateView[] = [];
    const started = performance.now();
    // The rules the rollups will hold, read now: a rule changed after this is not theirs, and is corrected live.
    const rules = (await this.deps.visibility.criteriaRules(companyId, entity)).slice(
      0,
      MAX_MATERIALIZED_RULES,
    );
    const client = await this.deps.pool.connect();
    let failed: unknown;
    try {
      await client.query('BEGIN');
      await client.query("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '1s'");
      const table = RECORD_TABLE[entity];
      await client.query(`SELECT pg_advisory_xact_lock(${rollupLockSql(table, '$1::uuid')})`, [companyId]);
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${table} WHERE company_id = $1`,
        [companyId],
      );
      const recordRows = Number(rows[0]!.n);
      const definitions = rollupsOf(entity);
      // Which rules each rollup carries in its masks; a rollup that comes out too large with them drops them below.
      const carried = rules.map((rule) =>
        definitions.filter((d) => carriesRule(d, rule.fields)).map((d) => d.name),
      );
      await client.query('DELETE FROM report_criteria_rules WHERE company_id = $1 AND object_type = $2', [
        companyId,
        entity,
      ]);
      await client.query(
        `INSERT INTO report_criteria_rules (company_id, object_type, bit, rule_id, conditions, bound, fields, rollups)
         SELECT $1, $2, bit - 1, rule_id, conditions, bound,
                ARRAY(SELECT jsonb_array_elements(conditions) ->> 'field'),
                ARRAY(SELECT jsonb_array_elements_text(rollups))
           FROM unnest($3::uuid[], $4::jsonb[], $5::jsonb[], $6::jsonb[]) WITH ORDINALITY AS r(rule_id, conditions, bound, rollups, bit)`,
        [
          companyId,
          entity,
          rules.map((rule) => rule.ruleId),
          rules.map((rule) => JSON.stringify(rule.conditions)),
          rules.map((rule) => JSON.stringify(rule.bound)),
          carried.map((names) => JSON.stringify(names)),
        ],
      );
      // The records once, each with the bits of every rule it meets (criteriaToSql, set-wise: a rule per CASE).
      const columns = recordColumnsOf(entity);
      await client.query(
        `CREATE TEMP TABLE report_rebuild ON COMMIT DROP AS SELECT ${columns.join(', ')}, 0::bigint AS full_mask FROM ${table} WHERE false`,
      );
      const values: unknown[] = [companyId];
      const bind = (value: unknown) => `$${values.push(value)}`;
      const bits = rules.map((rule, bit) => {
        const params: Record<string, unknown> = {};
        const condition = criteriaToSql(entity, rule.conditions, 'r', `c${bit}_`, params);
        return `(CASE WHEN ${bindNamed({ sql: condition, params }, bind)} THEN ${2n ** BigInt(bit)}::bigint ELSE 0 END)`;
      });
      await client.query(
        `INSERT INTO report_rebuild SELECT ${columns.map((c) => `r.${c}`).join(', ')}, ${bits.length ? bits.join(' | ') : '0'}
           FROM ${table} r WHERE r.company_id = $1`,
        values,
      );
      for (const definition of definitions) {
        const began = performance.now();
        const build = async (mask: bigint) => {
          await client.query(`DELETE FROM ${definition.table} WHERE company_id = $1`, [companyId]);
          const inserted = await client.query(
            `INSERT INTO ${definition.table} (${rollupColumns(definition).join(', ')}) ${rollupRowsSql(definition, 'report_rebuild', 'true', `(t.full_mask & ${mask}::bigint)`)}`,
          );
          return inserted.rowCount ?? 0;
        };
        let mask = carried.reduce(
          (sum, names, bit) => (names.includes(definition.name) ? sum | (1n << BigInt(bit)) : sum),
          0n,
        );
        let rollupRows = await build(mask);
        if (mask !== 0n && !this.smallEnough(rollupRows, recordRows)) {
          // Coarser, a rule at a time: first the rules that split the most groups (those matching about half the
          // records), after a few of them all. Their users' rule records are then corrected live.
          const bits = carried.flatMap((names, bit) => (names.includes(definition.name) ? [bit] : []));
          const { rows: matched } = await client.query<Record<string, string>>(
            `SELECT ${bits.map((bit) => `count(*) FILTER (WHERE full_mask & ${1n << BigInt(bit)}::bigint <> 0) AS b${bit}`).join(', ')}, count(*) AS n FROM report_rebuild`,
          );
          const share = (bit: number) => Number(matched[0]![`b${bit}`]) / Math.max(1, Number(matched[0]!.n));
          const order = [...bits].sort((a, b) => share(b) * (1 - share(b)) - share(a) * (1 - share(a)));
          for (const [tries, bit] of order.entries()) {
            const dropped = tries < 4 ? [bit] : order.slice(tries);
            for (const gone of dropped) mask &= ~(1n << BigInt(gone));
            rollupRows = await build(mask);
            await client.query(
              `UPDATE report_criteria_rules SET rollups = array_remove(rollups, $3)
                WHERE company_id = $1 AND object_type = $2 AND bit = ANY($4::smallint[])`,
              [companyId, entity, definition.name, dropped],
            );
            if (mask === 0n || this.smallEnough(rollupRows, recordRows)) break;
          }
        }
        const buildMs = Math.round(performance.now() - began);
        const { rows: state } = await client.query<{ built_at: Date }>(
          `INSERT INTO report_rollup_state (company_id, rollup, rollup_rows, record_rows, built_at, build_ms)
           VALUES ($1, $2, $3, $4, now(), $5)
           ON CONFLICT (company_id, rollup) DO UPDATE SET rollup_rows = $3, record_rows = $4, built_at = now(), build_ms = $5
           RETURNING built_at`,
          [companyId, definition.name, rollupRows, recordRows, buildMs],
        );
        views.push(this.stateView(definition, rollupRows, recordRows, state[0]!.built_at, buildMs));
      }
      await client.query('COMMIT');
    } catch (error) {
      failed = error;
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release(failed instanceof Error ? failed : undefined);
    }
    const seconds = (performance.now() - started) / 1000;
    this.deps.metrics.rebuild.observe({ entity: entity.toLowerCase() }, seconds);
    this.deps.logger.info({ companyId, entity, seconds, rules: rules.length }, 'report rollups rebuilt');
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
    await this.vacuum([...new Set(ROLLUPS.map((d) => d.entityType))]);
  }

  /** `rollupStates` for a company admin, of their own company. */
  async rollupStatesFor(principal: Principal): Promise<RollupStateView[]> {
    if (!principal.isAdmin) throw new ForbiddenError('Only company admins may see report rollups');
    return this.rollupStates(principal.companyId);
  }

  /** The state of a company's rollups (those never rebuilt are absent). */
  async rollupStates(companyId: string): Promise<RollupStateView[]> {
    const { rows } = await this.timed(() =>
      this.deps.pool.query<{
        rollup: string;
        rollup_rows: string;
        record_rows: string;
        built_at: Date;
        build_ms: number;
      }>(
        'SELECT rollup, rollup_rows, record_rows, built_at, build_ms FROM report_rollup_state WHERE company_id = $1',
        [companyId],
      ),
    );
    const order = (name: string) => ROLLUPS.findIndex((d) => d.name === name);
    const states = rows.flatMap((row) => {
      const definition = ROLLUPS.find((d) => d.name === row.rollup);
      return definition
        ? [
            this.stateView(
              definition,
              Number(row.rollup_rows),
              Number(row.record_rows),
              row.built_at,
              row.build_ms,
            ),
          ]
        : [];
    });
    return states.sort((a, b) => order(a.name) - order(b.name));
  }

  private stateView(
    definition: RollupDefinition,
    rollupRows: number,
    recordRows: number,
    builtAt: Date,
    buildMs: number,
  ): RollupStateView {
    return {
      name: definition.name,
      entityType: definition.entityType,
      dimensions: rollupDimensionNames(definition),
      rollupRows,
      recordRows,
      builtAt,
      buildMs,
      usable: this.smallEnough(rollupRows, recordRows),
    };
  }

  /**
   * The criteria rules (id and conditions) a rollup of the company holds in its masks, as this process last read them
   * (briefly cached): used only to estimate cost, never to decide what is counted.
   */
  private async heldRules(
    companyId: string,
    entityType: RecordType,
    rollup: string,
  ): Promise<ReadonlySet<string>> {
    const key = `${companyId} ${entityType} ${rollup}`;
    let rules = this.held.get(key);
    if (!rules) {
      const { rows } = await this.timed(() =>
        this.deps.pool.query<{ rule_id: string; conditions: unknown }>(
          `SELECT rule_id, conditions FROM report_criteria_rules
            WHERE company_id = $1 AND object_type = $2 AND $3 = ANY(rollups)`,
          [companyId, entityType, rollup],
        ),
      );
      rules = new Set(rows.map((row) => `${row.rule_id} ${JSON.stringify(row.conditions)}`));
      this.held.set(key, rules);
    }
    return rules;
  }

  /** A rollup worth reading: at most `rollupMaxRatio` of its records' rows. */
  private smallEnough(rollupRows: number, recordRows: number): boolean {
    return rollupRows === 0 || rollupRows <= this.deps.settings.rollupMaxRatio * recordRows;
  }

  /**
   * Names of the rollups a company may read: all of them, less those its last rebuild found too large. Rollups are
   * kept exact by triggers from the start, so one never rebuilt is read too. Cached briefly per process.
   */
  private async usableRollups(companyId: string): Promise<ReadonlySet<string>> {
    let names = this.usable.get(companyId);
    if (!names) {
      const refused = new Set(
        (await this.rollupStates(companyId)).filter((state) => !state.usable).map((state) => state.name),
      );
      names = new Set(ROLLUPS.map((d) => d.name).filter((name) => !refused.has(name)));
      this.usable.set(companyId, names);
    }
    return names;
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
  private async price(
    statement: Statement,
    pricing: Statement = statement,
    pool: Pool = this.deps.pool,
  ): Promise<{ name: string; cost: number }> {
    const shapeKey = createHash('sha256').update(statement.text).digest('hex');
    const name = `report_${shapeKey.slice(0, 24)}`;
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

  private refuse(cost: number): never {
    this.deps.metrics.rejected.inc({ reason: 'cost' });
    throw new AppError(
      ReportErrorCode.REPORT_TOO_EXPENSIVE,
      `This report would cost about ${Math.round(cost)} (the budget is ${this.deps.settings.maxCost}): narrow it with a filter or a date range`,
      { estimatedCost: Math.round(cost), budget: this.deps.settings.maxCost },
    );
  }

  /**
   * Runs a statement of the reports' pool (every one: the report's own and its bookkeeping reads share the time limit),
   * turning Postgres's statement timeout into REPORT_TIMEOUT.
   */
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

  private async run(plan: PlannedAggregate): Promise<AggregateView> {
    const { aggregate, statement } = plan;
    const { rows } = await this.timed(() =>
      (plan.rollup ? this.deps.rollupPool : this.deps.pool).query<Record<string, unknown>>({
        name: plan.name,
        text: statement.text,
        values: statement.values,
      }),
    );
    return {
      name: aggregate.name,
      type: aggregate.type,
      field: aggregate.field?.name ?? null,
      dimensions: aggregate.dimensions.map((d) => d.key),
      source: plan.rollup ? 'MATERIALIZED' : 'LIVE',
      rollup: plan.rollup,
      rows: rows.map((row) => ({
        dimensions: Object.fromEntries(aggregate.dimensions.map((d, i) => [d.key, row[`d${i}`] ?? null])),
        value: row.value === null || row.value === undefined ? null : Number(row.value),
      })),
    };
  }
}
