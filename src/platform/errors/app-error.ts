/**
 * Codes every layer may answer with. The GraphQL layer declares its limit codes, and modules their own (each in one
 * `as const` object beside its service, listed in the module's `errorCodes`).
 */
export const ErrorCode = {
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
  /** A rate limit or cost quota is spent (HTTP 429, `Retry-After`, `extensions.retryAfterSeconds`). */
  RATE_LIMITED: 'RATE_LIMITED',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const HTTP_STATUS: Partial<Record<string, number>> = {
  UNAUTHENTICATED: 401,
  SERVICE_UNAVAILABLE: 503,
  RATE_LIMITED: 429,
};

export interface FieldViolation {
  /** Dotted path of the offending input, e.g. `input.email`. */
  field: string;
  /** The rule it broke, e.g. `must be a valid email address`. */
  rule: string;
}

/** Base of every expected error; its code reaches the client as `extensions.code`, its message as is. */
export class AppError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'AppError';
  }

  get httpStatus(): number | undefined {
    return HTTP_STATUS[this.code];
  }
}

export class ValidationError extends AppError {
  constructor(readonly violations: FieldViolation[]) {
    super(ErrorCode.BAD_USER_INPUT, violations.map((v) => `${v.field} ${v.rule}`).join('; '), { violations });
    this.name = 'ValidationError';
  }

  static single(field: string, rule: string): ValidationError {
    return new ValidationError([{ field, rule }]);
  }
}

export class NotFoundError extends AppError {
  constructor(objectType: string, id: string) {
    super(ErrorCode.NOT_FOUND, `${objectType} ${id} was not found`, { objectType, id });
    this.name = 'NotFoundError';
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string) {
    super(ErrorCode.FORBIDDEN, message);
    this.name = 'ForbiddenError';
  }
}

export class AuthenticationError extends AppError {
  constructor(message: string) {
    super(ErrorCode.UNAUTHENTICATED, message);
    this.name = 'AuthenticationError';
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** Ids are UUIDs: anything else is rejected naming the field, before it reaches SQL. */
export function assertUuid(field: string, value: string): void {
  if (!isUuid(value)) throw ValidationError.single(field, 'must be a UUID');
}
