import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, Float, InputType, Int, ObjectType } from 'type-graphql';
import { RecordFilter, RecordType } from '../kernel';
import { AggregateType, ReportSource } from './report.model';

@InputType()
export class ReportAggregateInput {
  @Field(() => String, { description: 'Unique in the report: a letter, then letters, digits or _' })
  name!: string;

  @Field(() => AggregateType)
  type!: AggregateType;

  @Field(() => String, {
    nullable: true,
    description: 'A numeric field for SUM, AVG, MIN, MAX; none for COUNT',
  })
  field?: string | null;

  @Field(() => [String], {
    nullable: true,
    description:
      'Up to 5: fields (stage, ownerId, ...) or date buckets (createdAt:day|week|month|quarter|year)',
  })
  dimensions?: string[] | null;
}

@InputType()
export class ReportDateRangeInput {
  @Field(() => String, { description: 'A date field, e.g. createdAt or closeDate' })
  field!: string;

  @Field(() => Date, { nullable: true, description: 'Inclusive' })
  from?: Date | null;

  @Field(() => Date, { nullable: true, description: 'Exclusive' })
  to?: Date | null;
}

@InputType()
export class ReportInput {
  @Field(() => RecordType)
  entityType!: RecordType;

  @Field(() => [ReportAggregateInput], { description: '1 to 20' })
  aggregates!: ReportAggregateInput[];

  @Field(() => [RecordFilter], {
    nullable: true,
    description: 'The record filter language (as exports and search)',
  })
  filters?: RecordFilter[] | null;

  @Field(() => ReportDateRangeInput, { nullable: true })
  dateRange?: ReportDateRangeInput | null;

  @Field(() => String, { nullable: true, description: 'IANA zone date buckets are cut in (default UTC)' })
  timeZone?: string | null;

  @Field(() => ReportSource, {
    nullable: true,
    description:
      'Where the figures must come from: MATERIALIZED fails when no rollup holds the report, LIVE skips the rollups. By default, the rollups when they hold the report and the planner prices them lower. Both give the same figures.',
  })
  source?: ReportSource | null;
}

@ObjectType()
export class ReportRow {
  @Field(() => GraphQLJSONObject, {
    description: 'Dimension values by dimension, e.g. { "stage": "PROPOSAL" }',
  })
  dimensions!: Record<string, unknown>;

  @Field(() => Float, { nullable: true, description: 'Null when no record has a value (SUM, AVG, MIN, MAX)' })
  value!: number | null;
}

@ObjectType()
export class ReportAggregate {
  @Field(() => String)
  name!: string;

  @Field(() => AggregateType)
  type!: AggregateType;

  @Field(() => String, { nullable: true })
  field!: string | null;

  @Field(() => [String])
  dimensions!: string[];

  @Field(() => ReportSource)
  source!: ReportSource;

  @Field(() => String, { nullable: true, description: 'The rollup that answered (MATERIALIZED)' })
  rollup!: string | null;

  @Field(() => [ReportRow], { description: 'Sorted by the dimensions in order, missing values last' })
  rows!: ReportRow[];
}

@ObjectType()
export class Report {
  @Field(() => RecordType)
  entityType!: string;

  @Field(() => ReportSource)
  source!: ReportSource;

  @Field(() => Date, { description: 'When these figures were computed' })
  computedAt!: Date;

  @Field(() => Float)
  tookMs!: number;

  @Field(() => [ReportAggregate])
  aggregates!: ReportAggregate[];
}

@ObjectType({ description: "A report rollup of the caller's company, as its last rebuild left it" })
export class ReportRollup {
  @Field(() => String)
  name!: string;

  @Field(() => RecordType)
  entityType!: string;

  @Field(() => [String], { description: 'What it groups by (dates by month)' })
  dimensions!: string[];

  @Field(() => Float)
  rollupRows!: number;

  @Field(() => Float)
  recordRows!: number;

  @Field(() => Date)
  builtAt!: Date;

  @Field(() => Int)
  buildMs!: number;

  @Field(() => Boolean, {
    description:
      'Small enough against its records to be read (REPORT_ROLLUP_MAX_RATIO); otherwise reports run live',
  })
  usable!: boolean;
}
