import { Arg, Args, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { User } from '../identity';
import type { Principal } from '../identity';
import { CurrentPrincipal, type RequestContext } from '../kernel';
import type { AccountEntity } from './account.entity';
import type { DealEntity } from './deal.entity';
import type { LeadEntity } from './lead.entity';
import {
  CreateAccountInput,
  CreateDealInput,
  CreateLeadInput,
  ListArgs,
  UpdateAccountInput,
  UpdateDealInput,
  UpdateLeadInput,
} from './record.inputs';
import { Account, AccountPage, Deal, DealPage, Lead, LeadPage, type PageShape } from './record.types';
import type { RecordServices } from './records.service';

/** A nested record costs a (batched) lookup on top of its own fields. */
const NESTED_RECORD_COMPLEXITY = 2;

/** A list costs one unit plus pageSize times what each item selects. */
const listComplexity = ({
  args,
  childComplexity,
}: {
  args: Record<string, unknown>;
  childComplexity: number;
}) => 1 + (typeof args.pageSize === 'number' ? args.pageSize : 50) * childComplexity;

async function loadOwner(record: { ownerId: string }, context: RequestContext): Promise<User> {
  const owner = await context.loaders.user.load(record.ownerId);
  if (!owner) throw new Error(`owner ${record.ownerId} is missing`);
  return owner;
}

/** Drops undefined keys: GraphQL leaves omitted input fields undefined, and an update must only touch sent fields. */
function sentFields<T extends object>(input: T): Partial<T> {
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined)) as Partial<T>;
}

@Resolver(() => Lead)
export class LeadResolver {
  constructor(private readonly records: RecordServices) {}

  @Query(() => Lead, {
    nullable: true,
    description: 'Null when the lead does not exist or is not visible to you',
  })
  lead(
    @CurrentPrincipal() principal: Principal,
    @Arg('id', () => ID) id: string,
  ): Promise<LeadEntity | null> {
    return this.records.leads.get(principal, id);
  }

  @Query(() => LeadPage, { complexity: listComplexity })
  leads(
    @CurrentPrincipal() principal: Principal,
    @Args(() => ListArgs) args: ListArgs,
  ): Promise<PageShape<LeadEntity>> {
    return this.records.leads.list(principal, args);
  }

  @Mutation(() => Lead)
  createLead(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => CreateLeadInput) input: CreateLeadInput,
  ): Promise<LeadEntity> {
    return this.records.leads.create(principal, sentFields(input));
  }

  @Mutation(() => Lead)
  updateLead(
    @CurrentPrincipal() principal: Principal,
    @Arg('id', () => ID) id: string,
    @Arg('input', () => UpdateLeadInput) input: UpdateLeadInput,
  ): Promise<LeadEntity> {
    return this.records.leads.update(principal, id, sentFields(input));
  }

  @Mutation(() => Boolean)
  deleteLead(@CurrentPrincipal() principal: Principal, @Arg('id', () => ID) id: string): Promise<boolean> {
    return this.records.leads.delete(principal, id);
  }

  @FieldResolver(() => User, { complexity: NESTED_RECORD_COMPLEXITY })
  owner(@Root() lead: Lead, @Ctx() context: RequestContext): Promise<User> {
    return loadOwner(lead, context);
  }
}

@Resolver(() => Deal)
export class DealResolver {
  constructor(private readonly records: RecordServices) {}

  @Query(() => Deal, {
    nullable: true,
    description: 'Null when the deal does not exist or is not visible to you',
  })
  deal(
    @CurrentPrincipal() principal: Principal,
    @Arg('id', () => ID) id: string,
  ): Promise<DealEntity | null> {
    return this.records.deals.get(principal, id);
  }

  @Query(() => DealPage, { complexity: listComplexity })
  deals(
    @CurrentPrincipal() principal: Principal,
    @Args(() => ListArgs) args: ListArgs,
  ): Promise<PageShape<DealEntity>> {
    return this.records.deals.list(principal, args);
  }

  @Mutation(() => Deal)
  createDeal(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => CreateDealInput) input: CreateDealInput,
  ): Promise<DealEntity> {
    return this.records.deals.create(principal, sentFields(input));
  }

  @Mutation(() => Deal)
  updateDeal(
    @CurrentPrincipal() principal: Principal,
    @Arg('id', () => ID) id: string,
    @Arg('input', () => UpdateDealInput) input: UpdateDealInput,
  ): Promise<DealEntity> {
    return this.records.deals.update(principal, id, sentFields(input));
  }

  @Mutation(() => Boolean)
  deleteDeal(@CurrentPrincipal() principal: Principal, @Arg('id', () => ID) id: string): Promise<boolean> {
    return this.records.deals.delete(principal, id);
  }

  @FieldResolver(() => User, { complexity: NESTED_RECORD_COMPLEXITY })
  owner(@Root() deal: Deal, @Ctx() context: RequestContext): Promise<User> {
    return loadOwner(deal, context);
  }

  @FieldResolver(() => Account, { nullable: true, complexity: NESTED_RECORD_COMPLEXITY })
  account(@Root() deal: Deal, @Ctx() context: RequestContext): Promise<AccountEntity | null> | null {
    return deal.accountId ? context.loaders.account.load(deal.accountId) : null;
  }
}

@Resolver(() => Account)
export class AccountResolver {
  constructor(private readonly records: RecordServices) {}

  @Query(() => Account, {
    nullable: true,
    description: 'Null when the account does not exist or is not visible to you',
  })
  account(
    @CurrentPrincipal() principal: Principal,
    @Arg('id', () => ID) id: string,
  ): Promise<AccountEntity | null> {
    return this.records.accounts.get(principal, id);
  }

  @Query(() => AccountPage, { complexity: listComplexity })
  accounts(
    @CurrentPrincipal() principal: Principal,
    @Args(() => ListArgs) args: ListArgs,
  ): Promise<PageShape<AccountEntity>> {
    return this.records.accounts.list(principal, args);
  }

  @Mutation(() => Account)
  createAccount(
    @CurrentPrincipal() principal: Principal,
    @Arg('input', () => CreateAccountInput) input: CreateAccountInput,
  ): Promise<AccountEntity> {
    return this.records.accounts.create(principal, sentFields(input));
  }

  @Mutation(() => Account)
  updateAccount(
    @CurrentPrincipal() principal: Principal,
    @Arg('id', () => ID) id: string,
    @Arg('input', () => UpdateAccountInput) input: UpdateAccountInput,
  ): Promise<AccountEntity> {
    return this.records.accounts.update(principal, id, sentFields(input));
  }

  @Mutation(() => Boolean)
  deleteAccount(@CurrentPrincipal() principal: Principal, @Arg('id', () => ID) id: string): Promise<boolean> {
    return this.records.accounts.delete(principal, id);
  }

  @FieldResolver(() => User, { complexity: NESTED_RECORD_COMPLEXITY })
  owner(@Root() account: Account, @Ctx() context: RequestContext): Promise<User> {
    return loadOwner(account, context);
  }
}
