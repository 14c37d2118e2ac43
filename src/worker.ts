// First: the tracing SDK patches http, express, pg and ioredis as they load (see tracing.bootstrap.ts).
import { processTracer } from './tracing.bootstrap';
import { startApp } from './app';
import { MigrationsBehindError } from './platform/db/migration-state';
import { installShutdownHooks, loadConfigOrExit } from './process-hooks';
import { createLogger } from './platform/logging/logger';

/** Worker process: the same composition root, but only queue processors run (no HTTP, no WebSocket). */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger({
    level: config.logLevel,
    name: 'crm-worker',
    mixin: processTracer.enabled ? () => processTracer.logFields() : undefined,
  });
  if (config.redis.driver === 'memory') {
    logger.warn(
      'REDIS_URL is not set: a separate worker has no queue to share; the gateway runs jobs in-process',
    );
  }
  const app = await startApp({ config, role: 'worker', logger, tracer: processTracer });
  installShutdownHooks(app, logger);
}

main().catch((error: unknown) => {
  // A refusal the operator can act on is one line; anything else keeps its stack.
  const refusal = error instanceof MigrationsBehindError;
  process.stderr.write(
    `worker failed to start: ${refusal ? error.message : ((error as Error).stack ?? String(error))}\n`,
  );
  process.exit(refusal ? 78 : 1); // 78: EX_CONFIG, as for a bad setting
});
