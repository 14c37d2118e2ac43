import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildGatewaySchema, printGatewaySchema, resolverBindings } from '../../src/graphql/schema';
import { MODULES } from '../../src/modules/modules';

describe('schema/schema.graphql', () => {
  it('matches the schema the resolvers build (run `npm run schema:print` after changing them)', async () => {
    const built = printGatewaySchema(await buildGatewaySchema(resolverBindings(MODULES)));
    const committed = readFileSync(resolve(__dirname, '../../schema/schema.graphql'), 'utf8');
    expect(committed).toBe(built);
  });

  it('exposes the contract names of the Foundation', async () => {
    const sdl = printGatewaySchema(await buildGatewaySchema(resolverBindings(MODULES)));
    for (const name of [
      'lead(id: ID!)',
      'deal(id: ID!)',
      'account(id: ID!)',
      'createLead(',
      'updateDeal(',
      'deleteAccount(',
      'me: User!',
    ]) {
      expect(sdl).toContain(name);
    }
  });
});
