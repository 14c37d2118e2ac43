import { parseFlags, runCli, withApp } from './cli';

const USAGE = 'npm run migrate [-- --undo]';

runCli(async () => {
  const flags = parseFlags({ undo: { type: 'boolean', default: false } }, USAGE);
  await withApp(
    async (app) => {
      if (flags.undo) {
        await app.dataSource.undoLastMigration({ transaction: 'all' });
        process.stdout.write('reverted the last migration\n');
        return;
      }
      const applied = await app.dataSource.runMigrations({ transaction: 'each' });
      process.stdout.write(
        applied.length === 0
          ? 'database is up to date\n'
          : `applied: ${applied.map((m) => m.name).join(', ')}\n`,
      );
    },
    { migrate: false },
  );
});
