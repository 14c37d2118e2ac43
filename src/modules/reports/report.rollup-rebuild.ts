import { performance } from 'node:perf_hooks';
import type { Pool, PoolClient } from 'pg';
import type { Histogram } from 'prom-client';
import { AppError } from '../../platform/errors/app-error';
import type { Logger } from '../../platform/logging/logger';
import { bindNamed, RECORD_TABLE, type RecordType, type ServiceRegistry } from '../kernel';
import { criteriaToSql } from '../sharing';
import { ReportErrorCode } from './report.errors';
import {
  carriesRule,
  MAX_MATERIALIZED_RULES,
  recordColumnsOf,
  rollupColumns,
  rollupLockSql,
  rollupRowsSql,
  rollupsOf,
  type RollupDefinition,
} from './report.rollups';
import { rollupStateView, smallEnough, type RollupStateView } from './report.rollup-state';

type CriteriaRule = Awaited<ReturnType<ServiceRegistry['visibility']['criteriaRules']>>[number];

export interface RollupRebuildDeps {
  pool: Pool;
  visibility: ServiceRegistry['visibility'];
  metrics: { rebuild: Histogram<'entity'> };
  settings: { readonly rollupMaxRatio: number };
  logger: Logger;
}

/** One rebuild of a company's rollups of one record type, in its transaction. */
interface RebuildContext {
  client: PoolClient;
  companyId: string;
  entity: RecordType;
  recordRows: number;
  /** Per rule (by bit), the names of the rollups that carry it in their masks. */
  carried: string[][];
}

/**
 * Rebuilds a company's rollups from its records and records how large each came out. It holds the company's writes
 * to the type while it runs; when writers hold it up past a second it gives way and retries.
 */
export class RollupRebuild {
  constructor(private readonly deps: RollupRebuildDeps) {}

  /** Each record type's rollups in turn, each tried up to `attempts` times while writers hold it up. */
  async rebuild(
    companyId: string,
    entities: readonly RecordType[],
    attempts: number,
  ): Promise<RollupStateView[]> {
    const views: RollupStateView[] = [];
    for (const entity of entities) {
      for (let attempt = 1; ; attempt++) {
        try {
          views.push(...(await this.rebuildEntity(companyId, entity)));
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
    return views;
  }

  /**
   * A rebuild rewrote rollup rows: reclaim the old ones and refresh the planner's view of the tables now, rather than
   * whenever autovacuum comes by (or never, where it is off). Once per rebuild call, not per company.
   */
  async vacuum(entities: readonly RecordType[]): Promise<void> {
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

  private async rebuildEntity(companyId: string, entity: RecordType): Promise<RollupStateView[]> {
    const started = performance.now();
    // The rules the rollups will hold, read now: a rule changed after this is not theirs, and is corrected live.
    const rules = (await this.deps.visibility.criteriaRules(companyId, entity)).slice(
      0,
      MAX_MATERIALIZED_RULES,
    );
    const views = await this.inTransaction(async (client) => {
      const recordRows = await this.lockAndCount(client, companyId, entity);
      const definitions = rollupsOf(entity);
      // Which rules each rollup carries in its masks; a rollup that comes out too large with them drops them below.
      const carried = rules.map((rule) =>
        definitions.filter((d) => carriesRule(d, rule.fields)).map((d) => d.name),
      );
      const context: RebuildContext = { client, companyId, entity, recordRows, carried };
      await this.storeRules(context, rules);
      await this.stageRecords(context, rules);
      const built: RollupStateView[] = [];
      for (const definition of definitions) built.push(await this.buildRollup(context, definition));
      return built;
    });
    const seconds = (performance.now() - started) / 1000;
    this.deps.metrics.rebuild.observe({ entity: entity.toLowerCase() }, seconds);
    this.deps.logger.info({ companyId, entity, seconds, rules: rules.length }, 'report rollups rebuilt');
    return views;
  }

  /** The rebuild's transaction: no statement timeout, a second at most to wait for a lock. */
  private async inTransaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.deps.pool.connect();
    let failed: unknown;
    try {
      await client.query('BEGIN');
      await client.query("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '1s'");
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      failed = error;
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release(failed instanceof Error ? failed : undefined);
    }
  }

  /** Holds the company's writes to the record type (they take the lock shared) and counts its records. */
  private async lockAndCount(client: PoolClient, companyId: string, entity: RecordType): Promise<number> {
    const table = RECORD_TABLE[entity];
    await client.query(`SELECT pg_advisory_xact_lock(${rollupLockSql(table, '$1::uuid')})`, [companyId]);
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${table} WHERE company_id = $1`,
      [companyId],
    );
    return Number(rows[0]!.n);
  }

  /** The rules the rollups hold, each with its bit and the rollups that carry it, replacing the last rebuild's. */
  private async storeRules(
    { client, companyId, entity, carried }: RebuildContext,
    rules: readonly CriteriaRule[],
  ): Promise<void> {
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
  }

  /** The records once, each with the bits of every rule it meets (criteriaToSql, set-wise: a rule per CASE). */
  private async stageRecords(
    { client, companyId, entity }: RebuildContext,
    rules: readonly CriteriaRule[],
  ): Promise<void> {
    const table = RECORD_TABLE[entity];
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
  }

  /** One rollup from the staged records, with the rules it carries (fewer when too large), and its state recorded. */
  private async buildRollup(context: RebuildContext, definition: RollupDefinition): Promise<RollupStateView> {
    const { client, companyId, recordRows, carried } = context;
    const began = performance.now();
    const mask = carried.reduce(
      (sum, names, bit) => (names.includes(definition.name) ? sum | (1n << BigInt(bit)) : sum),
      0n,
    );
    let rollupRows = await this.writeRollup(context, definition, mask);
    if (mask !== 0n && !smallEnough(rollupRows, recordRows, this.deps.settings.rollupMaxRatio))
      rollupRows = await this.coarsen(context, definition, mask);
    const buildMs = Math.round(performance.now() - began);
    const { rows: state } = await client.query<{ built_at: Date }>(
      `INSERT INTO report_rollup_state (company_id, rollup, rollup_rows, record_rows, built_at, build_ms)
           VALUES ($1, $2, $3, $4, now(), $5)
           ON CONFLICT (company_id, rollup) DO UPDATE SET rollup_rows = $3, record_rows = $4, built_at = now(), build_ms = $5
           RETURNING built_at`,
      [companyId, definition.name, rollupRows, recordRows, buildMs],
    );
    return rollupStateView(
      definition,
      { rollupRows, recordRows, builtAt: state[0]!.built_at, buildMs },
      this.deps.settings.rollupMaxRatio,
    );
  }

  /** The rollup's rows for the company, replaced, with the rules of `mask` in their masks; how many there are. */
  private async writeRollup(
    { client, companyId }: RebuildContext,
    definition: RollupDefinition,
    mask: bigint,
  ): Promise<number> {
    await client.query(`DELETE FROM ${definition.table} WHERE company_id = $1`, [companyId]);
    const inserted = await client.query(
      `INSERT INTO ${definition.table} (${rollupColumns(definition).join(', ')}) ${rollupRowsSql(definition, 'report_rebuild', 'true', `(t.full_mask & ${mask}::bigint)`)}`,
    );
    return inserted.rowCount ?? 0;
  }

  /** A rollup too large with the rules of `carriedMask`, rebuilt with fewer until it is small enough; its rows. */
  private async coarsen(
    context: RebuildContext,
    definition: RollupDefinition,
    carriedMask: bigint,
  ): Promise<number> {
    const { client, companyId, entity, recordRows, carried } = context;
    let mask = carriedMask;
    let rollupRows = 0;
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
      rollupRows = await this.writeRollup(context, definition, mask);
      await client.query(
        `UPDATE report_criteria_rules SET rollups = array_remove(rollups, $3)
                WHERE company_id = $1 AND object_type = $2 AND bit = ANY($4::smallint[])`,
        [companyId, entity, definition.name, dropped],
      );
      if (mask === 0n || smallEnough(rollupRows, recordRows, this.deps.settings.rollupMaxRatio)) break;
    }
    return rollupRows;
  }
}
