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
 * and no lone surrogate (not valid UTF-8). Checked here once for all inputs, so no such value reaches SQL.
 */
function collectUnstorableText(value: unknown, path: string, out: FieldViolation[]): void {
  if (typeof value === 'string') {
    if (value.includes('\u0000'))
      out.push({ field: path, rule: 'must not contain NUL (\\u0000) characters' });
    else if (LONE_SURROGATE.test(value))
      out.push({ field: path, rule: 'must be valid Unicode text (it contains a lone surrogate)' });
  } else if (Array.isArray(value)) {
    value.forEach((item, index) => collectUnstorableText(item, `${path}[${index}]`, out));
  } else if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    for (const [key, inner] of Object.entries(value)) collectUnstorableText(inner, `${path}.${key}`, out);
  }
}

/**
 * Runs class-validator on every input object argument and turns failures into one BAD_USER_INPUT error that
 * names each field and the rule it broke, before the resolver (and so before any write) runs.
 */
export const validateInput: ValidatorFn = async (argValue, _argType, { args }) => {
  const textViolations: FieldViolation[] = [];
  const scalarName = Object.entries(args).find(([, value]) => value === argValue)?.[0];
  // Unnamed: an @Args class, whose fields are the field's own arguments (no prefix).
  collectUnstorableText(argValue, scalarName ?? '', textViolations);
  if (textViolations.length > 0)
    throw new ValidationError(textViolations.map((v) => ({ ...v, field: v.field.replace(/^\./, '') })));
  if (argValue === null || typeof argValue !== 'object' || argValue instanceof Date) return;
  const values: unknown[] = Array.isArray(argValue) ? (argValue as unknown[]) : [argValue];
  const argName =
    Object.entries(args).find(([, value]) => value !== null && typeof value === 'object')?.[0] ?? 'input';
  const violations: FieldViolation[] = [];
  for (const value of values) {
    if (value === null || typeof value !== 'object') continue;
    const errors = await validate(value, { forbidUnknownValues: false, validationError: { target: false } });
    // @Args classes are flattened into the field's arguments, so their fields carry no prefix.
    const isArgsClass =
      !Object.values(args).includes(value) && Object.keys(value).every((key) => key in args);
    collect(errors, isArgsClass ? '' : argName, violations);
  }
  if (violations.length > 0) {
    throw new ValidationError(violations.map((v) => ({ ...v, field: v.field.replace(/^\./, '') })));
  }
};
