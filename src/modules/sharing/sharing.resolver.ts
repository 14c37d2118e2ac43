import { Arg, ID, Mutation, Query, Resolver } from 'type-graphql';
import { Role, User, type Principal } from '../identity';
import { RecordType } from '../kernel';
import { CurrentPrincipal } from '../kernel';
import type { CriteriaCondition } from './criteria';
import { OrgWideAccess, type RecordShareEntity, type SharingRuleEntity } from './sharing.entities';
import type { SharingRuleCommand, SharingService } from './sharing.service';
import {
  Group,
  GroupMemberInput,
  OrgWideDefault,
  RecordShare,
  RecordShareInput,
  RoleInput,
  SharingRule,
  SharingRuleInput,
  UserAccessInput,
} from './sharing.types';

function toRule(entity: SharingRuleEntity): SharingRule {
  return {
    id: entity.id,
    objectType: entity.objectType,
    name: entity.name,
    ruleType: entity.ruleType,
    source: entity.sourceType && entity.sourceId ? { type: entity.sourceType, id: entity.sourceId } : null,
    criteria: (entity.criteria as CriteriaCondition[] | null) ?? null,
    target: { type: entity.targetType, id: entity.targetId },
    accessLevel: entity.accessLevel,
  };
}

function toCommand(input: SharingRuleInput): SharingRuleCommand {
  const criteria = input.criteria?.map(({ field, operator, value }) => ({ field, operator, value })) ?? null;
  return { ...input, criteria };
}

@Resolver()
export class SharingResolver {
  constructor(private readonly sharing: SharingService) {}

  @Query(() => [SharingRule], { description: 'Admins only' })
  async sharingRules(
    @CurrentPrincipal() principal: Principal,
    @Arg('objectType', () => RecordType) objectType: RecordType,
  ): Promise<SharingRule[]> {
    return (await this.sharing.listRules(principal, objectType)).map(toRule);
  }

  @Mutation(() => SharingRule)
  async createSharingRule(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => SharingRuleInput) input: SharingRuleInput,
  ) {
    return toRule(await this.sharing.createRule(principal, toCommand(input)));
  }

  @Mutation(() => SharingRule)
  async updateSharingRule(
    @CurrentPrincipal() principal: Principal,
    @Arg('id', () => ID) id: string,
    @Arg('input', () => SharingRuleInput) input: SharingRuleInput,
  ) {
    return toRule(await this.sharing.updateRule(principal, id, toCommand(input)));
  }

  @Mutation(() => Boolean)
  deleteSharingRule(
    @CurrentPrincipal() principal: Principal,
    @Arg('id', () => ID) id: string,
  ): Promise<boolean> {
    return this.sharing.deleteRule(principal, id);
  }

  @Mutation(() => OrgWideDefault)
  setOrgWideDefault(
    @CurrentPrincipal() principal: Principal,
    @Arg('objectType', () => RecordType) objectType: RecordType,
    @Arg('accessLevel', () => OrgWideAccess) accessLevel: OrgWideAccess,
  ): Promise<OrgWideDefault> {
    return this.sharing.setOrgWideDefault(principal, objectType, accessLevel);
  }

  @Mutation(() => RecordShare, { description: 'Record owners, their superiors and admins' })
  shareRecord(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => RecordShareInput) input: RecordShareInput,
  ): Promise<RecordShareEntity> {
    return this.sharing.shareRecord(principal, input);
  }

  @Mutation(() => Boolean, { description: 'False when there was no such share' })
  unshareRecord(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => RecordShareInput) input: RecordShareInput,
  ): Promise<boolean> {
    return this.sharing.unshareRecord(principal, input);
  }

  @Mutation(() => Role)
  createRole(@CurrentPrincipal() principal: Principal, @Arg('input', () => RoleInput) input: RoleInput) {
    return this.sharing.createRole(principal, input.name, input.parentId);
  }

  @Mutation(() => Role, { description: 'Re-parenting that would create a cycle is rejected' })
  updateRole(
    @CurrentPrincipal() principal: Principal,
    @Arg('id', () => ID) id: string,
    @Arg('input', () => RoleInput) input: RoleInput,
  ) {
    return this.sharing.updateRole(principal, id, input.name, input.parentId);
  }

  @Mutation(() => Group)
  createGroup(@CurrentPrincipal() principal: Principal, @Arg('name', () => String) name: string) {
    return this.sharing.createGroup(principal, name);
  }

  @Mutation(() => Boolean)
  addGroupMember(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => GroupMemberInput) input: GroupMemberInput,
  ) {
    return this.sharing.addGroupMember(principal, input.groupId, input.memberType, input.memberId);
  }

  @Mutation(() => Boolean)
  removeGroupMember(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => GroupMemberInput) input: GroupMemberInput,
  ) {
    return this.sharing.removeGroupMember(principal, input.groupId, input.memberType, input.memberId);
  }

  @Mutation(() => User, { description: "Changes a user's role or admin flag" })
  async updateUserAccess(
    @CurrentPrincipal() principal: Principal,
    @Arg('userId', () => ID) userId: string,
    @Arg('input', () => UserAccessInput) input: UserAccessInput,
  ) {
    return this.sharing.updateUserAccess(principal, userId, input);
  }

  @Mutation(() => User, {
    description:
      'Deactivates a user of your company (admins): their tokens are refused from now on, on every gateway',
  })
  async deactivateUser(@CurrentPrincipal() principal: Principal, @Arg('userId', () => ID) userId: string) {
    return this.sharing.deactivateUser(principal, userId);
  }
}
