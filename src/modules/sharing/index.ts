import './sharing.enums';

export {
  VisibilityService,
  toPredicate,
  type SqlPredicate,
  type OwnedRecord,
  type WriteVisibility,
} from './visibility.service';
export { VisibilityCompiler } from './visibility.compiler';
export { VisibilityCache } from './visibility.cache';
export { SharingService } from './sharing.service';
export { SharingResolver } from './sharing.resolver';
export type { CompiledVisibility, CompanySharingModel } from './sharing.model';
export { CRITERIA_FIELDS, type CriteriaCondition } from './criteria';
export {
  OrgWideDefaultEntity,
  SharingRuleEntity,
  RecordShareEntity,
  OrgWideAccess,
  AccessLevel,
} from './sharing.entities';
export { sharingModule, type SharingServices } from './sharing.module';
