import { startApp } from './app';
import { installShutdownHooks, loadConfigOrExit } from './process-hooks';
import { createLogger } from './platform/logging/logger';

/** Worker process: the same composition root, but only queue processors run (no HTTP, no WebSocket). */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger({ level: config.logLevel, name: 'crm-worker' });
  if (config.redis.driver === 'memory') {
    logger.warn(
      'REDIS_URL is not set: a separate worker has no queue to share; the gateway runs jobs in-process',
    );
  }
  const app = await startApp({ config, role: 'worker', logger });
  installShutdownHooks(app, logger);
}

main().catch((error: unknown) => {
  process.stderr.write(`worker failed to start: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
