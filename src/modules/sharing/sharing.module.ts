import { SharingIndexes1764400000000 } from '../../../migrations/1764400000000-sharing-indexes';
import { TieredCache } from '../../platform/cache/tiered.cache';
import { ShutdownPhase } from '../../platform/lifecycle/lifecycle';
import { defineModule, requireService } from '../kernel';
import { OrgWideDefaultEntity, RecordShareEntity, SharingRuleEntity } from './sharing.entities';
import { sharingLookup } from './sharing.bench';
import { SharingResolver } from './sharing.resolver';
import { SharingService } from './sharing.service';
import { VisibilityCache } from './visibility.cache';
import { VisibilityCompiler } from './visibility.compiler';
import { VisibilityService } from './visibility.service';

export interface SharingServices {
  visibility: VisibilityService;
  sharing: SharingService;
}

declare module '../kernel/registries' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ServiceRegistry extends SharingServices {}
}

/** The two-tier cache's name: keys `crm:sharing:...` and the invalidation channel. */
export const SHARING_CACHE = 'sharing';

/** Record-level sharing: the one visibility decision every read path asks, and the rules that feed it. */
export const sharingModule = defineModule<SharingServices>({
  name: 'sharing',
  entities: [OrgWideDefaultEntity, SharingRuleEntity, RecordShareEntity],
  migrations: [SharingIndexes1764400000000],
  cacheNamespaces: [SHARING_CACHE],
  createServices: async ({ services, config, dataSource, redis, events, logger, metrics, lifecycle }) => {
    const tiered = new TieredCache({ name: SHARING_CACHE, redis, events, logger, metrics });
    await tiered.start();
    lifecycle.register('sharing-cache', ShutdownPhase.cache, () => tiered.stop());
    const cache = new VisibilityCache({
      cache: tiered,
      rulesTtlSeconds: config.sharing.rulesTtlSeconds,
      visibilityTtlSeconds: config.sharing.visibilityTtlSeconds,
    });
    const visibility = new VisibilityService(dataSource, new VisibilityCompiler(dataSource), cache);
    const audit = requireService(services, 'audit', 'sharing');
    audit.declare({
      objectTypes: ['SHARING_RULE', 'ORG_WIDE_DEFAULT'],
      actions: [
        'SHARING_RULE_CREATE',
        'SHARING_RULE_UPDATE',
        'SHARING_RULE_DELETE',
        'ORG_WIDE_DEFAULT_SET',
        'RECORD_SHARE',
        'RECORD_UNSHARE',
      ],
    });
    const sharing = new SharingService({
      dataSource,
      audit,
      identity: requireService(services, 'identity', 'sharing'),
      directory: requireService(services, 'directory', 'sharing'),
      visibility,
      cache,
    });
    // Identity's directory owns users, roles and groups: any committed change there recompiles visibility.
    requireService(services, 'directory', 'sharing').onAccessChanged((companyId) =>
      cache.invalidateRules(companyId),
    );
    return { visibility, sharing };
  },
  resolvers: (services) => [
    { resolver: SharingResolver, create: () => new SharingResolver(services.sharing) },
  ],
  bench: [sharingLookup],
});
