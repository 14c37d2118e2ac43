// Sharing's public face: its module and the visibility decision every read path asks.
export { sharingModule, type SharingServices } from './sharing.module';
export type {
  VisibilityService,
  SqlPredicate,
  OwnedRecord,
  WriteVisibility,
  ReadScope,
  ReadClauses,
} from './visibility.service';
export type { SharingService } from './sharing.service';
export { criteriaToSql, criteriaMatch, storedConditionSql, type CriteriaCondition } from './criteria';
