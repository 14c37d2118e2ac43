import type { Pool, PoolClient } from 'pg';
import type { ReadRouting } from '../../platform/db/read-routing';
import { AppError, ErrorCode } from '../../platform/errors/app-error';
import { bindNamed, filtersToSql, RECORD_TABLE, RecordType, sortToSql, type Principal } from '../kernel';
import type { ServiceRegistry } from '../kernel/registries';
import { fromClause } from './export.fields';
import { SettingsBinder, type ExportStatement } from './export.pipeline';
import type { PreparedExport } from './export.query';

type VisibilityService = ServiceRegistry['visibility'];

export interface ExportSnapshotOptions {
  /** The exports' own small pool: a long export never holds a connection GraphQL needs. */
  pool: Pool;
  visibility: () => VisibilityService;
  reads: ReadRouting;
}

/** The statement work receives and, with `count` (the default), how many rows it will return. */
export type SnapshotWork<T> = (client: PoolClient, statement: ExportStatement, total: number) => Promise<T>;

/** Where an export reads its rows, for a job's worker and the direct stream alike. */
export class ExportSnapshots {
  constructor(private readonly options: ExportSnapshotOptions) {}

  /**
   * Runs `work` in a read-only REPEATABLE READ transaction on the exports' pool, so the count and the rows come from
   * one snapshot; the statement's values are bound as transaction-local settings (COPY takes no parameters). On a
   * replica when the owner's writes are there; one lost before `work` began runs it again on the primary.
   */
  async run<T>(
    principal: Principal,
    prepared: PreparedExport,
    limit: number | undefined,
    work: SnapshotWork<T>,
    options: { count: boolean } = { count: true },
  ): Promise<T> {
    let started = false;
    return this.options.reads.read(
      principal,
      () =>
        this.runOnce(principal, prepared, limit, options, (client, statement, total) => {
          started = true;
          return work(client, statement, total);
        }),
      { canRetry: () => !started },
    );
  }

  private async runOnce<T>(
    principal: Principal,
    prepared: PreparedExport,
    limit: number | undefined,
    options: { count: boolean },
    work: SnapshotWork<T>,
  ): Promise<T> {
    const binder = new SettingsBinder();
    const statement = await this.statement(principal, prepared, limit, binder);
    const client = await this.options.pool.connect().catch((error: Error) => {
      throw new AppError(
        ErrorCode.SERVICE_UNAVAILABLE,
        'Every export connection is busy; try again shortly',
        {
          cause: error.message,
        },
      );
    });
    let broken: Error | undefined;
    const onError = (error: Error) => (broken = error);
    client.on('error', onError);
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await binder.apply(client);
      let total = 0;
      if (options.count) {
        const counted = await client.query<{ total: number }>(
          `SELECT count(*)::int AS total FROM ${RECORD_TABLE[prepared.entityType]} r WHERE ${statement.where}`,
        );
        total = Math.min(counted.rows[0]?.total ?? 0, limit ?? Number.MAX_SAFE_INTEGER);
      }
      const result = await work(client, statement, total);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      // A COPY stopped midway leaves the connection mid-protocol: it is discarded, never reused.
      broken ??= error as Error;
      throw error;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  /** The export's statement under the principal's visibility (and the accounts' for an account join). */
  private async statement(
    principal: Principal,
    prepared: PreparedExport,
    limit: number | undefined,
    binder: SettingsBinder,
  ): Promise<ExportStatement> {
    const visibility = this.options.visibility();
    const where = [
      bindNamed(await visibility.readPredicate(principal, prepared.entityType, 'r'), binder.bind),
      filtersToSql(prepared.entityType, prepared.filters, 'r', binder.bind),
    ].join(' AND ');
    const accountPredicate = prepared.columns.some((c) => c.join === 'account')
      ? bindNamed(await visibility.readPredicate(principal, RecordType.ACCOUNT, 'acc'), binder.bind)
      : undefined;
    return {
      columns: prepared.columns,
      from: fromClause(prepared.entityType, prepared.columns, accountPredicate),
      where,
      orderBy: sortToSql(prepared.entityType, prepared.sort, 'r'),
      limit,
    };
  }
}
