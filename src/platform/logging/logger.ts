import pino, { type Logger } from 'pino';
import { redactCredentials } from './redact';

export type { Logger };

/** Error serializer that also masks URL credentials a driver may quote in a message or stack. */
function serializeError(error: unknown): unknown {
  if (!(error instanceof Error)) return typeof error === 'string' ? redactCredentials(error) : error;
  const serialized = pino.stdSerializers.err(error);
  serialized.message = redactCredentials(serialized.message);
  if (serialized.stack) serialized.stack = redactCredentials(serialized.stack);
  return serialized;
}

/**
 * One root logger per process; request loggers are children carrying the request id. Tokens are redacted. Commands
 * log to stderr (`to: 'stderr'`): their stdout is their answer, e.g. `TOKEN=$(npm run -s token ...)`.
 */
export function createLogger(options: {
  level: string;
  name?: string;
  to?: 'stdout' | 'stderr';
  /** Fields added to every line, e.g. the active trace's ids. Default none. */
  mixin?: () => object;
}): Logger {
  const settings = {
    name: options.name ?? 'crm-gateway',
    level: options.level,
    ...(options.mixin ? { mixin: options.mixin } : {}),
    serializers: { err: serializeError },
    redact: {
      paths: ['req.headers.authorization', 'authorization', 'token', '*.authorization', '*.token'],
      censor: '[redacted]',
    },
  };
  return options.to === 'stderr' ? pino(settings, pino.destination({ fd: 2, sync: true })) : pino(settings);
}
