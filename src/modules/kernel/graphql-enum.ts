import { registerEnumType } from 'type-graphql';

/** The values of an enum object made by `graphqlEnum`, as a union type. */
export type EnumValue<T> = T[keyof T];

/**
 * A string enum declared once: a frozen `{ VALUE: 'VALUE' }` object (for code and validation) registered as the
 * GraphQL enum `name`. `export type X = EnumValue<typeof X>` gives its union type.
 */
export function graphqlEnum<const V extends string>(
  name: string,
  values: readonly V[],
  description?: string,
): { readonly [K in V]: K } {
  const object = Object.freeze(Object.fromEntries(values.map((value) => [value, value]))) as {
    readonly [K in V]: K;
  };
  registerEnumType(object, { name, ...(description ? { description } : {}) });
  return object;
}
