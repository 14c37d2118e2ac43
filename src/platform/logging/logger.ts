import pino, { type Logger } from 'pino';

export type { Logger };

/** One root logger per process; request loggers are children carrying the request id. Tokens are redacted. */
export function createLogger(options: { level: string; name?: string }): Logger {
  return pino({
    name: options.name ?? 'crm-gateway',
    level: options.level,
    redact: {
      paths: ['req.headers.authorization', 'authorization', 'token', '*.authorization', '*.token'],
      censor: '[redacted]',
    },
  });
}
