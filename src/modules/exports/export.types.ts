import type { Counter, Histogram } from 'prom-client';
import { Field, Float, ID, InputType, Int, ObjectType } from 'type-graphql';
import { graphqlEnum, type EnumValue, RecordFilter, RecordSort, RecordType } from '../kernel';
import { ExportFormat } from './export.pipeline';

export const ExportQueue = { export: 'export' } as const;
export const ExportTopic = { progress: 'EXPORT_PROGRESS' } as const;
/** The event bus channel a cancel is announced on, so whichever process runs the export aborts it. */
export const ExportChannel = { cancel: 'crm:exports:cancel' } as const;
export const ExportErrorCode = { TOO_MANY_EXPORTS: 'TOO_MANY_EXPORTS' } as const;
/** A job is tried this many times (a worker that dies mid-export counts as a try). */
export const EXPORT_MAX_ATTEMPTS = 2;

export const ExportStatus = graphqlEnum('ExportStatus', [
  'QUEUED',
  'RUNNING',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
]);
export type ExportStatus = EnumValue<typeof ExportStatus>;
export const ExportCompression = graphqlEnum('ExportCompression', ['GZIP', 'NONE']);
export type ExportCompression = EnumValue<typeof ExportCompression>;

export interface ExportMetrics {
  operations: Counter<'format' | 'status'>;
  rows: Counter<'format'>;
  bytes: Counter<'format'>;
  duration: Histogram<'format'>;
}

/** An export job as its owner sees it (what `ExportJob` resolves from). */
export interface ExportJobView {
  id: string;
  entityType: RecordType;
  format: ExportFormat;
  compression: ExportCompression;
  fields: string[];
  fileName: string;
  status: ExportStatus;
  progress: number;
  rowsExported: number;
  totalRows: number | null;
  bytesWritten: number;
  sha256: string | null;
  downloadUrl: string | null;
  error: string | null;
  attempts: number;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

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
