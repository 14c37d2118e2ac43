import { randomUUID } from 'node:crypto';
import { parseBearer, type IdentityService } from '../modules/identity';
import type {
  CrmModule,
  Principal,
  RequestContext,
  RequestLoaders,
  ServiceRegistry,
} from '../modules/kernel';
import type { Logger } from '../platform/logging/logger';

export interface ContextFactoryOptions {
  identity: IdentityService;
  /** Every module; each adds its per-request loaders. */
  modules: readonly CrmModule[];
  services: ServiceRegistry;
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
    const { modules, services, maxBatchSize } = this.options;
    const loaders: Partial<RequestLoaders> = {};
    for (const module of modules)
      Object.assign(loaders, module.loaders?.(services, principal, { maxBatchSize }));
    return {
      requestId,
      principal,
      logger: this.options.logger.child({ requestId, userId: principal?.userId }),
      loaders: loaders as RequestLoaders,
      services,
    };
  }
}
