import { IsString, Length } from 'class-validator';
import { GraphQLJSON } from 'graphql-scalars';
import { Field, ID, InputType, ObjectType } from 'type-graphql';
import { RecordType } from '../kernel';
import { CriteriaOperator } from './criteria';
import { AccessLevel, OrgWideAccess } from './sharing.entities';
import { GranteeType, RuleType, SourceType, TargetType } from './sharing.enums';

@ObjectType()
export class SharingReference {
  @Field(() => String)
  type!: string;

  @Field(() => ID)
  id!: string;
}

/** One condition of a criteria rule, as the rule shows it and as a client writes it. */
@ObjectType('CriteriaConditionType')
@InputType('CriteriaConditionInput')
export class CriteriaConditionType {
  @Field(() => String)
  field!: string;

  @Field(() => CriteriaOperator)
  operator!: CriteriaOperator;

  @Field(() => GraphQLJSON, { description: 'A scalar of the field type, or a list of them for "in"' })
  value!: unknown;
}

/** The same class serves as the input type. */
export const CriteriaConditionInput = CriteriaConditionType;
export type CriteriaConditionInput = CriteriaConditionType;

@ObjectType({
  description: 'Shares records of one type with a target, by owner (source) or by field criteria',
})
export class SharingRule {
  @Field(() => ID)
  id!: string;

  @Field(() => RecordType)
  objectType!: RecordType;

  @Field(() => String)
  name!: string;

  @Field(() => RuleType)
  ruleType!: RuleType;

  @Field(() => SharingReference, { nullable: true, description: 'OWNER rules: whose records are shared' })
  source!: SharingReference | null;

  @Field(() => [CriteriaConditionType], {
    nullable: true,
    description: 'CRITERIA rules: all conditions must hold',
  })
  criteria!: CriteriaConditionType[] | null;

  @Field(() => SharingReference)
  target!: SharingReference;

  @Field(() => AccessLevel)
  accessLevel!: AccessLevel;
}

@ObjectType()
export class OrgWideDefault {
  @Field(() => RecordType)
  objectType!: RecordType;

  @Field(() => OrgWideAccess)
  accessLevel!: OrgWideAccess;
}

/** What a manual share names, shared by the share itself and the input that makes or removes one. */
@ObjectType('RecordShareFields')
@InputType('RecordShareFieldsInput')
abstract class RecordShareFields {
  @Field(() => RecordType)
  objectType!: RecordType;

  @Field(() => ID)
  recordId!: string;

  @Field(() => GranteeType)
  granteeType!: GranteeType;

  @Field(() => ID)
  granteeId!: string;
}

@ObjectType()
export class RecordShare extends RecordShareFields {
  @Field(() => ID)
  id!: string;

  @Field(() => AccessLevel)
  accessLevel!: AccessLevel;
}

@InputType()
export class SharingSourceInput {
  @Field(() => SourceType)
  type!: SourceType;

  @Field(() => ID)
  id!: string;
}

@InputType()
export class SharingTargetInput {
  @Field(() => TargetType)
  type!: TargetType;

  @Field(() => ID)
  id!: string;
}

@InputType()
export class SharingRuleInput {
  @Field(() => RecordType)
  objectType!: RecordType;

  @Field(() => String)
  @IsString()
  @Length(1, 200)
  name!: string;

  @Field(() => RuleType)
  ruleType!: RuleType;

  @Field(() => SharingSourceInput, { nullable: true, description: 'Required for OWNER rules' })
  source?: SharingSourceInput | null;

  @Field(() => [CriteriaConditionInput], { nullable: true, description: 'Required for CRITERIA rules' })
  criteria?: CriteriaConditionInput[] | null;

  @Field(() => SharingTargetInput)
  target!: SharingTargetInput;

  @Field(() => AccessLevel, { defaultValue: AccessLevel.READ })
  accessLevel!: AccessLevel;
}

@InputType()
export class RecordShareInput extends RecordShareFields {
  @Field(() => AccessLevel, { defaultValue: AccessLevel.READ })
  accessLevel!: AccessLevel;
}
