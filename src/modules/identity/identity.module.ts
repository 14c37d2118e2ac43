import { Foundation1764300000000 } from '../../../migrations/1764300000000-foundation';
import { UserDeactivation1764500000000 } from '../../../migrations/1764500000000-user-deactivation';
import { TieredCache } from '../../platform/cache/tiered.cache';
import { ShutdownPhase } from '../../platform/lifecycle/lifecycle';
import { defineModule, requireService } from '../kernel';
import { CompanyEntity } from './company.entity';
import { GroupEntity, GroupMemberEntity } from './group.entity';
import { DirectoryResolver } from './directory.resolver';
import { DirectoryService } from './directory.service';
import { createIdentityLoaders } from './identity.loaders';
import { IdentityResolver } from './identity.resolver';
import { IDENTITY_CACHE, IdentityService } from './identity.service';
import { RoleEntity } from './role.entity';
import { TokenService } from './token.service';
import { UserEntity } from './user.entity';

export interface IdentityServices {
  tokens: TokenService;
  identity: IdentityService;
  directory: DirectoryService;
}

declare module '../kernel/registries' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ServiceRegistry extends IdentityServices {}
}

/** Companies, users, roles and groups; tokens; who the caller is. */
export const identityModule = defineModule<IdentityServices>({
  name: 'identity',
  entities: [CompanyEntity, RoleEntity, UserEntity, GroupEntity, GroupMemberEntity],
  // The foundation migration creates the tables every slice starts from; it runs first.
  migrations: [Foundation1764300000000, UserDeactivation1764500000000],
  cacheNamespaces: [IDENTITY_CACHE],
  createServices: async ({
    services,
    config,
    dataSource,
    cache,
    redis,
    events,
    logger,
    metrics,
    lifecycle,
  }) => {
    const tokens = new TokenService({ secret: config.jwt.secret, ttlSeconds: config.jwt.ttlSeconds });
    const users = new TieredCache({ name: IDENTITY_CACHE, redis, events, logger, metrics });
    await users.start();
    lifecycle.register('identity-cache', ShutdownPhase.cache, () => users.stop());
    const identity = new IdentityService({
      dataSource,
      cache,
      users,
      tokens,
      cacheTtlSeconds: config.entityCacheTtlSeconds,
      metrics,
    });
    const audit = requireService(services, 'audit', 'identity');
    audit.declare({
      objectTypes: ['USER', 'ROLE', 'GROUP'],
      actions: [
        'USER_CREATE',
        'USER_DEACTIVATE',
        'USER_ACCESS_UPDATE',
        'ROLE_CREATE',
        'ROLE_UPDATE',
        'GROUP_CREATE',
        'GROUP_MEMBER_ADD',
        'GROUP_MEMBER_REMOVE',
      ],
    });
    // A write whose actor turned out to be gone or deactivated drops them from the shared cache everywhere.
    audit.onInactiveActor((principal) => identity.invalidateUsers(principal.companyId, [principal.userId]));
    const directory = new DirectoryService({ dataSource, identity, audit });
    return { tokens, identity, directory };
  },
  resolvers: (services) => [
    { resolver: IdentityResolver, create: () => new IdentityResolver(services.identity) },
    { resolver: DirectoryResolver, create: () => new DirectoryResolver(services.directory) },
  ],
  loaders: (services, principal, { maxBatchSize }) =>
    createIdentityLoaders(services.identity, principal, maxBatchSize),
});
