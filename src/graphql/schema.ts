import { isUnionType, lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { buildSchema, getMetadataStorage, type ContainerType } from 'type-graphql';
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
  const schema = await buildSchema({
    resolvers: resolvers as [Function, ...Function[]],
    container,
    validateFn: validateInput,
    emitSchemaFile: false,
    // Printing the schema needs no live pub/sub, but type-graphql wants one as soon as a subscription exists.
    pubSub: pubSub ?? createGraphQLPubSub(),
  });
  resolveUnionsSynchronously(schema);
  return schema;
}

/**
 * type-graphql wraps every union's `resolveType` in an async function, and graphql-jit resolves abstract types only
 * synchronously (the fast path would run documents with a union on graphql-js). A union's `resolveType` here answers
 * at once (a type name, or a class as type-graphql maps it): install it without the wrapper. One that returns a
 * promise is a programming error, refused loudly.
 */
function resolveUnionsSynchronously(schema: GraphQLSchema): void {
  const storage = getMetadataStorage();
  for (const union of storage.unions) {
    const type = schema.getType(union.name);
    const resolve = union.resolveType;
    if (!resolve || !isUnionType(type)) continue;
    const names = new Map<Function, string>(
      union
        .getClassTypes()
        .map((target) => [
          target,
          storage.objectTypes.find((objectType) => objectType.target === target)?.name ?? target.name,
        ]),
    );
    type.resolveType = (value, context, info, abstractType): string | undefined => {
      const resolved = resolve(value, context, info, abstractType);
      if (resolved instanceof Promise)
        throw new Error(`${union.name}: resolveType must answer synchronously`);
      return typeof resolved === 'function' ? names.get(resolved) : (resolved ?? undefined);
    };
  }
}
