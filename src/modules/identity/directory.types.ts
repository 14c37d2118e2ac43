import { IsEmail, IsString, Length, MaxLength, ValidateIf } from 'class-validator';
import { Field, ID, InputType, ObjectType, registerEnumType } from 'type-graphql';
import { GroupMemberType } from './group.entity';

registerEnumType(GroupMemberType, {
  name: 'SharingTargetType',
  description: 'Who receives access (also the kinds of group members)',
});

@ObjectType()
export class GroupMember {
  @Field(() => GroupMemberType)
  memberType!: GroupMemberType;

  @Field(() => ID)
  memberId!: string;
}

@ObjectType()
export class Group {
  @Field(() => ID)
  id!: string;

  @Field(() => String)
  name!: string;

  @Field(() => [GroupMember], { description: 'Users, roles, role subtrees and other groups' })
  members?: GroupMember[];
}

@InputType({ description: 'createRole needs a name; updateRole changes only what is sent' })
export class RoleInput {
  @Field(() => String, { nullable: true })
  @ValidateIf((_input, value) => value !== undefined)
  @IsString()
  @Length(1, 100)
  name?: string;

  @Field(() => ID, { nullable: true, description: 'The role directly above; null for a root' })
  parentId?: string | null;
}

@InputType()
export class GroupMemberInput {
  @Field(() => ID)
  groupId!: string;

  @Field(() => GroupMemberType)
  memberType!: GroupMemberType;

  @Field(() => ID)
  memberId!: string;
}

@InputType()
export class UserAccessInput {
  @Field(() => ID, { nullable: true, description: 'Omit to keep; null to remove the role' })
  roleId?: string | null;

  @Field(() => Boolean, { nullable: true })
  isAdmin?: boolean;
}

@InputType()
export class CreateUserInput {
  @Field(() => String)
  @IsEmail()
  @MaxLength(254)
  email!: string;

  @Field(() => String)
  @IsString()
  @Length(1, 200)
  name!: string;

  @Field(() => ID, { nullable: true })
  roleId?: string | null;

  @Field(() => Boolean, { defaultValue: false })
  isAdmin!: boolean;
}
