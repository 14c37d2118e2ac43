import { GraphQLError } from 'graphql';
import pino from 'pino';
import { ValidationError } from '../../platform/errors/app-error';
import { formatError } from '../errors';

function capture() {
  const lines: string[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => lines.push(line) });
  return { logger, lines };
}

describe('formatError', () => {
  it('masks unexpected errors for clients and logs them in full', () => {
    const { logger, lines } = capture();
    const secret = new Error('connection to 10.0.0.5 refused: password authentication failed for "crm"');
    const wrapped = new GraphQLError(secret.message, { originalError: secret, path: ['deals'] });
    const formatted = formatError(wrapped.toJSON(), wrapped, logger);
    expect(formatted.message).toBe('Internal server error');
    expect(formatted.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR' });
    expect(JSON.stringify(formatted)).not.toContain('10.0.0.5');
    expect(lines.join('\n')).toContain('password authentication failed');
  });

  it('keeps the message, code and violations of an AppError', () => {
    const { logger, lines } = capture();
    const appError = new ValidationError([{ field: 'input.email', rule: 'must be an email' }]);
    const wrapped = new GraphQLError(appError.message, { originalError: appError });
    const formatted = formatError(wrapped.toJSON(), wrapped, logger);
    expect(formatted).toMatchObject({
      message: 'input.email must be an email',
      extensions: {
        code: 'BAD_USER_INPUT',
        violations: [{ field: 'input.email', rule: 'must be an email' }],
      },
    });
    expect(lines).toHaveLength(0);
  });

  it('never forwards a stack trace', () => {
    const { logger } = capture();
    const error = new GraphQLError('boom', { originalError: new TypeError('x is undefined') });
    const formatted = formatError(
      { ...error.toJSON(), extensions: { code: 'INTERNAL_SERVER_ERROR', stacktrace: ['at x'] } },
      error,
      logger,
    );
    expect(formatted.extensions).not.toHaveProperty('stacktrace');
  });
});
