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
  ValidateIf,
} from 'class-validator';
import { ArgsType, Field, Float, ID, InputType, Int } from 'type-graphql';
import { DealStage, Industry, LeadSource, LeadStatus } from './record.enums';
import { SortDirection } from './record.service';

/** Present in an update: validate it, and reject null for non-nullable columns (IsOptional would let null through). */
const IfPresent = () => ValidateIf((_object, value) => value !== undefined);
const MAX_MONEY = 1_000_000_000_000;
const ISO_DATE = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;

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

@InputType()
export class CreateLeadInput {
  @Field(() => String)
  @IsString()
  @Length(1, 100)
  firstName!: string;

  @Field(() => String)
  @IsString()
  @Length(1, 100)
  lastName!: string;

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

  @Field(() => LeadStatus, { defaultValue: LeadStatus.NEW })
  status!: LeadStatus;

  @Field(() => LeadSource, { nullable: true })
  source?: LeadSource | null;

  @Field(() => Industry, { nullable: true })
  industry?: Industry | null;

  @Field(() => Int, { nullable: true, description: '0-100, default 0' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(100)
  score?: number;

  @Field(() => Float, { nullable: true })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(MAX_MONEY)
  estimatedValue?: number | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(5000)
  description?: string | null;

  @Field(() => ID, { nullable: true, description: 'Defaults to you' })
  @IsOptional()
  @IsUUID()
  ownerId?: string;
}

@InputType()
export class UpdateLeadInput {
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

  @Field(() => LeadStatus, { nullable: true })
  @IfPresent()
  @IsString()
  status?: LeadStatus;

  @Field(() => LeadSource, { nullable: true })
  source?: LeadSource | null;

  @Field(() => Industry, { nullable: true })
  industry?: Industry | null;

  @Field(() => Int, { nullable: true })
  @IfPresent()
  @IsInt()
  @Min(0)
  @Max(100)
  score?: number;

  @Field(() => Float, { nullable: true })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(MAX_MONEY)
  estimatedValue?: number | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(5000)
  description?: string | null;

  @Field(() => ID, { nullable: true })
  @IfPresent()
  @IsUUID()
  ownerId?: string;
}

@InputType()
export class CreateAccountInput {
  @Field(() => String)
  @IsString()
  @Length(1, 200)
  name!: string;

  @Field(() => Industry, { nullable: true })
  industry?: Industry | null;

  @Field(() => String, { nullable: true, description: 'ISO 3166-1 alpha-2, e.g. DE' })
  @IsOptional()
  @Matches(/^[A-Z]{2}$/, { message: 'must be an ISO 3166-1 alpha-2 code such as DE' })
  country?: string | null;

  @Field(() => Float, { nullable: true })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(MAX_MONEY)
  annualRevenue?: number | null;

  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(10_000_000)
  employees?: number | null;

  @Field(() => ID, { nullable: true, description: 'Defaults to you' })
  @IsOptional()
  @IsUUID()
  ownerId?: string;
}

@InputType()
export class UpdateAccountInput {
  @Field(() => String, { nullable: true })
  @IfPresent()
  @IsString()
  @Length(1, 200)
  name?: string;

  @Field(() => Industry, { nullable: true })
  industry?: Industry | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(/^[A-Z]{2}$/, { message: 'must be an ISO 3166-1 alpha-2 code such as DE' })
  country?: string | null;

  @Field(() => Float, { nullable: true })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(MAX_MONEY)
  annualRevenue?: number | null;

  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(10_000_000)
  employees?: number | null;

  @Field(() => ID, { nullable: true })
  @IfPresent()
  @IsUUID()
  ownerId?: string;
}

@InputType()
export class CreateDealInput {
  @Field(() => String)
  @IsString()
  @Length(1, 200)
  name!: string;

  @Field(() => DealStage, { defaultValue: DealStage.PROSPECTING })
  stage!: DealStage;

  @Field(() => Float, { defaultValue: 0 })
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(MAX_MONEY)
  amount!: number;

  @Field(() => Int, { defaultValue: 0, description: '0-100' })
  @IsInt()
  @Min(0)
  @Max(100)
  probability!: number;

  @Field(() => String, { nullable: true, description: 'YYYY-MM-DD' })
  @IsOptional()
  @Matches(ISO_DATE, { message: 'must be a date written YYYY-MM-DD' })
  closeDate?: string | null;

  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID()
  accountId?: string | null;

  @Field(() => ID, { nullable: true, description: 'Defaults to you' })
  @IsOptional()
  @IsUUID()
  ownerId?: string;
}

@InputType()
export class UpdateDealInput {
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
  @Max(MAX_MONEY)
  amount?: number;

  @Field(() => Int, { nullable: true })
  @IfPresent()
  @IsInt()
  @Min(0)
  @Max(100)
  probability?: number;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(ISO_DATE, { message: 'must be a date written YYYY-MM-DD' })
  closeDate?: string | null;

  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID()
  accountId?: string | null;

  @Field(() => ID, { nullable: true })
  @IfPresent()
  @IsUUID()
  ownerId?: string;
}
