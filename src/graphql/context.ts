import { randomUUID } from 'node:crypto';
import {
  parseBearer,
  createIdentityLoaders,
  type IdentityService,
  type Principal,
} from '../modules/identity';
import { createRecordLoaders, type RecordServices } from '../modules/records';
import type { RequestContext } from '../modules/request-context';
import type { Logger } from '../platform/logging/logger';

export interface ContextFactoryOptions {
  identity: IdentityService;
  records: RecordServices;
  logger: Logger;
  /** Largest DataLoader batch (ids per SQL statement). */
  maxBatchSize: number;
}

/** Turns an Authorization header into a principal, and a principal into a fresh per-request context. */
export class ContextFactory {
  constructor(private readonly options: ContextFactoryOptions) {}

  /** Undefined for anonymous requests; throws UNAUTHENTICATED for a bad, expired or foreign token. */
  async authenticate(authorization: string | undefined | null): Promise<Principal | undefined> {
    const token = parseBearer(authorization);
    return token === undefined ? undefined : this.options.identity.authenticate(token);
  }

  create(principal: Principal | undefined, requestId: string = randomUUID()): RequestContext {
    return {
      requestId,
      principal,
      logger: this.options.logger.child({ requestId, userId: principal?.userId }),
      loaders: {
        ...createIdentityLoaders(this.options.identity, principal, this.options.maxBatchSize),
        ...createRecordLoaders(this.options.records, principal, this.options.maxBatchSize),
      },
    };
  }
}
