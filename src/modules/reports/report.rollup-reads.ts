import { LRUCache } from 'lru-cache';
import type { Pool } from 'pg';
import type { Counter } from 'prom-client';
import { ValidationError } from '../../platform/errors/app-error';
import type { RecordType } from '../kernel';
import type { ReadScope } from '../sharing';
import {
  coveringRollup,
  rollupAggregateSql,
  sameRollupRows,
  type RollupMiss,
  type RollupPlan,
} from './report.materialized';
import type { ValidAggregate, ValidReport } from './report.model';
import { ROLLUPS, rollupsOf } from './report.rollups';
import { rollupDimensionNames, rollupStateView, type RollupStateView } from './report.rollup-state';
import type { PricedStatement, ReportStatements, Statement } from './report.statements';

/** An aggregate with the statement chosen for it, priced. */
export interface PlannedAggregate extends PricedStatement {
  aggregate: ValidAggregate;
  statement: Statement;
  /** The rollup that answers it; null when the live query does. */
  rollup: string | null;
  /** How the rollup is read (its months); null for the live query. */
  plan: RollupPlan | null;
}

/** One statement to run and the aggregates it answers (several when they read the same rollup rows). */
export interface ReportRun extends PricedStatement {
  statement: Statement;
  rollup: string | null;
  members: PlannedAggregate[];
}

export interface RollupReadsDeps {
  /** The reports' pool: the rollups' bookkeeping is read there. */
  pool: Pool;
  /** Where reports read from rollups run (planned without parallel workers). */
  rollupPool: Pool;
  statements: ReportStatements;
  /** Aggregates answered from a rollup (hit), or why not. */
  metrics: { rollups: Counter<'result'> };
  settings: { readonly rollupMaxRatio: number };
}

/**
 * The rollup read path: which rollups a company may read (their states as the last rebuild left them), the criteria
 * rules their masks hold, and, per aggregate, whether a rollup or the live query answers it. Briefly cached per
 * process; `forget` drops a company's after a rebuild.
 */
export class RollupReads {
  private readonly usable = new LRUCache<string, ReadonlySet<string>>({ max: 1000, ttl: 10_000 });
  private readonly held = new LRUCache<string, ReadonlySet<string>>({ max: 3000, ttl: 10_000 });

  constructor(private readonly deps: RollupReadsDeps) {}

  /** A rebuild changed the company's rollups and rules: read them again. */
  forget(companyId: string): void {
    this.usable.delete(companyId);
    this.held.clear();
  }

  /**
   * The rollup when one holds the aggregate and the planner prices it below the live query (or the caller asked for
   * it); the live query otherwise. Rollups are exact after every write, so choosing one never changes the figures.
   */
  async choosePath(
    report: ValidReport,
    aggregate: ValidAggregate,
    live: Statement,
    scope: ReadScope,
    usable: ReadonlySet<string>,
  ): Promise<PlannedAggregate> {
    const { statements } = this.deps;
    const liveOnly = async (miss: RollupMiss): Promise<PlannedAggregate> => {
      this.deps.metrics.rollups.inc({ result: miss });
      return { aggregate, statement: live, ...(await statements.price(live)), rollup: null, plan: null };
    };
    if (report.source === 'LIVE') return liveOnly('live_requested');
    const plan = coveringRollup(report, aggregate, (definition) => usable.has(definition.name));
    if (!plan) {
      if (report.source === 'MATERIALIZED') this.notMaterialized(report, aggregate);
      const refusedForSize = coveringRollup(report, aggregate, () => true) !== null;
      return liveOnly(refusedForSize ? 'too_large' : 'not_covered');
    }
    const held = await this.heldRules(scope.companyId, report.entityType, plan.definition.name);
    const statement = rollupAggregateSql(report, [aggregate], plan, scope, (rule) =>
      held.has(`${rule.ruleId} ${JSON.stringify(rule.conditions)}`),
    );
    const priced = await statements.price(statement, statement.pricing, this.deps.rollupPool);
    if (report.source !== 'MATERIALIZED') {
      const livePrice = await statements.price(live);
      if (livePrice.cost < priced.cost) {
        this.deps.metrics.rollups.inc({ result: 'costlier' });
        return { aggregate, statement: live, ...livePrice, rollup: null, plan: null };
      }
    }
    this.deps.metrics.rollups.inc({ result: 'hit' });
    return { aggregate, statement, ...priced, rollup: plan.definition.name, plan };
  }

  /**
   * The statements that answer a report's planned aggregates: aggregates read from the same rollup with the same
   * dimensions (a sum and an average by owner and month) share one statement, which reads those rows once; the rest
   * run as planned. Each run's members keep the report's order.
   */
  runs(report: ValidReport, plans: readonly PlannedAggregate[], scope: ReadScope): ReportRun[] {
    const runs: ReportRun[] = [];
    const single = (member: PlannedAggregate): ReportRun => ({
      name: member.name,
      cost: member.cost,
      statement: member.statement,
      rollup: member.rollup,
      members: [member],
    });
    const grouped = new Map<PlannedAggregate, PlannedAggregate[]>();
    for (const member of plans) {
      const lead = member.rollup
        ? [...grouped.keys()].find(
            (first) => first.rollup === member.rollup && sameRollupRows(first.aggregate, member.aggregate),
          )
        : undefined;
      if (lead) grouped.get(lead)!.push(member);
      else grouped.set(member, [member]);
    }
    for (const [lead, members] of grouped) {
      if (members.length === 1) {
        runs.push(single(lead));
        continue;
      }
      const { text, values } = rollupAggregateSql(
        report,
        members.map((member) => member.aggregate),
        lead.plan!,
        scope,
      );
      const statement = { text, values };
      const cost = members.reduce((sum, member) => sum + member.cost, 0);
      runs.push({ ...this.deps.statements.named(statement, cost), statement, rollup: lead.rollup, members });
    }
    return runs;
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

  /** The state of a company's rollups (those never rebuilt are absent). */
  async states(companyId: string): Promise<RollupStateView[]> {
    const { rows } = await this.deps.statements.timed(() =>
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
            rollupStateView(
              definition,
              {
                rollupRows: Number(row.rollup_rows),
                recordRows: Number(row.record_rows),
                builtAt: row.built_at,
                buildMs: row.build_ms,
              },
              this.deps.settings.rollupMaxRatio,
            ),
          ]
        : [];
    });
    return states.sort((a, b) => order(a.name) - order(b.name));
  }

  /**
   * Names of the rollups a company may read: all of them, less those its last rebuild found too large. Rollups are
   * kept exact by triggers from the start, so one never rebuilt is read too. Cached briefly per process.
   */
  async usableRollups(companyId: string): Promise<ReadonlySet<string>> {
    let names = this.usable.get(companyId);
    if (!names) {
      const refused = new Set(
        (await this.states(companyId)).filter((state) => !state.usable).map((state) => state.name),
      );
      names = new Set(ROLLUPS.map((d) => d.name).filter((name) => !refused.has(name)));
      this.usable.set(companyId, names);
    }
    return names;
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
      const { rows } = await this.deps.statements.timed(() =>
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
}
