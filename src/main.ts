// First: the tracing SDK patches http, express, pg and ioredis as they load (see tracing.bootstrap.ts).
import { processTracer } from './tracing.bootstrap';
import { startApp } from './app';
import { DEMO_ADMIN_EMAIL } from './config/config';
import { ManifestError } from './graphql/operation-manifest';
import { MigrationsBehindError } from './platform/db/migration-state';
import { installShutdownHooks, loadConfigOrExit } from './process-hooks';
import { createLogger } from './platform/logging/logger';

/** Gateway process: config -> app (drivers, services, schema, HTTP + WebSocket) -> listen -> shutdown hooks. */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger({
    level: config.logLevel,
    name: 'crm-gateway',
    mixin: processTracer.enabled ? () => processTracer.logFields() : undefined,
  });
  const app = await startApp({ config, role: 'gateway', logger, tracer: processTracer });
  installShutdownHooks(app, logger);

  if (config.database.driver === 'embedded') {
    const admin = await app.services.identity.findUserByEmail(DEMO_ADMIN_EMAIL);
    if (admin) {
      const token = await app.services.tokens.mint(admin.id, admin.companyId);
      const explorer = {
        graphiql: 'Open it in a browser for GraphiQL (served here, works offline); send this header',
        sandbox: "Open it in a browser for Apollo Sandbox (from Apollo's CDN); send this header",
        off: 'Send this header',
      }[config.graphql.explorer];
      process.stdout.write(
        [
          '',
          `  crm-gateway is running with embedded defaults at ${app.url}/graphql`,
          `  ${explorer} as the demo admin (${admin.email}):`,
          `  Authorization: Bearer ${token}`,
          ...(config.env === 'production'
            ? []
            : [
                `  The example console: ${app.url}/console (${config.jwt.isDevSecret ? 'click "Use the development token"' : 'paste the token'})`,
              ]),
          '',
        ].join('\n') + '\n',
      );
    }
  }
}

main().catch((error: unknown) => {
  // A refusal the operator can act on is one line; anything else keeps its stack.
  const refusal = error instanceof MigrationsBehindError || error instanceof ManifestError;
  process.stderr.write(
    `gateway failed to start: ${refusal ? error.message : ((error as Error).stack ?? String(error))}\n`,
  );
  process.exit(refusal ? 78 : 1); // 78: EX_CONFIG, as for a bad setting
});
