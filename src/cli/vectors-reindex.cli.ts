import { SingleBar, Presets } from 'cli-progress';
import { parseFlags, runCli, withApp } from './cli';

const USAGE =
  'npm run vectors:reindex -- [--backend opensearch|pgvector] [--company <id>] [--stale-only] | --embed-records --company <id>';

/**
 * Rebuilds vector indexes from the vectors stored in Postgres, company by company, with a progress bar; or, with
 * --embed-records, embeds every existing lead, deal and account of a company (records made before vectors existed).
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
      const written = await vectors.embedAllRecords(flags.company, (type, done) =>
        process.stdout.write(`\r${type.toLowerCase()}: ${done} records embedded`),
      );
      process.stdout.write(`\n${written} record vectors written\n`);
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
        throw new Error(`${backend.name.toLowerCase()} cannot be rebuilt now: ${(error as Error).message}`);
      }
      const companies = flags.company
        ? [flags.company]
        : await vectors.companiesToRebuild(backend.name, flags['stale-only'] ?? false);
      process.stdout.write(`${backend.name.toLowerCase()}: ${companies.length} compan(ies) to rebuild\n`);
      for (const companyId of companies) {
        const bar = new SingleBar(
          { format: `${companyId} [{bar}] {value}/{total} vectors`, hideCursor: true },
          Presets.shades_classic,
        );
        bar.start(1, 0);
        const documents = await vectors.rebuild(companyId, backend.name, (done, total) => {
          bar.setTotal(Math.max(total, 1));
          bar.update(done);
        });
        bar.update(documents);
        bar.stop();
      }
    }
  });
});
