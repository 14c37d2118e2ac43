import { parseArgs, type ParseArgsConfig } from 'node:util';
import { startApp, type App } from '../app';
import { loadConfigOrExit } from '../process-hooks';
import { createLogger } from '../platform/logging/logger';

/** Parses flags or exits 64 (EX_USAGE) with the message and the usage line. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(options: T, usage: string) {
  try {
    return parseArgs({ options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\nusage: ${usage}\n`);
    process.exit(64);
  }
}

export function positiveIntFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) {
    process.stderr.write(`--${name} must be a non-negative integer, got "${value}"\n`);
    process.exit(64);
  }
  return parsed;
}

/** Runs a command with the drivers and services (no HTTP, no processors), then closes everything. */
export async function withApp(
  run: (app: App) => Promise<void>,
  options: { migrate?: boolean } = {},
): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger({
    level: config.logLevel === 'info' ? 'warn' : config.logLevel,
    name: 'crm-cli',
    to: 'stderr',
  });
  const app = await startApp({ config, role: 'cli', logger, migrate: options.migrate });
  try {
    await run(app);
  } finally {
    await app.stop();
  }
}

export function runCli(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    process.stderr.write(`${(error as Error).message ?? String(error)}\n`);
    process.exit(1);
  });
}
