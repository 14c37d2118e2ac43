import { parseMonth, type MaintenanceReport } from '../modules/audit';
import { parseFlags, runCli, withApp } from './cli';

const USAGE = 'npm run audit:maintain [-- --restore YYYY-MM] [--json]';

/** One line per thing done, so an operator (or a cron mail) reads what changed. */
function describe(report: MaintenanceReport): string {
  const month = (date: Date) => date.toISOString().slice(0, 7);
  const lines = [
    ...report.ensure.created.map(
      (c) =>
        `created ${c.name}${c.movedFromDefault ? ` (moved ${c.movedFromDefault} rows from default)` : ''}`,
    ),
    ...report.ensure.skipped.map((name) => `skipped ${name}: detached, waiting to be archived`),
    ...report.archive.archived.map(
      (a) =>
        `archived ${a.partitionName}: ${a.rowCount} rows, ${a.bytes} bytes, sha256 ${a.sha256} -> ${a.location}`,
    ),
    ...report.archive.failed.map(
      (f) => `FAILED to archive ${month(f.month)} at ${f.step}: ${f.error} (rows kept ${f.rowsKept})`,
    ),
    ...report.archive.keptRestored.map((name) => `kept ${name}: restored by an operator`),
  ];
  if (lines.length === 0) lines.push('nothing to do');
  const attached = report.partitions.filter((p) => p.month && p.attached).length;
  lines.push(
    `${attached} monthly partitions; ${report.ensure.defaultRows} rows in the default partition; ${report.durationMs} ms`,
  );
  return `${lines.join('\n')}\n`;
}

runCli(async () => {
  const flags = parseFlags({ restore: { type: 'string' }, json: { type: 'boolean', default: false } }, USAGE);
  let failed = false;
  await withApp(async (app) => {
    const maintenance = app.services.auditMaintenance;
    if (flags.restore) {
      const restored = await maintenance.restore(parseMonth('--restore', flags.restore));
      process.stdout.write(
        flags.json
          ? `${JSON.stringify(restored)}\n`
          : `restored ${restored.partitionName}: ${restored.rowCount} rows from ${restored.location}\n`,
      );
      return;
    }
    const report = await maintenance.run();
    failed = report.archive.failed.length > 0;
    process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : describe(report));
  });
  if (failed) process.exitCode = 1;
});
