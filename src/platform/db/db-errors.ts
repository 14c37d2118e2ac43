import { AppError, ErrorCode, ValidationError } from '../errors/app-error';

/** The fields of a node-postgres DatabaseError that say what went wrong and where. */
interface PgErrorFields {
  code?: string;
  column?: string;
  constraint?: string;
  detail?: string;
  message?: string;
}

/** SQLSTATE classes and node errors that mean "the database could not be reached", not "the request was wrong". */
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0)/;
const UNAVAILABLE_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
]);
const UNAVAILABLE_MESSAGE =
  /timeout exceeded when trying to connect|Connection terminated|Client has encountered a connection error|terminating connection|the database system is (starting up|shutting down)/i;

const DATA_EXCEPTION_RULES: Record<string, string> = {
  '22001': 'is too long for its column',
  '22003': 'is out of the range its column can hold',
  '22007': 'is not a valid date or time',
  '22008': 'is not a valid date or time',
  '22021': 'contains a byte sequence that is not valid text',
  '22P02': 'has an invalid format',
  '22P05': 'contains a character that cannot be stored (such as NUL)',
};

function snakeToCamel(name: string): string {
  return name.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase());
}

/** `Key (company_id, owner_id)=(…)` -> `ownerId`: the last key column that is not the tenant. */
function fieldFromDetail(detail: string | undefined): string | undefined {
  const columns = /Key \(([^)]+)\)=/
    .exec(detail ?? '')?.[1]
    ?.split(',')
    .map((c) => c.trim());
  // The tenant column is never client input: name the other key column, or nothing.
  const column = columns?.filter((c) => c !== 'company_id').pop();
  return column ? snakeToCamel(column) : undefined;
}

function findPgError(error: unknown): (PgErrorFields & { errno?: unknown }) | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current && typeof current === 'object'; depth++) {
    const candidate = current as PgErrorFields & {
      driverError?: unknown;
      originalError?: unknown;
      cause?: unknown;
      /** graphql-js wraps a thrown non-Error (pg's pool rejects with a plain `{ code: 'ECONNREFUSED' }`). */
      thrownValue?: unknown;
    };
    // Messages are only trusted on driver errors: a GraphQL error's message may quote client input.
    const fromGraphQL = 'locations' in candidate || 'extensions' in candidate;
    if (
      typeof candidate.code === 'string' ||
      (!fromGraphQL && candidate.message && UNAVAILABLE_MESSAGE.test(candidate.message))
    )
      return candidate;
    current = candidate.driverError ?? candidate.originalError ?? candidate.thrownValue ?? candidate.cause;
  }
  return undefined;
}

/** Thrown when the database cannot be reached; clients and load balancers may retry. */
export class ServiceUnavailableError extends AppError {
  constructor(what = 'The database') {
    super(ErrorCode.SERVICE_UNAVAILABLE, `${what} is unavailable; retry shortly`);
    this.name = 'ServiceUnavailableError';
  }
}

/**
 * Maps a database error to the client error it stands for: an outage -> SERVICE_UNAVAILABLE; a data exception (22xxx)
 * or constraint violation (23xxx) that input caused -> BAD_USER_INPUT naming the field where Postgres says which.
 * Anything else is undefined (a bug: masked and logged by the caller).
 */
export function classifyDatabaseError(error: unknown): AppError | undefined {
  const pg = findPgError(error);
  if (!pg) return undefined;
  const code = pg.code ?? '';
  if (
    UNAVAILABLE_SQLSTATE.test(code) ||
    UNAVAILABLE_NODE_CODES.has(code) ||
    UNAVAILABLE_MESSAGE.test(pg.message ?? '')
  )
    return new ServiceUnavailableError();
  const field = `input.${pg.column ? snakeToCamel(pg.column) : (fieldFromDetail(pg.detail) ?? 'value')}`;
  if (code.startsWith('22'))
    return ValidationError.single(field, DATA_EXCEPTION_RULES[code] ?? 'is not a value its column can hold');
  switch (code) {
    case '23502':
      return ValidationError.single(field, 'is required');
    case '23503':
      return ValidationError.single(field, 'must be the id of an existing record of your company');
    case '23505':
      return new AppError(ErrorCode.CONFLICT, `${field} is already taken`, {
        violations: [{ field, rule: 'must be unique' }],
      });
    case '23514':
      return ValidationError.single(field, `breaks the rule ${pg.constraint ?? 'of its column'}`);
  }
  return code.startsWith('23')
    ? ValidationError.single(field, 'breaks a constraint of its table')
    : undefined;
}
