import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';

/*
 * The pieces every settings fragment is made of. A module declares its environment variables and what it reads from
 * them next to its code (`src/modules/<slice>/<slice>.settings.ts`); config.ts composes the fragments and stays the
 * only reader of process.env. A fragment imports this file and zod, nothing else.
 */

/** Parses "true"/"false"/"1"/"0" explicitly; z.coerce.boolean() would turn "false" into true. */
export const booleanFlag = (defaultValue: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .optional()
    .transform((value) => (value === undefined ? defaultValue : ['true', '1', 'yes'].includes(value)));

/** The entries of a comma-separated list, trimmed, empty ones dropped. */
export const listEntries = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);

/** An optional comma-separated list whose every entry passes `pattern`. */
export const commaList = (pattern: RegExp, message: string) =>
  z
    .string()
    .optional()
    .refine((value) => listEntries(value).every((entry) => pattern.test(entry)), { message });

export const port = (defaultValue: number) => z.coerce.number().int().min(0).max(65535).default(defaultValue);
export const positiveInt = (defaultValue: number) => z.coerce.number().int().positive().default(defaultValue);
/**
 * A worker's claim on a job (BullMQ's lock duration and stalled-check interval): a killed worker's job is taken over
 * one to two claims later. Under a second the claim is renewed so often that a busy event loop loses live jobs.
 */
export const claimMs = (defaultValue: number) =>
  z.coerce
    .number()
    .int()
    .min(1000, { message: 'must be at least 1000 ms (a shorter claim lapses between renewals)' })
    .default(defaultValue);
export const optionalUrl = (protocols: RegExp) =>
  z
    .string()
    .optional()
    .transform((value) => (value === '' ? undefined : value))
    .refine((value) => value === undefined || protocols.test(value), {
      message: `must be a URL starting with ${protocols.source.replace(/[\\^()]/g, '').replace(/\|/g, ' or ')}`,
    });

export function isCronPattern(pattern: string): boolean {
  try {
    CronExpressionParser.parse(pattern, { tz: 'UTC' });
    return true;
  } catch {
    return false;
  }
}

/** What a fragment may read beyond its own variables: deployment facts config.ts has already settled. */
export interface SettingsContext {
  /** The JWT secret in force (the development default when none is set). */
  readonly jwtSecret: string;
}

/** A module's settings: its variables (names unchanged since they were global) and what it makes of them. */
export interface SettingsFragment<Shape extends z.ZodRawShape, Settings> {
  readonly variables: Shape;
  read(env: z.infer<z.ZodObject<Shape>>, context: SettingsContext): Settings;
}

export function defineSettings<Shape extends z.ZodRawShape, Settings>(
  fragment: SettingsFragment<Shape, Settings>,
): SettingsFragment<Shape, Settings> {
  return fragment;
}
