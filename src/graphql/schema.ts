import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { buildSchema, type ContainerType } from 'type-graphql';
import type { CrmModule, ResolverBinding, ServiceRegistry } from '../modules/kernel';
import { createGraphQLPubSub, type GraphQLPubSub } from '../platform/pubsub/graphql-pubsub';
import { validateInput } from './input-validation';

/** Every module's resolver bindings with no live services (they are only constructed when executed). */
export function resolverBindings(modules: readonly CrmModule[]): ResolverBinding[] {
  return modules.flatMap((module) => module.resolvers?.({} as ServiceRegistry) ?? []);
}

export function printGatewaySchema(schema: GraphQLSchema): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}

/**
 * Builds the executable schema once per process from every module's resolvers. type-graphql's container contract is
 * one `get()`: this one constructs each resolver class through its module's binding, on first use, so printing the
 * schema needs no live services.
 */
export async function buildGatewaySchema(
  bindings: readonly ResolverBinding[],
  pubSub?: GraphQLPubSub,
): Promise<GraphQLSchema> {
  const factories = new Map(bindings.map((binding) => [binding.resolver, binding.create]));
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
  const resolvers = bindings.map((binding) => binding.resolver);
  if (resolvers.length === 0) throw new Error('no module brings a resolver');
  return buildSchema({
    resolvers: resolvers as [Function, ...Function[]],
    container,
    validateFn: validateInput,
    emitSchemaFile: false,
    // Printing the schema needs no live pub/sub, but type-graphql wants one as soon as a subscription exists.
    pubSub: pubSub ?? createGraphQLPubSub(),
  });
}
