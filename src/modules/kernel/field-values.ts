import { isUuid } from '../../platform/errors/app-error';
import type { FieldKind, FieldSpec } from './field-catalog';

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?$/;

/** A calendar day that exists (Date.parse accepts 2024-02-30) in years 1 to 9999. */
export function isRealDay(day: string): boolean {
  const parsed = new Date(`${day}T00:00:00Z`);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString().slice(0, 10) === day && day >= '0001-01-01';
}

/** Why `value` cannot be a value of the field (the rule, for a message naming the field), or undefined when it can. */
export function scalarProblem(spec: FieldSpec, value: unknown): string | undefined {
  switch (spec.kind) {
    case 'text':
      return typeof value === 'string' && value.length <= 500
        ? undefined
        : 'must be a string of at most 500 characters';
    case 'enum':
      return typeof value === 'string' && spec.values!.includes(value)
        ? undefined
        : `must be one of ${spec.values!.join(', ')}`;
    case 'int':
      // The column is a 32-bit integer: anything outside would fail the cast in SQL.
      return Number.isInteger(value) && Math.abs(value as number) <= 2_147_483_647
        ? undefined
        : 'must be an integer between -2147483647 and 2147483647';
    case 'number':
    case 'money':
      return typeof value === 'number' && Number.isFinite(value) && Math.abs(value) < 1e15
        ? undefined
        : 'must be a finite number below 1e15 in magnitude';
    case 'uuid':
      return typeof value === 'string' && isUuid(value) ? undefined : 'must be a UUID';
    case 'timestamp':
      return typeof value === 'string' &&
        ISO_DATE.test(value) &&
        isRealDay(value.slice(0, 10)) &&
        !Number.isNaN(Date.parse(asUtcInstant(value)))
        ? undefined
        : 'must be a date (YYYY-MM-DD or ISO 8601)';
    case 'day':
      return typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value) && isRealDay(value)
        ? undefined
        : 'must be a date written YYYY-MM-DD';
  }
}

/** The cast a bound value of each kind takes in SQL. */
export const SQL_CAST: Readonly<Record<FieldKind, string>> = {
  text: '::text',
  enum: '::text',
  uuid: '::uuid',
  int: '::int',
  number: '::numeric',
  money: '::numeric',
  timestamp: '::timestamptz',
  day: '::date',
};

/** An ISO date or date-time with its zone; one written without a zone is read as UTC, never as server local time. */
function asUtcInstant(value: string): string {
  if (value.length === 10) return `${value}T00:00:00Z`;
  return /(Z|[+-]\d{2}:\d{2})$/.test(value) ? value : `${value}Z`;
}

/** Instants are bound in UTC so the database's session time zone cannot shift them. */
export function bindableValue(kind: FieldKind, value: unknown): unknown {
  return kind === 'timestamp' ? new Date(asUtcInstant(String(value))).toISOString() : value;
}

/**
 * Rewrites SQL with named parameters (`:name`, as sharing's predicates carry them) to positional ones, binding each
 * name once through `bind` (which returns `$n`).
 */
export function bindNamed(
  predicate: { sql: string; params: Record<string, unknown> },
  bind: (value: unknown) => string,
): string {
  const bound = new Map<string, string>();
  return predicate.sql.replace(/(?<!:):([A-Za-z_][A-Za-z0-9_]*)/g, (whole, name: string) => {
    if (!Object.hasOwn(predicate.params, name)) return whole;
    let placeholder = bound.get(name);
    if (!placeholder) {
      placeholder = bind(predicate.params[name]);
      bound.set(name, placeholder);
    }
    return placeholder;
  });
}

/** True for a time zone the runtime knows (IANA names such as Europe/Berlin, or UTC). */
/** Zones already checked: making a formatter per check costs more than the rest of a search's validation. */
const knownZones = new Map<string, boolean>();
const KNOWN_ZONES_MAX = 1000;

export function isTimeZone(zone: string): boolean {
  const known = knownZones.get(zone);
  if (known !== undefined) return known;
  let valid: boolean;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    valid = true;
  } catch {
    valid = false;
  }
  // Callers choose the strings: keep the map bounded (IANA has ~600 names; a flood of bad ones only evicts).
  if (zone.length > 64) return valid;
  if (knownZones.size >= KNOWN_ZONES_MAX) knownZones.clear();
  knownZones.set(zone, valid);
  return valid;
}
