// Records' public face: its module and its services' types.
export { recordsModule, type RecordsServices } from './records.module';
export type { RecordServices, AccountService } from './record-services';
export type { RecordService } from './record-type.service';
export type { RecordChange, RecordChangeFeed, RecordChangeListener } from './record-changes';
export { Lead, Deal, Account } from './record.types';
