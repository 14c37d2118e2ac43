import { isObjectType, type GraphQLFieldResolver, type GraphQLSchema } from 'graphql';
import type { Tracer } from '../platform/tracing';

/** One span per GraphQL operation, named `<type> <name>` once the operation is known. */
export const OPERATION_SPAN = 'graphql.operation';

export const OperationAttribute = {
  type: 'graphql.operation.type',
  name: 'graphql.operation.name',
  complexity: 'graphql.operation.complexity',
  transport: 'crm.graphql.transport',
  field: 'graphql.field.path',
} as const;

/**
 * Wraps each Query and Mutation field's resolver in a span: those are the resolvers that call a service (search,
 * reports, exports, ...), the I/O an operation waits on. Nested fields resolve through per-request loaders whose SQL
 * spans show up on their own; a span per nested field would cost more than the field. Done once, before graphql-jit
 * compiles anything (it reads the resolvers from the schema).
 */
export function traceRootResolvers(schema: GraphQLSchema, tracer: Tracer): void {
  for (const root of [schema.getQueryType(), schema.getMutationType()]) {
    if (!root || !isObjectType(root)) continue;
    for (const field of Object.values(root.getFields())) {
      const resolve = field.resolve as GraphQLFieldResolver<unknown, unknown> | undefined;
      if (!resolve) continue;
      const name = `resolve ${root.name}.${field.name}`;
      field.resolve = (source, args, context, info) =>
        tracer.inSpan(name, { attributes: { [OperationAttribute.field]: info.fieldName } }, () =>
          resolve(source, args, context, info),
        );
    }
  }
}
