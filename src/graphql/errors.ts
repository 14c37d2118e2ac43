import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { classifyDatabaseError } from '../platform/db/db-errors';
import { AppError, ErrorCode } from '../platform/errors/app-error';
import { LimitErrorCode } from './limits';
import { PersistedOperationErrorCode } from './persisted-operations';
import type { Logger } from '../platform/logging/logger';

/** Codes that graphql-js and Apollo assign themselves; they describe the request, so they are safe to show. */
const PASS_THROUGH_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
  ...Object.values(ErrorCode),
  ...Object.values(LimitErrorCode),
  ...Object.values(PersistedOperationErrorCode),
]);

function findAppError(error: unknown): AppError | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth++) {
    if (current instanceof AppError) return current;
    current = (current as { originalError?: unknown }).originalError;
  }
  return undefined;
}

const GATEWAY_CODES = new Set<unknown>([...Object.values(ErrorCode), ...Object.values(LimitErrorCode)]);

function findGatewayCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth++) {
    const code = current instanceof GraphQLError ? current.extensions?.code : undefined;
    if (GATEWAY_CODES.has(code) && code !== ErrorCode.INTERNAL_SERVER_ERROR) return code as string;
    current = (current as { originalError?: unknown }).originalError;
  }
  return undefined;
}

export interface ErrorFormatOptions {
  /** Strip graphql-js's "Did you mean …?" hints (they reveal the schema when introspection is off). */
  hideSuggestions?: boolean;
  /** Told the code of every formatted error (metrics). */
  onCode?: (code: string) => void;
}

/** graphql-js's wording when the parser's `maxTokens` stops a document. */
const TOKEN_LIMIT = /Document contains more th(?:at|an|en) (\d+) tokens/;
const SUGGESTION = /\s*Did you mean [^?]+\?/g;

/**
 * The one place errors are shaped for clients (HTTP and WebSocket): AppErrors keep their message and code, database
 * errors that input caused or an outage explains become client errors, request errors from graphql-js keep theirs,
 * anything else is masked and logged in full.
 */
export function formatError(
  formatted: GraphQLFormattedError,
  error: unknown,
  logger: Logger,
  options: ErrorFormatOptions = {},
): GraphQLFormattedError {
  const result = shapeError(formatted, error, logger);
  const code = result.extensions?.code;
  options.onCode?.(typeof code === 'string' ? code : 'UNKNOWN');
  return options.hideSuggestions ? { ...result, message: result.message.replace(SUGGESTION, '') } : result;
}

function fromAppError(appError: AppError, formatted: GraphQLFormattedError): GraphQLFormattedError {
  const { violations, extensions } = appError.details as { violations?: unknown; extensions?: object };
  return {
    message: appError.message,
    locations: formatted.locations,
    path: formatted.path,
    extensions: { ...extensions, code: appError.code, ...(violations ? { violations } : {}) },
  };
}

function shapeError(formatted: GraphQLFormattedError, error: unknown, logger: Logger): GraphQLFormattedError {
  const appError = findAppError(error);
  if (appError) return fromAppError(appError, formatted);
  const databaseError = classifyDatabaseError(error);
  if (databaseError) {
    logger.warn(
      { err: (error as { originalError?: unknown })?.originalError ?? error, path: formatted.path },
      `database error answered as ${databaseError.code}`,
    );
    return fromAppError(databaseError, formatted);
  }
  const tokenLimit = TOKEN_LIMIT.exec(formatted.message)?.[1];
  if (tokenLimit) {
    return {
      message: `Query document has more than ${tokenLimit} tokens; the limit is ${tokenLimit}`,
      locations: formatted.locations,
      extensions: { code: LimitErrorCode.QUERY_TOO_LARGE },
    };
  }
  // Apollo re-labels validation-rule errors GRAPHQL_VALIDATION_FAILED; keep the gateway's own, more precise code.
  const ownCode = findGatewayCode(error);
  const code = ownCode ?? formatted.extensions?.code;
  const isRequestError =
    typeof code === 'string' && PASS_THROUGH_CODES.has(code) && code !== ErrorCode.INTERNAL_SERVER_ERROR;
  // A GraphQLError without originalError was raised by graphql-js validation or coercion: it describes the request.
  const isGraphQLRequestError =
    error instanceof GraphQLError && !error.originalError && (code === undefined || isRequestError);
  if (isRequestError || isGraphQLRequestError) {
    return {
      message: formatted.message,
      locations: formatted.locations,
      path: formatted.path,
      extensions: { code: typeof code === 'string' ? code : 'GRAPHQL_VALIDATION_FAILED' },
    };
  }
  logger.error(
    { err: (error as { originalError?: unknown })?.originalError ?? error, path: formatted.path },
    'unexpected error',
  );
  return {
    message: 'Internal server error',
    locations: formatted.locations,
    path: formatted.path,
    extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR },
  };
}

/** A GraphQLError for rejections raised by the gateway itself (limits, auth) with a stable code. */
export function gatewayError(code: ErrorCode, message: string, httpStatus = 400): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status: httpStatus } } });
}
