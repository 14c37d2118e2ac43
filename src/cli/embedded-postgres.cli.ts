import { startEmbeddedPostgres } from '../platform/db/embedded-postgres';
import { parseFlags, positiveIntFlag, runCli } from './cli';

const USAGE = 'npm run db:embedded -- [--data-dir <dir> | --data-dir memory://] [--stall-ms <ms>]';

/**
 * Serves the embedded PGlite (PostgreSQL 18 + pgvector) on a loopback port until stopped, and prints its URL: for
 * psql, for pointing several gateway processes at one embedded database, and for the pgvector tests.
 */
runCli(async () => {
  const flags = parseFlags({ 'data-dir': { type: 'string' }, 'stall-ms': { type: 'string' } }, USAGE);
  const pg = await startEmbeddedPostgres({
    dataDir: flags['data-dir'] ?? '.data/pglite',
    maxConnections: 50,
    stallMs: positiveIntFlag('stall-ms', flags['stall-ms'], 60_000),
  });
  process.stdout.write(`embedded postgres listening at ${pg.url}\n`);
  const stop = () => {
    void pg.stop().finally(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
});
