import {
  IsEmail,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateBy,
  ValidateIf,
} from 'class-validator';
import { numericColumnMax } from '../../platform/db/column-bounds';
import { AccountEntity } from './account.entity';
import { DealEntity } from './deal.entity';
import { LeadEntity } from './lead.entity';
import { ArgsType, Field, Float, ID, InputType, Int } from 'type-graphql';
import { DealStage, Industry, LeadSource, LeadStatus, SortDirection } from '../kernel';

/** Present in an update: validate it, and reject null for non-nullable columns (IsOptional would let null through). */
const IfPresent = () => ValidateIf((_object, value) => value !== undefined);
const MAX_LEAD_VALUE = numericColumnMax(LeadEntity, 'estimatedValue');
const MAX_DEAL_AMOUNT = numericColumnMax(DealEntity, 'amount');
const MAX_ANNUAL_REVENUE = numericColumnMax(AccountEntity, 'annualRevenue');
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A real day of the Gregorian calendar that a Postgres `date` holds: 2023-02-30 and 0000-01-01 are not. */
function isCalendarDate(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const match = ISO_DATE.exec(value);
  if (!match) return false;
  const [year, month, day] = match.slice(1).map(Number) as [number, number, number];
  if (year < 1) return false;
  const date = new Date(Date.UTC(2000, month - 1, day));
  date.setUTCFullYear(year);
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

const IsCalendarDate = () =>
  ValidateBy({
    name: 'isCalendarDate',
    validator: {
      validate: isCalendarDate,
      defaultMessage: () => '$property must be a calendar date written YYYY-MM-DD (year 0001 or later)',
    },
  });

@ArgsType()
export class ListArgs {
  @Field(() => Int, { defaultValue: 1 })
  @IsInt()
  @Min(1)
  page!: number;

  @Field(() => Int, { defaultValue: 50, description: 'At most 200' })
  @IsInt()
  @Min(1)
  pageSize!: number;

  @Field(() => String, { defaultValue: 'createdAt' })
  @IsString()
  sortBy!: string;

  @Field(() => SortDirection, { defaultValue: SortDirection.DESC })
  sortDirection!: SortDirection;
}

/** Fields that create and update of a lead take alike (optional, nullable). */
@InputType() // never in the schema by itself (unreachable types are not emitted)
abstract class LeadOptionalFields {
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsEmail()
  @MaxLength(254)
  email?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  companyName?: string | null;

  @Field(() => LeadSource, { nullable: true })
  source?: LeadSource | null;

  @Field(() => Industry, { nullable: true })
  industry?: Industry | null;

  @Field(() => Float, { nullable: true })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(MAX_LEAD_VALUE)
  estimatedValue?: number | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(5000)
  description?: string | null;
}

@InputType()
export class CreateLeadInput extends LeadOptionalFields {
  @Field(() => String)
  @IsString()
  @Length(1, 100)
  firstName!: string;

  @Field(() => String)
  @IsString()
  @Length(1, 100)
  lastName!: string;

  @Field(() => LeadStatus, { defaultValue: LeadStatus.NEW })
  status!: LeadStatus;

  @Field(() => Int, { nullable: true, description: '0-100, default 0' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(100)
  score?: number;

  @Field(() => ID, { nullable: true, description: 'Defaults to you' })
  @IsOptional()
  @IsUUID()
  ownerId?: string;
}

@InputType()
export class UpdateLeadInput extends LeadOptionalFields {
  @Field(() => String, { nullable: true })
  @IfPresent()
  @IsString()
  @Length(1, 100)
  firstName?: string;

  @Field(() => String, { nullable: true })
  @IfPresent()
  @IsString()
  @Length(1, 100)
  lastName?: string;

  @Field(() => LeadStatus, { nullable: true })
  @IfPresent()
  @IsString()
  status?: LeadStatus;

  @Field(() => Int, { nullable: true })
  @IfPresent()
  @IsInt()
  @Min(0)
  @Max(100)
  score?: number;

  @Field(() => ID, { nullable: true })
  @IfPresent()
  @IsUUID()
  ownerId?: string;
}

/** Fields that create and update of a account take alike (optional, nullable). */
@InputType() // never in the schema by itself (unreachable types are not emitted)
abstract class AccountOptionalFields {
  @Field(() => Industry, { nullable: true })
  industry?: Industry | null;

  @Field(() => Float, { nullable: true })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(MAX_ANNUAL_REVENUE)
  annualRevenue?: number | null;

  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(10_000_000)
  employees?: number | null;
}

@InputType()
export class CreateAccountInput extends AccountOptionalFields {
  @Field(() => String)
  @IsString()
  @Length(1, 200)
  name!: string;

  @Field(() => String, { nullable: true, description: 'ISO 3166-1 alpha-2, e.g. DE' })
  @IsOptional()
  @Matches(/^[A-Z]{2}$/, { message: 'must be an ISO 3166-1 alpha-2 code such as DE' })
  country?: string | null;

  @Field(() => ID, { nullable: true, description: 'Defaults to you' })
  @IsOptional()
  @IsUUID()
  ownerId?: string;
}

@InputType()
export class UpdateAccountInput extends AccountOptionalFields {
  @Field(() => String, { nullable: true })
  @IfPresent()
  @IsString()
  @Length(1, 200)
  name?: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(/^[A-Z]{2}$/, { message: 'must be an ISO 3166-1 alpha-2 code such as DE' })
  country?: string | null;

  @Field(() => ID, { nullable: true })
  @IfPresent()
  @IsUUID()
  ownerId?: string;
}

/** Fields that create and update of a deal take alike (optional, nullable). */
@InputType() // never in the schema by itself (unreachable types are not emitted)
abstract class DealOptionalFields {
  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID()
  accountId?: string | null;
}

@InputType()
export class CreateDealInput extends DealOptionalFields {
  @Field(() => String)
  @IsString()
  @Length(1, 200)
  name!: string;

  @Field(() => DealStage, { defaultValue: DealStage.PROSPECTING })
  stage!: DealStage;

  @Field(() => Float, { defaultValue: 0 })
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(MAX_DEAL_AMOUNT)
  amount!: number;

  @Field(() => Int, { defaultValue: 0, description: '0-100' })
  @IsInt()
  @Min(0)
  @Max(100)
  probability!: number;

  @Field(() => String, { nullable: true, description: 'YYYY-MM-DD' })
  @IsOptional()
  @IsCalendarDate()
  closeDate?: string | null;

  @Field(() => ID, { nullable: true, description: 'Defaults to you' })
  @IsOptional()
  @IsUUID()
  ownerId?: string;
}

@InputType()
export class UpdateDealInput extends DealOptionalFields {
  @Field(() => String, { nullable: true })
  @IfPresent()
  @IsString()
  @Length(1, 200)
  name?: string;

  @Field(() => DealStage, { nullable: true })
  @IfPresent()
  @IsString()
  stage?: DealStage;

  @Field(() => Float, { nullable: true })
  @IfPresent()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(MAX_DEAL_AMOUNT)
  amount?: number;

  @Field(() => Int, { nullable: true })
  @IfPresent()
  @IsInt()
  @Min(0)
  @Max(100)
  probability?: number;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsCalendarDate()
  closeDate?: string | null;

  @Field(() => ID, { nullable: true })
  @IfPresent()
  @IsUUID()
  ownerId?: string;
}
