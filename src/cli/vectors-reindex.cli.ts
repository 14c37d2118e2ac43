import { parseFlags, runCli, withApp } from './cli';
import { createProgressReporter } from './progress.reporter';

const USAGE =
  'npm run vectors:reindex -- [--backend opensearch|pgvector] [--company <id>] [--stale-only] | --embed-records --company <id>';

/**
 * Rebuilds vector indexes from the vectors stored in Postgres, company by company, with progress (a bar on a terminal,
 * a line every few seconds otherwise). Without --backend it rebuilds every backend that can be rebuilt and says why
 * the others cannot (exit 0); a backend named with --backend that cannot be rebuilt exits 1. Or, with --embed-records, embeds every existing lead, deal and account of a
 * company (records made before vectors existed).
 */
runCli(async () => {
  const flags = parseFlags(
    {
      backend: { type: 'string' },
      company: { type: 'string' },
      'stale-only': { type: 'boolean' },
      'embed-records': { type: 'boolean' },
    },
    USAGE,
  );
  await withApp(async (app) => {
    const vectors = app.services.vectors;
    if (flags['embed-records']) {
      if (!flags.company) {
        process.stderr.write(`--embed-records needs --company <id>\nusage: ${USAGE}\n`);
        process.exit(64);
      }
      const progress = createProgressReporter({ unit: 'records embedded' });
      let current = '';
      const written = await vectors.embedAllRecords(flags.company, (type, done) => {
        if (type !== current) progress.start((current = type).toLowerCase());
        progress.update(done);
      });
      progress.stop();
      process.stdout.write(`${written} record vectors written\n`);
      return;
    }
    const backends = vectors
      .indexBackends()
      .filter((backend) => !flags.backend || backend.name === flags.backend.toUpperCase());
    if (backends.length === 0) {
      process.stderr.write(
        `No index backend ${flags.backend ? `named ${flags.backend} ` : ''}is configured (${
          vectors
            .indexBackends()
            .map((b) => b.name.toLowerCase())
            .join(', ') || 'none'
        })\nusage: ${USAGE}\n`,
      );
      process.exit(64);
    }
    for (const backend of backends) {
      try {
        await backend.check();
      } catch (error) {
        const reason = `${backend.name.toLowerCase()} cannot be rebuilt now: ${(error as Error).message}`;
        // Asked for by name, it is a failure; in a rebuild of everything, the others still get rebuilt.
        if (flags.backend) throw new Error(reason);
        process.stderr.write(
          `${reason}; skipped (similar() answers by the exact scan over stored vectors)\n`,
        );
        continue;
      }
      const companies = flags.company
        ? [flags.company]
        : await vectors.companiesToRebuild(backend.name, flags['stale-only'] ?? false);
      process.stdout.write(`${backend.name.toLowerCase()}: ${companies.length} compan(ies) to rebuild\n`);
      const progress = createProgressReporter({ unit: 'vectors' });
      for (const companyId of companies) {
        progress.start(companyId);
        const documents = await vectors.rebuild(companyId, backend.name, (done, total) =>
          progress.update(done, total),
        );
        progress.update(documents);
        progress.stop();
      }
    }
  });
});
