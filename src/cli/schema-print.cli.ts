import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { buildGatewaySchema, printGatewaySchema, resolverBindings } from '../graphql/schema';
import { MODULES } from '../modules/modules';
import { runCli } from './cli';

export const SCHEMA_FILE = resolve(__dirname, '../../../schema/schema.graphql');

runCli(async () => {
  // Resolvers are created lazily, so printing needs no database or services.
  const schema = await buildGatewaySchema(resolverBindings(MODULES));
  mkdirSync(dirname(SCHEMA_FILE), { recursive: true });
  writeFileSync(SCHEMA_FILE, printGatewaySchema(schema));
  process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
});
