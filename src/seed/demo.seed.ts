import type { DataSource } from 'typeorm';
import type { Logger } from '../platform/logging/logger';
import type { VectorService } from '../modules/vectors';
import type { SeededCompany } from './seed.companies';
import { seedDatabase } from './seed.generator';

export const DEMO_SIZES = { companies: 2, users: 12, accounts: 60, leads: 400, deals: 200 } as const;

/**
 * Seeded rows are written by SQL, not through the services, so nothing queues their embeddings: embed them here, or
 * `similar(text:)` finds no record until someone runs `vectors:reindex -- --embed-records`.
 */
export async function embedSeededRecords(
  vectors: VectorService,
  companies: readonly SeededCompany[],
  progress?: (recordsDone: number) => void,
): Promise<number> {
  let written = 0;
  let finished = 0;
  for (const company of companies) {
    const current = new Map<string, number>();
    written += await vectors.embedAllRecords(company.id, (type, done) => {
      current.set(type, done);
      progress?.(finished + [...current.values()].reduce((sum, n) => sum + n, 0));
    });
    finished += [...current.values()].reduce((sum, n) => sum + n, 0);
  }
  return written;
}

/** First run of the embedded gateway: a small demo tenant so there is something to query (and find by text). */
export async function seedDemoIfEmpty(
  dataSource: DataSource,
  vectors: VectorService,
  logger: Logger,
): Promise<boolean> {
  const [{ count }] = await dataSource.query<[{ count: number }]>(
    'SELECT count(*)::int AS count FROM companies',
  );
  if (count > 0) return false;
  const summary = await seedDatabase(dataSource, DEMO_SIZES);
  const vectorsWritten = await embedSeededRecords(vectors, summary.companies);
  logger.info(
    { counts: summary.counts, vectors: vectorsWritten, admin: summary.companies[0]?.adminEmail },
    'seeded the demo data set',
  );
  return true;
}
