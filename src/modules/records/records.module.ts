import { RecordSortIndexes1764800000000 } from '../../../migrations/1764800000000-record-sort-indexes';
import { defineModule, RecordType, requireService } from '../kernel';
import { AccountEntity } from './account.entity';
import { DealEntity } from './deal.entity';
import { LeadEntity } from './lead.entity';
import { RecordChangeFeed } from './record-changes';
import { createRecordLoaders } from './record.loaders';
import { recordWrites } from './record-writes.bench';
import { AccountResolver, DealResolver, LeadResolver } from './record.resolvers';
import { createRecordServices, RECORDS_CACHE, type RecordServices } from './record-services';

export interface RecordsServices {
  records: RecordServices;
}

declare module '../kernel/registries' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ServiceRegistry extends RecordsServices {}
}

/** Leads, deals and accounts: reads under visibility, audited writes, the account loader. */
export const recordsModule = defineModule<RecordsServices>({
  name: 'records',
  entities: [AccountEntity, LeadEntity, DealEntity],
  migrations: [RecordSortIndexes1764800000000],
  cacheNamespaces: [RECORDS_CACHE],
  createServices: ({ services, config, dataSource, cache, metrics, logger, pooler, reads }) => {
    const audit = requireService(services, 'audit', 'records');
    audit.declare({ objectTypes: Object.values(RecordType) });
    return {
      records: createRecordServices(
        {
          dataSource,
          visibility: requireService(services, 'visibility', 'records'),
          audit,
          identity: requireService(services, 'identity', 'records'),
          maxPageSize: config.graphql.maxPageSize,
          pooler,
          changes: new RecordChangeFeed(logger),
          reads,
        },
        cache,
        config.entityCacheTtlSeconds,
        metrics,
      ),
    };
  },
  resolvers: (services) => [
    { resolver: LeadResolver, create: () => new LeadResolver(services.records) },
    { resolver: DealResolver, create: () => new DealResolver(services.records) },
    { resolver: AccountResolver, create: () => new AccountResolver(services.records) },
  ],
  loaders: (services, principal, { maxBatchSize }) =>
    createRecordLoaders(services.records, principal, maxBatchSize),
  bench: [recordWrites],
});
