export { VisibilityService, type SqlPredicate, type OwnedRecord } from './visibility.service';
export {
  OrgWideDefaultEntity,
  SharingRuleEntity,
  RecordShareEntity,
  OrgWideAccess,
  AccessLevel,
} from './sharing.entities';
