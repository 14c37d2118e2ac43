import type { DataSource } from 'typeorm';

/**
 * A gateway or worker on a database whose migrations are behind the code: refused at start with the names of the
 * missing migrations and the command that applies them, rather than serving errors on a schema it cannot use.
 */
export class MigrationsBehindError extends Error {
  constructor(readonly pending: readonly string[]) {
    super(
      `The database is missing ${pending.length} migration(s) this code needs: ${pending.join(', ')}. ` +
        'Run `npm run migrate` (or start with DATABASE_MIGRATE=auto to apply them at start).',
    );
    this.name = 'MigrationsBehindError';
  }
}

/**
 * Names of the code's migrations the database has not run (all of them on an empty database). Reads only: TypeORM's
 * own check creates its bookkeeping table, which a check must not do.
 */
export async function pendingMigrations(dataSource: DataSource): Promise<string[]> {
  const table = dataSource.options.migrationsTableName ?? 'migrations';
  const [found] = await dataSource.query<Array<{ present: boolean }>>(
    'SELECT to_regclass($1) IS NOT NULL AS present',
    [table],
  );
  const ran = new Set(
    found?.present
      ? (await dataSource.query<Array<{ name: string }>>(`SELECT name FROM "${table}"`)).map(
          (row) => row.name,
        )
      : [],
  );
  // In the order they run: TypeORM's names end in their timestamp.
  const timestamp = (name: string) => Number(/\d+$/.exec(name)?.[0] ?? 0);
  return dataSource.migrations
    .map((migration) => migration.name ?? migration.constructor.name)
    .filter((name) => !ran.has(name))
    .sort((a, b) => timestamp(a) - timestamp(b));
}

export async function assertMigrated(dataSource: DataSource): Promise<void> {
  const pending = await pendingMigrations(dataSource);
  if (pending.length > 0) throw new MigrationsBehindError(pending);
}
