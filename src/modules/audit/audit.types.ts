import { GraphQLJSON } from 'graphql-scalars';
import { Field, Float, ID, InputType, Int, ObjectType } from 'type-graphql';

@InputType({
  description: 'Newest first. Without from/to: the current month (UTC); at most 13 months without objectId',
})
export class AuditLogInput {
  @Field(() => Date, { nullable: true, description: 'Inclusive' })
  from?: Date | null;

  @Field(() => Date, { nullable: true, description: 'Exclusive' })
  to?: Date | null;

  @Field(() => String, {
    nullable: true,
    description: 'LEAD, DEAL, ACCOUNT, USER, ROLE, GROUP, SHARING_RULE, ...',
  })
  objectType?: string | null;

  @Field(() => ID, { nullable: true })
  objectId?: string | null;

  @Field(() => ID, { nullable: true })
  actorId?: string | null;

  @Field(() => String, { nullable: true, description: 'CREATE, UPDATE, DELETE or a module verb' })
  action?: string | null;

  @Field(() => Int, { nullable: true, description: 'Page size (default 50)' })
  first?: number | null;

  @Field(() => String, { nullable: true, description: 'endCursor of the previous page' })
  after?: string | null;
}

@ObjectType()
export class AuditLogEntry {
  @Field(() => ID)
  id!: string;

  @Field(() => Date)
  occurredAt!: Date;

  @Field(() => ID, { nullable: true })
  actorId!: string | null;

  @Field(() => String)
  action!: string;

  @Field(() => String)
  objectType!: string;

  @Field(() => ID, { nullable: true })
  objectId!: string | null;

  @Field(() => GraphQLJSON, {
    nullable: true,
    description: 'For updates { field: { from, to } }; else the record',
  })
  changes!: unknown;
}

@ObjectType()
export class AuditLogPage {
  @Field(() => [AuditLogEntry])
  entries!: AuditLogEntry[];

  @Field(() => String, { nullable: true })
  endCursor!: string | null;

  @Field(() => Boolean)
  hasNextPage!: boolean;

  @Field(() => Date, { description: 'The range searched: from (inclusive)' })
  from!: Date;

  @Field(() => Date, { description: 'The range searched: to (exclusive)' })
  to!: Date;
}

@ObjectType({ description: 'A monthly partition of the audit log (or the default partition)' })
export class AuditPartition {
  @Field(() => String)
  name!: string;

  @Field(() => String, { nullable: true, description: 'YYYY-MM; null for the default partition' })
  month!: string | null;

  @Field(() => Boolean, { description: 'False while an interrupted archive run holds it detached' })
  attached!: boolean;

  @Field(() => Float, {
    description:
      "The planner's row estimate (refreshed by ANALYZE and autovacuum), so listing never scans a month; exact for the default partition",
  })
  estimatedRows!: number;

  @Field(() => Float, {
    deprecationReason: 'An estimate under a name that did not say so: use estimatedRows',
  })
  rows!: number;

  @Field(() => Float)
  bytes!: number;
}

@ObjectType({ description: 'A month archived to a verified gzip CSV and dropped from Postgres' })
export class AuditArchive {
  @Field(() => String, { description: 'YYYY-MM' })
  month!: string;

  @Field(() => String)
  partitionName!: string;

  @Field(() => Float)
  rowCount!: number;

  @Field(() => Float)
  bytes!: number;

  @Field(() => String)
  sha256!: string;

  @Field(() => String, { description: 'File name under AUDIT_ARCHIVE_DIR' })
  location!: string;

  @Field(() => String, { description: 'ARCHIVED, or RESTORED once loaded back' })
  status!: string;

  @Field(() => Date)
  archivedAt!: Date;

  @Field(() => Date, { nullable: true })
  restoredAt!: Date | null;
}

@ObjectType()
export class AuditArchiveFailure {
  @Field(() => String)
  month!: string;

  @Field(() => String)
  partitionName!: string;

  @Field(() => String, { description: 'detach, write, verify or drop' })
  step!: string;

  @Field(() => String)
  error!: string;

  @Field(() => String, { description: 'attached or detached: the rows stay in Postgres either way' })
  rowsKept!: string;
}

@ObjectType()
export class AuditPartitionCreated {
  @Field(() => String)
  name!: string;

  @Field(() => Int, { description: 'Rows moved out of the default partition into it' })
  movedFromDefault!: number;
}

@ObjectType({ description: 'What one maintenance run did' })
export class AuditMaintenanceReport {
  @Field(() => [AuditPartitionCreated])
  created!: AuditPartitionCreated[];

  @Field(() => [String], {
    description: 'Months left alone because their table waits detached for archiving',
  })
  skipped!: string[];

  @Field(() => Float, { description: 'Rows left in the default partition (alerts when above 0)' })
  defaultRows!: number;

  @Field(() => [AuditArchive])
  archived!: AuditArchive[];

  @Field(() => [AuditArchiveFailure])
  failed!: AuditArchiveFailure[];

  @Field(() => [String], { description: 'Restored months past retention, kept' })
  keptRestored!: string[];

  @Field(() => [AuditPartition])
  partitions!: AuditPartition[];

  @Field(() => Int)
  durationMs!: number;
}
