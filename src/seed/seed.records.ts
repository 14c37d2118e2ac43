import { SeededRandom } from './random';
import type { SeedOrg } from './seed.companies';
import {
  COMPANY_WORDS,
  COUNTRIES,
  COUNTRY_WEIGHTS,
  DAY_MS,
  FIRST_NAMES,
  INDUSTRIES,
  INDUSTRY_WEIGHTS,
  LAST_NAMES,
  SOURCES,
  SOURCE_WEIGHTS,
  STAGES,
  STAGE_PROBABILITY,
  STAGE_WEIGHTS,
  STATUSES,
  STATUS_WEIGHTS,
  timestampWithin,
} from './seed.values';
import { ChunkWriter, type Queryable, type SeedProgress } from './seed.writer';

/**
 * What every record writer draws from. The records share the run's generator and are written one table after the
 * other (accounts, leads, deals), so each table's values depend on those before it: the order is part of the seed.
 */
export interface RecordSeed {
  db: Queryable;
  chunkSize: number;
  progress?: SeedProgress;
  random: SeededRandom;
  /** Timestamps fall in the history before this instant (ms). */
  anchor: number;
  orgs: readonly SeedOrg[];
  /** A record owner of company `c`, skewed towards its first users. */
  ownerOf: (c: number) => string;
}

/** Records are owned Zipf-like: a few users of each company own most of them. */
export function ownerPicker(random: SeededRandom, orgs: readonly SeedOrg[]): (c: number) => string {
  const usersByCompany = orgs.map((org) => org.users.map((user) => user.id));
  const ownerTables = usersByCompany.map((users) => SeededRandom.zipfTable(users.length, 0.7));
  return (c) => usersByCompany[c]![random.zipf(ownerTables[c]!)]!;
}

/** Accounts, `perCompany[c]` of company c; how many were written and, per company, their ids (for deals). */
export async function writeAccounts(
  seed: RecordSeed,
  perCompany: readonly number[],
  total: number,
): Promise<{ written: number; idsByCompany: string[][] }> {
  const { random, anchor, ownerOf } = seed;
  const idsByCompany: string[][] = [];
  const accounts = new ChunkWriter(
    seed.db,
    'accounts',
    {
      id: 'uuid',
      company_id: 'uuid',
      owner_id: 'uuid',
      name: 'text',
      industry: 'text',
      country: 'text',
      annual_revenue: 'numeric',
      employees: 'int4',
      created_at: 'timestamptz',
      updated_at: 'timestamptz',
    },
    seed.chunkSize,
    total,
    seed.progress,
  );
  for (const [c, org] of seed.orgs.entries()) {
    const ids: string[] = [];
    for (let a = 0; a < perCompany[c]!; a++) {
      const id = random.uuid();
      ids.push(id);
      const created = timestampWithin(random, anchor);
      const employees = Math.max(1, Math.round(random.logNormal(120, 1.6)));
      await accounts.push({
        id,
        company_id: org.company.id,
        owner_id: ownerOf(c),
        name: `${random.pick(COMPANY_WORDS)} ${random.pick(LAST_NAMES)} ${a}`,
        industry: random.weighted(INDUSTRIES, INDUSTRY_WEIGHTS),
        country: random.weighted(COUNTRIES, COUNTRY_WEIGHTS),
        annual_revenue: Math.round(employees * random.logNormal(150_000, 0.5)),
        employees,
        created_at: created,
        updated_at: created,
      });
    }
    idsByCompany.push(ids);
  }
  await accounts.flush();
  return { written: accounts.written, idsByCompany };
}

/** Leads, `perCompany[c]` of company c; how many were written. */
export async function writeLeads(
  seed: RecordSeed,
  perCompany: readonly number[],
  total: number,
): Promise<number> {
  const { random, anchor, ownerOf } = seed;
  const leads = new ChunkWriter(
    seed.db,
    'leads',
    {
      id: 'uuid',
      company_id: 'uuid',
      owner_id: 'uuid',
      first_name: 'text',
      last_name: 'text',
      email: 'text',
      company_name: 'text',
      status: 'text',
      source: 'text',
      industry: 'text',
      score: 'int4',
      estimated_value: 'numeric',
      description: 'text',
      created_at: 'timestamptz',
      updated_at: 'timestamptz',
    },
    seed.chunkSize,
    total,
    seed.progress,
  );
  for (const [c, org] of seed.orgs.entries()) {
    for (let l = 0; l < perCompany[c]!; l++) {
      const first = random.pick(FIRST_NAMES);
      const last = random.pick(LAST_NAMES);
      const status = random.weighted(STATUSES, STATUS_WEIGHTS);
      const created = timestampWithin(random, anchor);
      await leads.push({
        id: random.uuid(),
        company_id: org.company.id,
        owner_id: ownerOf(c),
        first_name: first,
        last_name: last,
        email: `${first}.${last}.${l}@prospect${c}.example.net`.toLowerCase(),
        company_name: `${random.pick(COMPANY_WORDS)} ${random.pick(['GmbH', 'Inc', 'Ltd', 'BV', 'SA'])}`,
        status,
        source: random.weighted(SOURCES, SOURCE_WEIGHTS),
        industry: random.weighted(INDUSTRIES, INDUSTRY_WEIGHTS),
        score: Math.min(100, Math.max(0, Math.round(random.logNormal(35, 0.6)))),
        estimated_value: Math.round(random.logNormal(12_000, 1.1) * 100) / 100,
        description:
          random.next() < 0.3
            ? `Met at ${random.pick(['a trade fair', 'a webinar', 'a partner dinner'])}`
            : null,
        created_at: created,
        updated_at: new Date(Math.min(anchor, created.getTime() + random.int(0, 60) * DAY_MS)),
      });
    }
  }
  await leads.flush();
  return leads.written;
}

/** Deals, `perCompany[c]` of company c, most on one of its accounts; how many were written. */
export async function writeDeals(
  seed: RecordSeed,
  perCompany: readonly number[],
  total: number,
  accountsByCompany: readonly string[][],
): Promise<number> {
  const { random, anchor, ownerOf } = seed;
  const deals = new ChunkWriter(
    seed.db,
    'deals',
    {
      id: 'uuid',
      company_id: 'uuid',
      owner_id: 'uuid',
      account_id: 'uuid',
      name: 'text',
      stage: 'text',
      amount: 'numeric',
      probability: 'int4',
      close_date: 'date',
      created_at: 'timestamptz',
      updated_at: 'timestamptz',
    },
    seed.chunkSize,
    total,
    seed.progress,
  );
  for (const [c, org] of seed.orgs.entries()) {
    const companyAccounts = accountsByCompany[c]!;
    for (let d = 0; d < perCompany[c]!; d++) {
      const stage = random.weighted(STAGES, STAGE_WEIGHTS);
      const created = timestampWithin(random, anchor);
      const close = new Date(created.getTime() + random.int(14, 180) * DAY_MS);
      await deals.push({
        id: random.uuid(),
        company_id: org.company.id,
        owner_id: ownerOf(c),
        account_id: companyAccounts.length > 0 && random.next() < 0.85 ? random.pick(companyAccounts) : null,
        name: `${random.pick(['Renewal', 'Expansion', 'New business', 'Pilot', 'Upsell'])} ${d}`,
        stage,
        amount: Math.round(random.logNormal(25_000, 1.2) * 100) / 100,
        probability: STAGE_PROBABILITY[stage],
        close_date: close.toISOString().slice(0, 10),
        created_at: created,
        updated_at: created,
      });
    }
  }
  await deals.flush();
  return deals.written;
}
