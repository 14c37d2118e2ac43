import { buildSchema, GraphQLError } from 'graphql';
import { authFailure } from '../../modules/kernel';
import { createLogger } from '../../platform/logging/logger';
import { Metrics } from '../../platform/metrics/metrics';
import type { ContextFactory } from '../context';
import { OperationCore } from '../operation';
import { operationLimits } from '../operation-limits';
import { OperationMetrics } from '../operation-metrics';
import { loadConfig } from '../../config/config';

/** The documented defaults (GRAPHQL_MAX_* unset). */
const LIMITS = operationLimits(loadConfig({}).graphql);

/** The core with an authentication that fails as `failure` does, and a logger whose error lines are kept. */
function coreFailingWith(failure: unknown) {
  const logged: Array<{ err?: unknown; msg: string }> = [];
  const logger = createLogger({ level: 'silent' });
  logger.error = ((object: { err?: unknown }, msg: string) => {
    logged.push({ err: object.err, msg });
  }) as typeof logger.error;
  logger.warn = logger.error;
  const contexts = {
    authenticate: async () => {
      throw failure;
    },
  } as unknown as ContextFactory;
  const core = new OperationCore({
    schema: buildSchema('type Query { a: Int }'),
    contexts,
    limits: LIMITS,
    logger,
    operationMetrics: new OperationMetrics(new Metrics({ process: 'gateway' })),
    introspection: false,
  });
  return { core, logged };
}

async function refusal(core: OperationCore): Promise<GraphQLError> {
  const caller = await core.authenticate('Bearer x.y.z');
  if (!('error' in caller)) throw new Error('expected a refusal');
  return caller.error;
}

describe('OperationCore.authenticate: the one answer every transport gives a caller it cannot accept', () => {
  it('a refused token keeps its code and message, 401', async () => {
    const { core, logged } = coreFailingWith(authFailure('UNKNOWN_USER'));
    const error = await refusal(core);
    expect({ message: error.message, extensions: error.extensions }).toEqual({
      message: authFailure('UNKNOWN_USER').message,
      extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } },
    });
    expect(logged).toEqual([]);
  });

  it('a database that cannot be reached is ours: SERVICE_UNAVAILABLE, 503', async () => {
    const { core } = coreFailingWith(
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    );
    expect((await refusal(core)).extensions).toEqual({
      code: 'SERVICE_UNAVAILABLE',
      http: { status: 503 },
    });
  });

  it('anything else is masked for the client and logged once, with its cause, when it is formatted', async () => {
    const bug = new TypeError('cannot read properties of undefined');
    const { core, logged } = coreFailingWith(bug);
    const error = await refusal(core);
    expect(error.message).toBe('Internal server error');
    expect(error.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', http: { status: 500 } });
    expect(logged).toEqual([]);
    expect(core.formatErrors([error])).toEqual([
      expect.objectContaining({
        message: 'Internal server error',
        extensions: { code: 'INTERNAL_SERVER_ERROR' },
      }),
    ]);
    expect(logged).toEqual([{ err: bug, msg: 'unexpected error' }]);
  });
});
