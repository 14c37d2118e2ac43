import { parseFlags, positiveIntFlag, runCli, withApp } from './cli';

const USAGE = 'npm run token -- --email <user email> [--ttl <seconds>]';

runCli(async () => {
  const flags = parseFlags({ email: { type: 'string' }, ttl: { type: 'string' } }, USAGE);
  if (!flags.email) {
    process.stderr.write(`--email is required\nusage: ${USAGE}\n`);
    process.exit(64);
  }
  await withApp(async (app) => {
    const user = await app.services.identity.findUserByEmail(flags.email!);
    if (!user)
      throw new Error(`No user with email ${flags.email}; seeded users look like user0@company0.example.com`);
    const ttl = positiveIntFlag('ttl', flags.ttl, app.config.jwt.ttlSeconds);
    process.stdout.write(`${await app.services.tokens.mint(user.id, user.companyId, ttl)}\n`);
  });
});
