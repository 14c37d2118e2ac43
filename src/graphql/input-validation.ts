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

/**
 * Runs class-validator on every input object argument and turns failures into one BAD_USER_INPUT error that
 * names each field and the rule it broke, before the resolver (and so before any write) runs.
 */
export const validateInput: ValidatorFn = async (argValue, _argType, { args }) => {
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
