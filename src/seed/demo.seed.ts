import type { DataSource } from 'typeorm';
import type { Logger } from '../platform/logging/logger';
import { seedDatabase } from './seed.generator';

export const DEMO_SIZES = { companies: 2, users: 12, accounts: 60, leads: 400, deals: 200 } as const;

/** First run of the embedded gateway: a small demo tenant so there is something to query. */
export async function seedDemoIfEmpty(dataSource: DataSource, logger: Logger): Promise<boolean> {
  const [{ count }] = await dataSource.query<[{ count: number }]>(
    'SELECT count(*)::int AS count FROM companies',
  );
  if (count > 0) return false;
  const summary = await seedDatabase(dataSource, DEMO_SIZES);
  logger.info(
    { counts: summary.counts, admin: summary.companies[0]?.adminEmail },
    'seeded the demo data set',
  );
  return true;
}
