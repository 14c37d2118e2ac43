import { DataSource, type MixedList, type EntitySchema } from 'typeorm';
import type { Logger } from '../logging/logger';
import { QueryCountingLogger } from './query-counting.logger';

export interface DataSourceOptions {
  url: string;
  /** Entity classes of every module. */
  entities: MixedList<Function | string | EntitySchema>;
  /** Migration classes in order. */
  migrations: MixedList<Function | string>;
  /** Pool size. Default 10. */
  poolSize?: number;
  logger: Logger;
  /** Statements slower than this are logged as warnings. Default 1000 ms. */
  slowQueryMs?: number;
}

function baseOptions(options: Omit<DataSourceOptions, 'logger'>) {
  return {
    type: 'postgres' as const,
    url: options.url,
    entities: options.entities,
    migrations: options.migrations,
    migrationsTableName: 'typeorm_migrations',
    synchronize: false,
    // Ids default to gen_random_uuid() (core since PG 13): no extension to install.
    installExtensions: false,
    uuidExtension: 'pgcrypto' as const,
    maxQueryExecutionTime: options.slowQueryMs ?? 1000,
    extra: { max: options.poolSize ?? 10, connectionTimeoutMillis: 5000 },
  };
}

/** The application's DataSource: statements counted, logs through pino. */
export function createDataSource(options: DataSourceOptions): {
  dataSource: DataSource;
  queryLogger: QueryCountingLogger;
} {
  const queryLogger = new QueryCountingLogger(options.logger.child({ component: 'db' }));
  const dataSource = new DataSource({ ...baseOptions(options), logger: queryLogger });
  return { dataSource, queryLogger };
}

/**
 * The typeorm CLI's DataSource: typeorm's own console logger, so `migration:show`, `migration:run` and friends print
 * what they did the way typeorm's CLI users expect (the CLI picks what to print through `logging`).
 */
export function createCliDataSource(options: Omit<DataSourceOptions, 'logger'>): DataSource {
  return new DataSource({
    ...baseOptions(options),
    logger: 'advanced-console',
    logging: ['error', 'warn', 'migration', 'schema'],
  });
}
