import { Arg, ID, Mutation, Query, Resolver } from 'type-graphql';
import { CurrentPrincipal, RecordType, type Principal } from '../kernel';
import type { CriteriaCondition } from './criteria';
import { OrgWideAccess, type RecordShareEntity, type SharingRuleEntity } from './sharing.entities';
import type { SharingRuleCommand, SharingService } from './sharing.service';
import {
  OrgWideDefault,
  RecordShare,
  RecordShareInput,
  SharingRule,
  SharingRuleInput,
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

  @Query(() => [OrgWideDefault], { description: 'The default access of every record type (admins)' })
  orgWideDefaults(@CurrentPrincipal() principal: Principal) {
    return this.sharing.listOrgWideDefaults(principal);
  }

  @Query(() => [RecordShare], {
    description: "A record's manual shares (its owner, their superiors, admins)",
  })
  recordShares(
    @CurrentPrincipal() principal: Principal,
    @Arg('objectType', () => RecordType) objectType: RecordType,
    @Arg('recordId', () => ID) recordId: string,
  ) {
    return this.sharing.listRecordShares(principal, objectType, recordId);
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
}
