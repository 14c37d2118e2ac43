import { registerEnumType } from 'type-graphql';
import { GroupMemberType } from '../identity';
import { graphqlEnum, type EnumValue } from '../kernel';
import { CriteriaOperator } from './criteria';
import { AccessLevel, OrgWideAccess } from './sharing.entities';

export const RuleType = graphqlEnum('SharingRuleType', ['OWNER', 'CRITERIA']);
export type RuleType = EnumValue<typeof RuleType>;

export const SourceType = graphqlEnum(
  'SharingSourceType',
  ['ROLE', 'ROLE_AND_SUBORDINATES', 'GROUP'],
  'Whose records an owner-based rule shares',
);
export type SourceType = EnumValue<typeof SourceType>;

/** Rule targets are the kinds of group members (identity registers the GraphQL enum, SharingTargetType). */
export const TargetType = GroupMemberType;
export type TargetType = GroupMemberType;

export const GranteeType = graphqlEnum('ShareGranteeType', ['USER', 'GROUP']);
export type GranteeType = EnumValue<typeof GranteeType>;

// Declared beside their entity and the criteria language, registered with GraphQL here.
registerEnumType(OrgWideAccess, {
  name: 'OrgWideAccess',
  description: 'Default access to records of a type within a company',
});
registerEnumType(AccessLevel, { name: 'AccessLevel' });
registerEnumType(CriteriaOperator, { name: 'CriteriaOperator' });
