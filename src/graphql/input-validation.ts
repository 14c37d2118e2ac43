import { validate, type ValidationError as ClassValidatorError } from 'class-validator';
import type { ValidatorFn } from 'type-graphql';
import { ValidationError, type FieldViolation } from '../platform/errors/app-error';

function collect(errors: ClassValidatorError[], path: string, out: FieldViolation[]): void {
  for (const error of errors) {
    const field = `${path}.${error.property}`;
    for (const message of Object.values(error.constraints ?? {})) {
      out.push({
        field,
        rule: message.startsWith(`${error.property} `) ? message.slice(error.property.length + 1) : message,
      });
    }
    if (error.children?.length) collect(error.children, field, out);
  }
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Every string of every argument, however nested, must be text Postgres can store: no NUL (text and jsonb refuse it)
 * and no lone surrogate (not valid UTF-8). Checked here once for all inputs, so no such value reaches SQL. A flat
 * walk, not a recursive one: the operation limits bound the depth, but a walk over client input never trusts that.
 */
function collectUnstorableText(root: unknown, rootPath: string, out: FieldViolation[]): void {
  // Paths are built only for what is queued (objects and arrays) and for violations, not for every element.
  const pending: Array<[unknown, string]> = [[root, rootPath]];
  const check = (text: string, path: () => string) => {
    if (text.includes('\u0000'))
      out.push({ field: path(), rule: 'must not contain NUL (\\u0000) characters' });
    else if (LONE_SURROGATE.test(text))
      out.push({ field: path(), rule: 'must be valid Unicode text (it contains a lone surrogate)' });
  };
  const visit = (value: unknown, path: () => string) => {
    if (typeof value === 'string') check(value, path);
    else if (value !== null && typeof value === 'object' && !(value instanceof Date))
      pending.push([value, path()]);
  };
  while (pending.length > 0) {
    const [value, path] = pending.pop()!;
    if (typeof value === 'string') check(value, () => path);
    else if (Array.isArray(value)) {
      for (let index = 0; index < value.length; index++) visit(value[index], () => `${path}[${index}]`);
    } else if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
      for (const key of Object.keys(value))
        visit((value as Record<string, unknown>)[key], () => `${path}.${key}`);
    }
  }
}

/**
 * Only instances of input classes carry class-validator rules. JSON scalars arrive as plain or prototype-less objects
 * (graphql-scalars builds literals with `Object.create(null)`, on which class-validator throws).
 */
function isInputClassInstance(value: unknown): value is object {
  if (value === null || typeof value !== 'object' || value instanceof Date) return false;
  const prototype = Object.getPrototypeOf(value) as object | null;
  return prototype !== null && prototype !== Object.prototype && prototype !== Array.prototype;
}

/**
 * Where an argument's fields are reported: its own name; '' for an @Args class (its fields are the field's arguments);
 * for an input object type-graphql passes a class instance built from the raw value, so the object-valued argument.
 */
function argumentPath(argValue: unknown, args: Record<string, unknown>): string {
  const same = Object.entries(args).find(([, value]) => value === argValue)?.[0];
  if (same !== undefined) return same;
  if (argValue !== null && typeof argValue === 'object' && !Array.isArray(argValue)) {
    if (Object.keys(argValue).every((key) => key in args)) return '';
  }
  return (
    Object.entries(args).find(([, value]) => value !== null && typeof value === 'object')?.[0] ?? 'input'
  );
}

const withoutLeadingDot = (violations: FieldViolation[]) =>
  violations.map((v) => ({ ...v, field: v.field.replace(/^\./, '') }));

/**
 * Runs class-validator on every input object argument and turns failures into one BAD_USER_INPUT error that
 * names each field and the rule it broke, before the resolver (and so before any write) runs. Every string of every
 * argument, scalars included, is checked for text Postgres cannot store.
 */
export const validateInput: ValidatorFn = async (argValue, _argType, { args }) => {
  const path = argumentPath(argValue, args);
  const textViolations: FieldViolation[] = [];
  collectUnstorableText(argValue, path, textViolations);
  if (textViolations.length > 0) throw new ValidationError(withoutLeadingDot(textViolations));
  const values: unknown[] = Array.isArray(argValue) ? (argValue as unknown[]) : [argValue];
  const violations: FieldViolation[] = [];
  for (const value of values) {
    if (!isInputClassInstance(value)) continue;
    const errors = await validate(value, { forbidUnknownValues: false, validationError: { target: false } });
    collect(errors, path, violations);
  }
  if (violations.length > 0) throw new ValidationError(withoutLeadingDot(violations));
};
