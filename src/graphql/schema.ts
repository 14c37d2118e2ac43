import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { buildSchema, type ContainerType } from 'type-graphql';
import { IdentityResolver, type IdentityService } from '../modules/identity';
import { AccountResolver, DealResolver, LeadResolver, type RecordServices } from '../modules/records';
import { SharingResolver, type SharingService } from '../modules/sharing';
import { validateInput } from './input-validation';

export interface SchemaServices {
  identity: IdentityService;
  records: RecordServices;
  sharing: SharingService;
}

/** The resolver classes of every slice; type-graphql builds them through the container below. */
const RESOLVERS = [IdentityResolver, LeadResolver, DealResolver, AccountResolver, SharingResolver] as const;

/**
 * Builds the executable schema once per process. type-graphql's container contract is one `get()`: this one hands
 * each resolver class its services, so the wiring stays explicit.
 */
export function printGatewaySchema(schema: GraphQLSchema): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}

/** Resolvers are created on first use, so printing the schema needs no live services. */
export async function buildGatewaySchema(services: SchemaServices): Promise<GraphQLSchema> {
  const factories = new Map<Function, () => unknown>([
    [IdentityResolver, () => new IdentityResolver(services.identity)],
    [LeadResolver, () => new LeadResolver(services.records)],
    [DealResolver, () => new DealResolver(services.records)],
    [AccountResolver, () => new AccountResolver(services.records)],
    [SharingResolver, () => new SharingResolver(services.sharing)],
  ]);
  const instances = new Map<Function, unknown>();
  const container: ContainerType = {
    get: (someClass) => {
      const resolverClass = someClass as Function;
      let instance = instances.get(resolverClass);
      if (!instance) {
        const create = factories.get(resolverClass);
        if (!create) throw new Error(`No resolver registered for ${resolverClass.name}`);
        instance = create();
        instances.set(resolverClass, instance);
      }
      return instance;
    },
  };
  return buildSchema({
    resolvers: [...RESOLVERS],
    container,
    validateFn: validateInput,
    emitSchemaFile: false,
  });
}
