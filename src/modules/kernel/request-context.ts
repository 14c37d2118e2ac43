import { createParameterDecorator } from 'type-graphql';
import type { Logger } from '../../platform/logging/logger';
import { authFailure } from './auth.errors';
import type { Principal } from './principal';
import type { RequestLoaders, ServiceRegistry } from './registries';

/** What every resolver receives; built by the transport layer for each request or WebSocket operation. */
export interface RequestContext {
  requestId: string;
  logger: Logger;
  /** Absent for anonymous requests, which may only introspect. */
  principal?: Principal;
  loaders: RequestLoaders;
  /**
   * Every module's public services. For type-graphql's static `subscribe` functions (a subscription whose first
   * message is a snapshot read from a service); resolvers take their services through their constructor.
   */
  services: ServiceRegistry;
}

/** Resolves the caller, or fails with UNAUTHENTICATED: every field that reads or writes data takes it. */
export function CurrentPrincipal() {
  return createParameterDecorator<RequestContext>(({ context }) => {
    const principal = context.principal;
    if (!principal) throw authFailure('MISSING_TOKEN');
    if (principal.tokenExpiresAt * 1000 <= Date.now()) throw authFailure('EXPIRED_TOKEN');
    return principal;
  });
}
