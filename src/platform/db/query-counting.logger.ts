import type { Logger as TypeOrmLogger } from 'typeorm';
import type { Logger } from '../logging/logger';

/**
 * Bridges TypeORM's logger to pino and counts every SQL statement sent, so tests and benchmarks can assert
 * how many statements an operation costs.
 */
export class QueryCountingLogger implements TypeOrmLogger {
  private statements = 0;

  constructor(private readonly logger: Logger) {}

  get statementCount(): number {
    return this.statements;
  }

  // `query` may be a prepared statement's config (see prepared-statement.ts): logged as its SQL text, never with the
  // values node-postgres writes onto it.
  logQuery(query: string): void {
    this.statements++;
    if (this.logger.isLevelEnabled('trace')) this.logger.trace({ query: String(query) }, 'sql');
  }

  logQueryError(error: string | Error, query: string): void {
    this.logger.debug({ err: error, query: String(query) }, 'sql failed');
  }

  logQuerySlow(time: number, query: string): void {
    this.logger.warn({ durationMs: time, query: String(query).slice(0, 500) }, 'slow sql');
  }

  logSchemaBuild(message: string): void {
    this.logger.debug(message);
  }

  logMigration(message: string): void {
    this.logger.info(message);
  }

  log(level: 'log' | 'info' | 'warn', message: unknown): void {
    if (level === 'warn') this.logger.warn({ message }, 'typeorm');
    else this.logger.debug({ message }, 'typeorm');
  }
}
