import { getMetadataArgsStorage } from 'typeorm';

/**
 * Largest value a `numeric(precision, scale)` entity column can hold (e.g. numeric(14,2) -> 999999999999.99), read from
 * the entity's own column definition so input limits cannot drift from the schema.
 */
export function numericColumnMax(entity: Function, property: string): number {
  const column = getMetadataArgsStorage().columns.find(
    (c) => c.target === entity && c.propertyName === property,
  );
  const { precision, scale = 0 } = column?.options ?? {};
  if (column?.options.type !== 'numeric' || typeof precision !== 'number') {
    throw new Error(`${entity.name}.${property} is not a numeric column with a precision`);
  }
  return Number((10 ** (precision - scale) - 10 ** -scale).toFixed(scale));
}
