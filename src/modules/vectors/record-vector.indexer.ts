import type { DataSource } from 'typeorm';
import type { QueueDriver } from '../../platform/queue/queue.driver';
import { RECORD_TABLE, RecordType } from '../kernel';
import { VectorJob, VectorQueue, type EmbedRecordJob } from './vector.jobs';
import type { Embedder } from './vector.math';
import { recordDocId, type VectorDocument } from './vector.model';
import type { VectorSettings } from './vector.options';
import type { VectorWriter } from './vector.writer';

export interface RecordVectorIndexerDeps {
  dataSource: DataSource;
  embedder: Embedder;
  writer: VectorWriter;
  queue: QueueDriver;
  settings: VectorSettings;
}

/** Leads, deals and accounts as vectors: each record's text embedded, a few of its fields as metadata. */
export class RecordVectorIndexer {
  constructor(private readonly deps: RecordVectorIndexerDeps) {}

  /** Embeds a record's current fields (or removes its vector when it is gone); run by the `vectors` queue. */
  async embedRecord(job: EmbedRecordJob): Promise<'indexed' | 'deleted'> {
    const docId = recordDocId(job.type, job.id);
    const [row] = await this.deps.dataSource.query<Array<Record<string, unknown>>>(
      `SELECT * FROM ${RECORD_TABLE[job.type]} WHERE company_id = $1 AND id = $2`,
      [job.companyId, job.id],
    );
    const embedding =
      row && this.deps.embedder.embed(recordText(job.type, row), this.deps.settings.dimension);
    if (!row || !embedding) {
      await this.deps.writer.write(job.companyId, [], [docId]);
      return 'deleted';
    }
    await this.deps.writer.write(
      job.companyId,
      [
        {
          companyId: job.companyId,
          docId,
          entityType: job.type,
          recordId: job.id,
          embedding,
          metadata: recordMetadata(job.type, row),
        },
      ],
      [],
    );
    return 'indexed';
  }

  /**
   * Embeds every lead, deal and account of a company that exists now (records written before vectors were enabled,
   * or after the embedder changed), 500 per write. Returns how many vectors were written.
   */
  async embedAllRecords(
    companyId: string,
    progress?: (type: RecordType, done: number) => void,
  ): Promise<number> {
    let written = 0;
    for (const type of Object.values(RecordType) as RecordType[]) {
      let after = '00000000-0000-0000-0000-000000000000';
      let done = 0;
      for (;;) {
        const rows = await this.deps.dataSource.query<Array<Record<string, unknown> & { id: string }>>(
          `SELECT * FROM ${RECORD_TABLE[type]} WHERE company_id = $1 AND id > $2 ORDER BY id LIMIT 500`,
          [companyId, after],
        );
        if (rows.length === 0) break;
        const docs = rows.flatMap((row): VectorDocument[] => {
          const embedding = this.deps.embedder.embed(recordText(type, row), this.deps.settings.dimension);
          return embedding
            ? [
                {
                  companyId,
                  docId: recordDocId(type, row.id),
                  entityType: type,
                  recordId: row.id,
                  embedding,
                  metadata: recordMetadata(type, row),
                },
              ]
            : [];
        });
        await this.deps.writer.write(companyId, docs, []);
        written += docs.length;
        done += rows.length;
        progress?.(type, done);
        after = rows[rows.length - 1]!.id;
      }
    }
    return written;
  }

  /** Queues embedding of a record after it changed (the job reads the record as it is when it runs). */
  async recordChanged(companyId: string, type: RecordType, id: string): Promise<void> {
    await this.deps.queue.add<EmbedRecordJob>(
      VectorQueue.vectors,
      VectorJob.embedRecord,
      { companyId, type, id },
      {
        attempts: 3,
        backoffMs: 1000,
      },
    );
  }
}

const RECORD_TEXT: Record<RecordType, readonly string[]> = {
  LEAD: ['first_name', 'last_name', 'email', 'company_name', 'industry', 'source', 'status', 'description'],
  DEAL: ['name', 'stage'],
  ACCOUNT: ['name', 'industry', 'country'],
};
const RECORD_METADATA: Record<RecordType, Readonly<Record<string, string>>> = {
  LEAD: { status: 'status', source: 'source', industry: 'industry' },
  DEAL: { stage: 'stage' },
  ACCOUNT: { industry: 'industry', country: 'country' },
};

function recordText(type: RecordType, row: Record<string, unknown>): string {
  return RECORD_TEXT[type]
    .map((column) => row[column])
    .filter((value): value is string | number => typeof value === 'string' || typeof value === 'number')
    .join(' ');
}

function recordMetadata(type: RecordType, row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(RECORD_METADATA[type]).flatMap(([key, column]) =>
      row[column] === null || row[column] === undefined ? [] : [[key, row[column]]],
    ),
  );
}
