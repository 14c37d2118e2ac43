import { DATA_TABLES } from '../seed/data-tables';
import { embedSeededRecords } from '../seed/demo.seed';
import { seedDatabase, type SeedSizes } from '../seed/seed.generator';
import { parseFlags, positiveIntFlag, runCli, withApp } from './cli';
import { createProgressReporter } from './progress.reporter';

const USAGE =
  'npm run seed -- [--companies N] [--users N] [--accounts N] [--leads N] [--deals N] [--rules N] [--seed N] [--reset] [--skip-vectors]';

runCli(async () => {
  const flags = parseFlags(
    {
      companies: { type: 'string' },
      users: { type: 'string' },
      accounts: { type: 'string' },
      leads: { type: 'string' },
      deals: { type: 'string' },
      rules: { type: 'string' },
      seed: { type: 'string' },
      reset: { type: 'boolean', default: false },
      'skip-vectors': { type: 'boolean', default: false },
    },
    USAGE,
  );
  const sizes: SeedSizes = {
    companies: positiveIntFlag('companies', flags.companies, 10),
    users: positiveIntFlag('users', flags.users, 200),
    accounts: positiveIntFlag('accounts', flags.accounts, 2_000),
    leads: positiveIntFlag('leads', flags.leads, 20_000),
    deals: positiveIntFlag('deals', flags.deals, 10_000),
  };
  const rules = positiveIntFlag('rules', flags.rules, 0);
  const seed = positiveIntFlag('seed', flags.seed, 42);

  await withApp(
    async (app) => {
      const [{ count }] = await app.dataSource.query<[{ count: number }]>(
        'SELECT count(*)::int AS count FROM companies',
      );
      if (count > 0 && !flags.reset) {
        throw new Error(`The database already holds ${count} companies; pass --reset to replace all data`);
      }
      if (flags.reset) await app.dataSource.query(`TRUNCATE ${DATA_TABLES.join(', ')} CASCADE`);

      const started = Date.now();
      const progress = createProgressReporter({ unit: 'rows' });
      let currentTable = '';
      const summary = await seedDatabase(app.dataSource, {
        ...sizes,
        rules,
        seed,
        onProgress: (table, done, total) => {
          if (table !== currentTable) progress.start((currentTable = table), total);
          progress.update(done, total);
        },
      });
      progress.stop();
      let vectors = 0;
      if (!flags['skip-vectors']) {
        const embedding = createProgressReporter({ unit: 'records embedded' });
        embedding.start('vectors', sizes.leads + sizes.deals + sizes.accounts);
        vectors = await embedSeededRecords(app.services.vectors, summary.companies, (done) =>
          embedding.update(done),
        );
        embedding.stop();
      }
      await app.dataSource.query('ANALYZE');
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(
        `seeded ${JSON.stringify({ ...summary.counts, vectors })} in ${seconds} s (seed ${seed})\n` +
          `admin of the largest company: ${summary.companies[0]?.adminEmail} (npm run token -- --email ${summary.companies[0]?.adminEmail})\n`,
      );
    },
    { migrate: true },
  );
});
