import { type ClassType, Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { User } from '../identity';
import { DealStage, Industry, LeadSource, LeadStatus } from './record.enums';
import { SortDirection } from './record.service';

registerEnumType(SortDirection, { name: 'SortDirection' });

@ObjectType({ description: 'A business customer' })
export class Account {
  @Field(() => ID)
  id!: string;

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

  @Field(() => User)
  owner!: User;

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => Date)
  updatedAt!: Date;

  ownerId!: string;
  companyId!: string;
}

@ObjectType({ description: 'A prospective customer not yet qualified into a deal' })
export class Lead {
  @Field(() => ID)
  id!: string;

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

  @Field(() => User)
  owner!: User;

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => Date)
  updatedAt!: Date;

  ownerId!: string;
  companyId!: string;
}

@ObjectType({ description: 'A sales opportunity, optionally tied to an account' })
export class Deal {
  @Field(() => ID)
  id!: string;

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

  @Field(() => User)
  owner!: User;

  @Field(() => Account, { nullable: true, description: 'Null when unset or not visible to you' })
  account!: Account | null;

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => Date)
  updatedAt!: Date;

  ownerId!: string;
  accountId!: string | null;
  companyId!: string;
}

export interface PageShape<T> {
  items: T[];
  total: number;
  page: number;
  pageSize: number;
}

function PageOf<T extends object>(itemType: ClassType<T>, name: string) {
  @ObjectType(name)
  class PageType implements PageShape<T> {
    @Field(() => [itemType])
    items!: T[];

    @Field(() => Int, { description: 'Records visible to you in total' })
    total!: number;

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
