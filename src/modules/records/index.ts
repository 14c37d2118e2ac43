export { LeadEntity } from './lead.entity';
export { DealEntity } from './deal.entity';
export { AccountEntity } from './account.entity';
export { createRecordServices, type RecordServices, AccountService } from './record-services';
export { RecordService, type RecordServiceDeps } from './record-type.service';
export { createRecordLoaders, type RecordLoaders } from './record.loaders';
export { LeadResolver, DealResolver, AccountResolver } from './record.resolvers';
export { recordsModule, type RecordsServices } from './records.module';
