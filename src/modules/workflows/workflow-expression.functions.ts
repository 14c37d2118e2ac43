// The functions expressions may call (`$upper(...)`), and the text form every value takes in them.

const numbers = (values: unknown[]) => values.flat().filter((v): v is number => typeof v === 'number');

/** A value as expression text: strings as they are, numbers and booleans spelled out, objects as JSON. */
export function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value) ?? '';
}

export const FUNCTIONS: Record<string, (...args: unknown[]) => unknown> = {
  $upper: (value) => text(value).toUpperCase(),
  $lower: (value) => text(value).toLowerCase(),
  $trim: (value) => text(value).trim(),
  $length: (value) => (Array.isArray(value) ? value.length : text(value).length),
  $substring: (value, start, length) =>
    text(value).substr(Number(start) || 0, length === undefined ? undefined : Number(length)),
  $contains: (value, part) => text(value).includes(text(part)),
  $concat: (...values) => values.map(text).join(''),
  $join: (values, separator) =>
    Array.isArray(values) ? values.map(text).join(text(separator)) : text(values),
  $split: (value, separator) => text(value).split(text(separator)),
  $number: (value) => {
    const parsed = Number(value);
    return Number.isFinite(parsed) ? parsed : null;
  },
  $string: (value) => (typeof value === 'object' && value !== null ? JSON.stringify(value) : text(value)),
  $round: (value, digits) => {
    const factor = 10 ** (Number(digits) || 0);
    return Math.round(Number(value) * factor) / factor;
  },
  $abs: (value) => Math.abs(Number(value)),
  $sum: (...values) => numbers(values).reduce((a, b) => a + b, 0),
  $count: (value) => (Array.isArray(value) ? value.length : value === null || value === undefined ? 0 : 1),
  $min: (...values) => (numbers(values).length ? Math.min(...numbers(values)) : null),
  $max: (...values) => (numbers(values).length ? Math.max(...numbers(values)) : null),
  $average: (...values) => {
    const all = numbers(values);
    return all.length ? all.reduce((a, b) => a + b, 0) / all.length : null;
  },
  $exists: (value) => value !== null && value !== undefined,
  $default: (value, fallback) => (value === null || value === undefined || value === '' ? fallback : value),
  $boolean: (value) => Boolean(value),
};
