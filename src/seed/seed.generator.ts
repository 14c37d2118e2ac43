import { SeededRandom } from './random';
import { generateCompany, writeDirectory, writeRules, type SeededCompany } from './seed.companies';
import { ownerPicker, writeAccounts, writeDeals, writeLeads, type RecordSeed } from './seed.records';
import { allocate } from './seed.shares';
import type { Queryable, SeedProgress } from './seed.writer';

export interface SeedSizes {
  companies: number;
  /** Users across all companies (each company gets at least one, its admin). */
  users: number;
  accounts: number;
  leads: number;
  deals: number;
}

export interface SeedOptions extends SeedSizes {
  /** Sharing rules across all companies. Default 0. */
  rules?: number;
  /**
   * Fixes the first (largest) company's size; the rest is spread over the others. Default: Zipf-like shares. Record
   * counts left out keep the Zipf share.
   */
  largest?: { users: number; rules: number; accounts?: number; leads?: number; deals?: number };
  /** PRNG seed; the same seed and sizes give the same data. Default 42. */
  seed?: number;
  /** Timestamps spread over the 24 months before this instant. Default: start of today (UTC). */
  anchor?: Date;
  /** Rows per INSERT statement. Default 5,000. */
  chunkSize?: number;
  onProgress?: SeedProgress;
}

export interface SeedSummary {
  companies: SeededCompany[];
  counts: SeedSizes & { rules: number };
}

/**
 * Deterministic demo/benchmark data: skewed company sizes, a role tree per company, skewed statuses, stages,
 * industries and owners, log-normal amounts, timestamps over 24 months. Inserts through `unnest` in chunks. The
 * tables are written in a fixed order from one generator (rules from their own): the same seed and sizes give the
 * same rows.
 */
export async function seedDatabase(db: Queryable, options: SeedOptions): Promise<SeedSummary> {
  const seed = options.seed ?? 42;
  const random = new SeededRandom(seed);
  const chunkSize = options.chunkSize ?? 5000;
  const anchorDate = options.anchor ?? new Date(new Date().toISOString().slice(0, 10));
  const anchor = anchorDate.getTime();
  const progress = options.onProgress;

  const companyCount = Math.max(1, options.companies);
  const usersPer = allocate(Math.max(options.users, companyCount), companyCount, 1, options.largest?.users);
  const rulesPer = allocate(options.rules ?? 0, companyCount, 0, options.largest?.rules);
  const accountsPer = allocate(options.accounts, companyCount, 0, options.largest?.accounts);
  const leadsPer = allocate(options.leads, companyCount, 0, options.largest?.leads);
  const dealsPer = allocate(options.deals, companyCount, 0, options.largest?.deals);

  const orgs = Array.from({ length: companyCount }, (_, c) =>
    generateCompany(random, c, usersPer[c]!, anchor),
  );
  await writeDirectory(db, orgs);
  const users = orgs.reduce((sum, org) => sum + org.users.length, 0);
  progress?.('users', users, users);

  const rules = await writeRules(orgs, {
    db,
    chunkSize,
    progress,
    seed,
    perCompany: rulesPer,
    total: options.rules ?? 0,
  });

  const records: RecordSeed = {
    db,
    chunkSize,
    progress,
    random,
    anchor,
    orgs,
    ownerOf: ownerPicker(random, orgs),
  };
  const accounts = await writeAccounts(records, accountsPer, options.accounts);
  const leads = await writeLeads(records, leadsPer, options.leads);
  const deals = await writeDeals(records, dealsPer, options.deals, accounts.idsByCompany);

  return {
    companies: orgs.map((org) => org.company),
    counts: { companies: companyCount, users, accounts: accounts.written, leads, deals, rules },
  };
}
