import type { App } from './app';
import { ConfigError, loadConfig, type AppConfig } from './config/config';
import type { Logger } from './platform/logging/logger';

/** SIGTERM/SIGINT: stop taking work, finish in-flight work, close everything in order, exit 0 (1 on failure). */
export function installShutdownHooks(app: App, logger: Logger): void {
  let signalled = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    logger.info({ signal }, 'shutting down');
    const hardStop = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, app.config.shutdownTimeoutMs + 1000);
    hardStop.unref();
    app
      .stop()
      .then(() => {
        logger.info('stopped cleanly');
        process.exit(0);
      })
      .catch((error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

/** Parses the environment or exits 78 (EX_CONFIG) with a message naming each bad variable. */
export function loadConfigOrExit(): AppConfig {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
}
