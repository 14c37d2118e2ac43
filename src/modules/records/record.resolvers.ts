import type { GraphQLResolveInfo } from 'graphql';
import {
  Arg,
  Args,
  Ctx,
  FieldResolver,
  ID,
  Info,
  Mutation,
  Query,
  Resolver,
  Root,
  type ClassType,
} from 'type-graphql';
import { User } from '../identity';
import { CurrentPrincipal, type Principal, type RequestContext } from '../kernel';
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
import type { RecordServices } from './record-services';
import { recordSelection } from './record-selection';
import type { OwnedEntity, RecordService } from './record-type.service';

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

interface RecordResolverOptions<E extends OwnedEntity> {
  /** GraphQL object type and its page type. */
  type: ClassType;
  page: ClassType;
  createInput: ClassType;
  updateInput: ClassType;
  /** `Lead`: names the operations (`lead`, `leads`, `createLead`, `updateLead`, `deleteLead`). */
  label: string;
  plural: string;
  service: (records: RecordServices) => RecordService<E>;
}

/**
 * The read, list, create, update and delete operations and the `owner` field every record type has, in one shape
 * (type-graphql resolver inheritance); each record type's resolver extends it with what is its own.
 */
function createRecordResolver<E extends OwnedEntity>(options: RecordResolverOptions<E>) {
  const single = options.label.charAt(0).toLowerCase() + options.label.slice(1);

  // Only the subclasses are given to buildSchema; they inherit these operations.
  @Resolver(() => options.type)
  abstract class RecordResolver {
    constructor(protected readonly records: RecordServices) {}

    @Query(() => options.type, {
      name: single,
      nullable: true,
      description: `Null when the ${single} does not exist or is not visible to you`,
    })
    get(
      @CurrentPrincipal() principal: Principal,
      @Arg('id', () => ID) id: string,
      @Info() info: GraphQLResolveInfo,
    ): Promise<E | null> {
      return options.service(this.records).get(principal, id, recordSelection(info));
    }

    @Query(() => options.page, { name: options.plural, complexity: listComplexity })
    list(
      @CurrentPrincipal() principal: Principal,
      @Args(() => ListArgs) args: ListArgs,
      @Info() info: GraphQLResolveInfo,
    ): Promise<PageShape<E>> {
      // COUNT(*) over every visible record often costs more than the page: run it only when `total` is asked for.
      return options
        .service(this.records)
        .list(
          principal,
          { ...args, withTotal: recordSelection(info).fields.has('total') },
          recordSelection(info, ['items']),
        );
    }

    @Mutation(() => options.type, { name: `create${options.label}` })
    create(
      @CurrentPrincipal() principal: Principal,
      @Arg('input', () => options.createInput) input: object,
    ): Promise<E> {
      return options.service(this.records).create(principal, sentFields(input));
    }

    @Mutation(() => options.type, { name: `update${options.label}` })
    update(
      @CurrentPrincipal() principal: Principal,
      @Arg('id', () => ID) id: string,
      @Arg('input', () => options.updateInput) input: object,
    ): Promise<E> {
      return options.service(this.records).update(principal, id, sentFields(input));
    }

    @Mutation(() => Boolean, { name: `delete${options.label}` })
    remove(@CurrentPrincipal() principal: Principal, @Arg('id', () => ID) id: string): Promise<boolean> {
      return options.service(this.records).delete(principal, id);
    }

    @FieldResolver(() => User, { complexity: NESTED_RECORD_COMPLEXITY })
    owner(
      @Root() record: { ownerId: string; owner?: User },
      @Ctx() context: RequestContext,
    ): User | Promise<User> {
      // Embedded when the record was read with its owner in the same statement.
      return record.owner ?? loadOwner(record, context);
    }
  }
  return RecordResolver;
}

@Resolver(() => Lead)
export class LeadResolver extends createRecordResolver<LeadEntity>({
  type: Lead,
  page: LeadPage,
  createInput: CreateLeadInput,
  updateInput: UpdateLeadInput,
  label: 'Lead',
  plural: 'leads',
  service: (records) => records.leads,
}) {}

@Resolver(() => Deal)
export class DealResolver extends createRecordResolver<DealEntity>({
  type: Deal,
  page: DealPage,
  createInput: CreateDealInput,
  updateInput: UpdateDealInput,
  label: 'Deal',
  plural: 'deals',
  service: (records) => records.deals,
}) {
  @FieldResolver(() => Account, { nullable: true, complexity: NESTED_RECORD_COMPLEXITY })
  account(
    @Root() deal: { accountId: string | null; account?: AccountEntity | null },
    @Ctx() context: RequestContext,
  ): Promise<AccountEntity | null> | AccountEntity | null {
    // Embedded (null when hidden) when the deal was read with its account in the same statement.
    if (deal.account !== undefined) return deal.account;
    return deal.accountId ? context.loaders.account.load(deal.accountId) : null;
  }
}

@Resolver(() => Account)
export class AccountResolver extends createRecordResolver<AccountEntity>({
  type: Account,
  page: AccountPage,
  createInput: CreateAccountInput,
  updateInput: UpdateAccountInput,
  label: 'Account',
  plural: 'accounts',
  service: (records) => records.accounts,
}) {}
