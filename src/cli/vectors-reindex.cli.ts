import { SingleBar, Presets } from 'cli-progress';
import { parseFlags, runCli, withApp } from './cli';

const USAGE = 'npm run vectors:reindex -- [--backend opensearch|pgvector] [--company <id>] [--stale-only]';

/** Rebuilds vector indexes from the vectors stored in Postgres, company by company, with a progress bar. */
runCli(async () => {
  const flags = parseFlags(
    { backend: { type: 'string' }, company: { type: 'string' }, 'stale-only': { type: 'boolean' } },
    USAGE,
  );
  await withApp(async (app) => {
    const vectors = app.services.vectors;
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
