import { registerEnumType } from 'type-graphql';
import { GroupMemberType } from '../identity';
import { CriteriaOperator } from './criteria';
import { AccessLevel, OrgWideAccess } from './sharing.entities';

export const RuleType = { OWNER: 'OWNER', CRITERIA: 'CRITERIA' } as const;
export type RuleType = (typeof RuleType)[keyof typeof RuleType];

export const SourceType = {
  ROLE: 'ROLE',
  ROLE_AND_SUBORDINATES: 'ROLE_AND_SUBORDINATES',
  GROUP: 'GROUP',
} as const;
export type SourceType = (typeof SourceType)[keyof typeof SourceType];

/** Rule targets are the kinds of group members (identity registers the GraphQL enum, SharingTargetType). */
export const TargetType = GroupMemberType;
export type TargetType = GroupMemberType;

export const GranteeType = { USER: 'USER', GROUP: 'GROUP' } as const;
export type GranteeType = (typeof GranteeType)[keyof typeof GranteeType];

registerEnumType(OrgWideAccess, {
  name: 'OrgWideAccess',
  description: 'Default access to records of a type within a company',
});
registerEnumType(AccessLevel, { name: 'AccessLevel' });
registerEnumType(RuleType, { name: 'SharingRuleType' });
registerEnumType(SourceType, {
  name: 'SharingSourceType',
  description: 'Whose records an owner-based rule shares',
});
registerEnumType(GranteeType, { name: 'ShareGranteeType' });
registerEnumType(CriteriaOperator, { name: 'CriteriaOperator' });
