import { type ClassType, Field, Float, ID, Int, ObjectType } from 'type-graphql';
import { User } from '../identity';
import { DealStage, Industry, LeadSource, LeadStatus } from '../kernel';

/** What every record type has: identity, owner and timestamps (the tenant stays internal). */
// Not referenced by any field, so type-graphql emits no type for it; subclasses inherit its fields.
@ObjectType()
abstract class OwnedRecord {
  @Field(() => ID)
  id!: string;

  @Field(() => User)
  owner!: User;

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => Date)
  updatedAt!: Date;

  ownerId!: string;
  companyId!: string;
}

@ObjectType({ description: 'A business customer' })
export class Account extends OwnedRecord {
  @Field(() => String)
  name!: string;

  @Field(() => Industry, { nullable: true })
  industry!: Industry | null;

  @Field(() => String, { nullable: true, description: 'ISO 3166-1 alpha-2 code' })
  country!: string | null;

  @Field(() => Float, { nullable: true })
  annualRevenue!: number | null;

  @Field(() => Int, { nullable: true })
  employees!: number | null;
}

@ObjectType({ description: 'A prospective customer not yet qualified into a deal' })
export class Lead extends OwnedRecord {
  @Field(() => String)
  firstName!: string;

  @Field(() => String)
  lastName!: string;

  @Field(() => String, { nullable: true })
  email!: string | null;

  @Field(() => String, { nullable: true })
  companyName!: string | null;

  @Field(() => LeadStatus)
  status!: LeadStatus;

  @Field(() => LeadSource, { nullable: true })
  source!: LeadSource | null;

  @Field(() => Industry, { nullable: true })
  industry!: Industry | null;

  @Field(() => Int, { description: '0-100' })
  score!: number;

  @Field(() => Float, { nullable: true })
  estimatedValue!: number | null;

  @Field(() => String, { nullable: true })
  description!: string | null;
}

@ObjectType({ description: 'A sales opportunity, optionally tied to an account' })
export class Deal extends OwnedRecord {
  @Field(() => String)
  name!: string;

  @Field(() => DealStage)
  stage!: DealStage;

  @Field(() => Float)
  amount!: number;

  @Field(() => Int, { description: '0-100' })
  probability!: number;

  @Field(() => String, { nullable: true, description: 'YYYY-MM-DD' })
  closeDate!: string | null;

  @Field(() => Account, { nullable: true, description: 'Null when unset or not visible to you' })
  account!: Account | null;

  accountId!: string | null;
}

export interface PageShape<T> {
  items: T[];
  /** Counted only when the query selects it. */
  total?: number;
  page: number;
  pageSize: number;
}

function PageOf<T extends object>(itemType: ClassType<T>, name: string) {
  @ObjectType(name)
  class PageType implements PageShape<T> {
    @Field(() => [itemType])
    items!: T[];

    @Field(() => Int, { description: 'Records visible to you in total (counted only when selected)' })
    total?: number;

    @Field(() => Int)
    page!: number;

    @Field(() => Int)
    pageSize!: number;
  }
  return PageType;
}

export const LeadPage = PageOf(Lead, 'LeadPage');
export const DealPage = PageOf(Deal, 'DealPage');
export const AccountPage = PageOf(Account, 'AccountPage');
