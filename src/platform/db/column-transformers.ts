import type { ValueTransformer } from 'typeorm';

/** pg returns NUMERIC as a string to keep precision; money-sized values fit a double comfortably. */
export const numericToNumber: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | null) => (value === null ? null : Number(value)),
};
