import { Field, Float, ID, InputType, Int, ObjectType } from 'type-graphql';
import { RecordFilter, RecordSort, RecordType } from '../kernel';
import { ExportFormat } from './export.pipeline';
import { ExportCompression, ExportStatus } from './export.service';

@InputType()
export class StartExportInput {
  @Field(() => RecordType)
  entityType!: RecordType;

  @Field(() => ExportFormat)
  format!: ExportFormat;

  @Field(() => [String], {
    description: 'Export fields of the entity, plus ownerName (and accountName for deals)',
  })
  fields!: string[];

  @Field(() => [RecordFilter], { nullable: true })
  filters?: RecordFilter[] | null;

  @Field(() => [RecordSort], { nullable: true })
  sort?: RecordSort[] | null;

  @Field(() => ExportCompression, { nullable: true, defaultValue: 'NONE' })
  compression?: ExportCompression | null;

  @Field(() => String, { nullable: true })
  fileName?: string | null;
}

@ObjectType()
export class ExportJob {
  @Field(() => ID)
  id!: string;

  @Field(() => RecordType)
  entityType!: RecordType;

  @Field(() => ExportFormat)
  format!: ExportFormat;

  @Field(() => ExportCompression)
  compression!: ExportCompression;

  @Field(() => [String])
  fields!: string[];

  @Field(() => String)
  fileName!: string;

  @Field(() => ExportStatus)
  status!: ExportStatus;

  @Field(() => Float, { description: '0..1' })
  progress!: number;

  @Field(() => Float)
  rowsExported!: number;

  @Field(() => Float, { nullable: true, description: 'Known once the worker counted them' })
  totalRows!: number | null;

  @Field(() => Float)
  bytesWritten!: number;

  @Field(() => String, { nullable: true })
  sha256!: string | null;

  @Field(() => String, { nullable: true, description: 'GET it with your bearer token once COMPLETED' })
  downloadUrl!: string | null;

  @Field(() => String, { nullable: true })
  error!: string | null;

  @Field(() => Int)
  attempts!: number;

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => Date, { nullable: true })
  startedAt!: Date | null;

  @Field(() => Date, { nullable: true })
  finishedAt!: Date | null;
}
