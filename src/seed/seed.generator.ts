import { DealStage, Industry, LeadSource, LeadStatus } from '../modules/kernel';
import { buildGroups, buildRoleTree, buildRule, pickRole, roleDepthFor, type SeedRole } from './org-shape';
import { SeededRandom } from './random';

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
  onProgress?: (table: string, done: number, total: number) => void;
}

export interface SeededCompany {
  id: string;
  name: string;
  adminEmail: string;
  userCount: number;
}

export interface SeedSummary {
  companies: SeededCompany[];
  counts: SeedSizes & { rules: number };
}

export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

const FIRST_NAMES = [
  'Ada',
  'Grace',
  'Alan',
  'Linus',
  'Margaret',
  'Dennis',
  'Barbara',
  'Ken',
  'Frances',
  'Edsger',
  'Hedy',
  'Tim',
  'Radia',
  'John',
  'Karen',
  'Niklaus',
];
const LAST_NAMES = [
  'Lovelace',
  'Hopper',
  'Turing',
  'Torvalds',
  'Hamilton',
  'Ritchie',
  'Liskov',
  'Thompson',
  'Allen',
  'Dijkstra',
  'Lamarr',
  'Berners-Lee',
  'Perlman',
  'McCarthy',
  'Jones',
  'Wirth',
];
const COMPANY_WORDS = [
  'Acme',
  'Globex',
  'Initech',
  'Umbrella',
  'Hooli',
  'Stark',
  'Wayne',
  'Tyrell',
  'Cyberdyne',
  'Soylent',
  'Vandelay',
  'Wonka',
];
const COUNTRIES = ['US', 'DE', 'GB', 'FR', 'NL', 'SE', 'ES', 'IT', 'CA', 'AU', 'JP', 'BR'];
const COUNTRY_WEIGHTS = [30, 12, 10, 8, 5, 4, 5, 5, 6, 4, 6, 5];

const STATUSES = Object.values(LeadStatus);
const STATUS_WEIGHTS = [35, 25, 15, 15, 10];
const SOURCES = Object.values(LeadSource);
const SOURCE_WEIGHTS = [40, 15, 12, 10, 13, 10];
const INDUSTRIES = Object.values(Industry);
const INDUSTRY_WEIGHTS = [28, 16, 12, 10, 9, 7, 6, 5, 4, 3];
const STAGES = Object.values(DealStage);
const STAGE_WEIGHTS = [30, 20, 15, 10, 15, 10];
const STAGE_PROBABILITY: Record<DealStage, number> = {
  PROSPECTING: 10,
  QUALIFICATION: 25,
  PROPOSAL: 50,
  NEGOTIATION: 75,
  CLOSED_WON: 100,
  CLOSED_LOST: 0,
};

const DAY_MS = 86_400_000;
const HISTORY_DAYS = 730;

/** Keeps every share at or below `cap` (so a fixed "largest" company stays the largest), moving the excess down. */
function capped(counts: number[], cap: number): number[] {
  let excess = 0;
  const result = counts.map((count) => {
    excess += Math.max(0, count - cap);
    return Math.min(count, cap);
  });
  for (let i = result.length - 1; excess > 0 && i >= 0; i = i === 0 ? result.length - 1 : i - 1) {
    if (result.every((count) => count >= cap)) break;
    if (result[i]! < cap) {
      result[i]!++;
      excess--;
    }
  }
  return result;
}

/** Splits `total` over companies by Zipf weights; every company gets at least `minimum`. */
function allocate(total: number, companies: number, minimum: number, first?: number): number[] {
  if (first !== undefined && companies > 1)
    return [first, ...capped(allocate(Math.max(0, total - first), companies - 1, minimum), first)];
  const weights = SeededRandom.zipfTable(companies, 0.9);
  const counts: number[] = [];
  let previous = 0;
  let assigned = 0;
  for (let i = 0; i < companies; i++) {
    const share = weights[i]! - previous;
    previous = weights[i]!;
    const count = Math.max(minimum, Math.floor(share * total));
    counts.push(count);
    assigned += count;
  }
  counts[0]! += Math.max(0, total - assigned);
  return counts;
}

/** Column name -> Postgres type of a table being written, in the order the INSERT lists them. */
type Columns = Readonly<Record<string, string>>;
type ColumnList = ReadonlyArray<readonly [name: string, pgType: string]>;

function isColumnList(columns: Columns | ColumnList): columns is ColumnList {
  return Array.isArray(columns);
}

async function insertRows(
  db: Queryable,
  table: string,
  columns: Columns | ColumnList,
  data: unknown[][],
): Promise<void> {
  if (data[0]?.length === 0) return;
  const entries: ReadonlyArray<readonly [string, string]> = isColumnList(columns)
    ? columns
    : Object.entries(columns);
  const names = entries.map(([name]) => name).join(', ');
  const arrays = entries.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ');
  await db.query(`INSERT INTO ${table} (${names}) SELECT * FROM unnest(${arrays})`, data);
}

/** Rows by column name, written in column-major chunks of `chunkSize` (one INSERT ... unnest each). */
class ChunkWriter<C extends Columns> {
  private buffers: unknown[][];
  private readonly names: Array<keyof C & string>;
  private rows = 0;
  written = 0;

  constructor(
    private readonly db: Queryable,
    private readonly table: string,
    private readonly columns: C,
    private readonly chunkSize: number,
    private readonly total: number,
    private readonly onProgress?: (table: string, done: number, total: number) => void,
  ) {
    this.names = Object.keys(columns);
    this.buffers = this.names.map(() => []);
  }

  /** One row; every column must be named (a missing one is a compile error, not a shifted value). */
  async push(row: { readonly [K in keyof C]: unknown }): Promise<void> {
    this.names.forEach((name, i) => this.buffers[i]!.push(row[name]));
    if (++this.rows >= this.chunkSize) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.rows === 0) return;
    await insertRows(this.db, this.table, this.columns, this.buffers);
    this.written += this.rows;
    this.rows = 0;
    this.buffers = this.names.map(() => []);
    this.onProgress?.(this.table, this.written, this.total);
  }
}

function timestampWithin(random: SeededRandom, anchor: number): Date {
  // sqrt skews towards recent dates: a growing business has more recent records.
  const ageDays = HISTORY_DAYS * (1 - Math.sqrt(random.next()));
  return new Date(anchor - ageDays * DAY_MS - random.int(0, DAY_MS - 1));
}

/**
 * Deterministic demo/benchmark data: skewed company sizes, a role tree per company, skewed statuses, stages,
 * industries and owners, log-normal amounts, timestamps over 24 months. Inserts through `unnest` in chunks.
 */
export async function seedDatabase(db: Queryable, options: SeedOptions): Promise<SeedSummary> {
  const random = new SeededRandom(options.seed ?? 42);
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

  const companies: SeededCompany[] = [];
  const companyRows: unknown[][] = [[], [], []];
  const roleRows: unknown[][] = [[], [], [], []];
  const userRows: unknown[][] = [[], [], [], [], [], [], []];
  const groupRows: unknown[][] = [[], [], []];
  const memberRows: unknown[][] = [[], [], [], []];
  const owdRows: unknown[][] = [[], [], []];
  const usersByCompany: string[][] = [];
  const rolesByCompany: SeedRole[][] = [];
  const groupsByCompany: string[][] = [];

  for (let c = 0; c < companyCount; c++) {
    const companyId = random.uuid();
    const name = `${COMPANY_WORDS[c % COMPANY_WORDS.length]} ${c === 0 ? 'Demo' : `#${c}`}`;
    companyRows[0]!.push(companyId);
    companyRows[1]!.push(name);
    companyRows[2]!.push(new Date(anchor - HISTORY_DAYS * DAY_MS));
    const roles = buildRoleTree(random, roleDepthFor(usersPer[c]!));
    for (const role of roles) {
      roleRows[0]!.push(role.id);
      roleRows[1]!.push(companyId);
      roleRows[2]!.push(role.name);
      roleRows[3]!.push(role.parentId);
    }
    rolesByCompany.push(roles);
    const userIds: string[] = [];
    for (let u = 0; u < usersPer[c]!; u++) {
      const userId = random.uuid();
      userIds.push(userId);
      const role = u === 0 ? roles[0]! : pickRole(random, roles);
      userRows[0]!.push(userId);
      userRows[1]!.push(companyId);
      userRows[2]!.push(`user${u}@company${c}.example.com`);
      userRows[3]!.push(`${random.pick(FIRST_NAMES)} ${random.pick(LAST_NAMES)}`);
      userRows[4]!.push(role.id);
      userRows[5]!.push(u === 0);
      userRows[6]!.push(new Date(anchor - random.int(30, HISTORY_DAYS) * DAY_MS));
    }
    usersByCompany.push(userIds);
    const groups = buildGroups(random, roles, userIds);
    for (const group of groups) {
      groupRows[0]!.push(group.id);
      groupRows[1]!.push(companyId);
      groupRows[2]!.push(group.name);
      for (const member of group.members) {
        memberRows[0]!.push(companyId);
        memberRows[1]!.push(group.id);
        memberRows[2]!.push(member.type);
        memberRows[3]!.push(member.id);
      }
    }
    groupsByCompany.push(groups.map((group) => group.id));
    for (const [objectType, access] of [
      ['LEAD', 'PRIVATE'],
      ['DEAL', 'PRIVATE'],
      ['ACCOUNT', 'PUBLIC_READ'],
    ] as const) {
      owdRows[0]!.push(companyId);
      owdRows[1]!.push(objectType);
      owdRows[2]!.push(access);
    }
    companies.push({
      id: companyId,
      name,
      adminEmail: `user0@company${c}.example.com`,
      userCount: userIds.length,
    });
  }

  await insertRows(
    db,
    'companies',
    [
      ['id', 'uuid'],
      ['name', 'text'],
      ['created_at', 'timestamptz'],
    ],
    companyRows,
  );
  // Parents come before children, and one statement checks the foreign key only at its end anyway.
  await insertRows(
    db,
    'roles',
    [
      ['id', 'uuid'],
      ['company_id', 'uuid'],
      ['name', 'text'],
      ['parent_id', 'uuid'],
    ],
    roleRows,
  );
  await insertRows(
    db,
    'users',
    [
      ['id', 'uuid'],
      ['company_id', 'uuid'],
      ['email', 'text'],
      ['name', 'text'],
      ['role_id', 'uuid'],
      ['is_admin', 'boolean'],
      ['created_at', 'timestamptz'],
    ],
    userRows,
  );
  await insertRows(
    db,
    'groups',
    [
      ['id', 'uuid'],
      ['company_id', 'uuid'],
      ['name', 'text'],
    ],
    groupRows,
  );
  await insertRows(
    db,
    'group_members',
    [
      ['company_id', 'uuid'],
      ['group_id', 'uuid'],
      ['member_type', 'text'],
      ['member_id', 'uuid'],
    ],
    memberRows,
  );
  await insertRows(
    db,
    'org_wide_defaults',
    [
      ['company_id', 'uuid'],
      ['object_type', 'text'],
      ['access_level', 'text'],
    ],
    owdRows,
  );
  progress?.('users', userRows[0]!.length, userRows[0]!.length);

  // Rules draw from their own generator, so the records below do not change with --rules.
  const ruleRandom = new SeededRandom((options.seed ?? 42) + 1);
  const rules = new ChunkWriter(
    db,
    'sharing_rules',
    {
      company_id: 'uuid',
      object_type: 'text',
      name: 'text',
      rule_type: 'text',
      source_type: 'text',
      source_id: 'uuid',
      criteria: 'jsonb',
      target_type: 'text',
      target_id: 'uuid',
      access_level: 'text',
    },
    chunkSize,
    options.rules ?? 0,
    progress,
  );
  for (let c = 0; c < companyCount; c++) {
    for (let r = 0; r < rulesPer[c]!; r++) {
      const rule = buildRule(ruleRandom, rolesByCompany[c]!, usersByCompany[c]!, groupsByCompany[c]!);
      await rules.push({
        company_id: companies[c]!.id,
        object_type: rule.objectType,
        name: `Rule ${r + 1}`,
        rule_type: rule.ruleType,
        source_type: rule.sourceType,
        source_id: rule.sourceId,
        criteria: rule.criteria,
        target_type: rule.targetType,
        target_id: rule.targetId,
        access_level: rule.accessLevel,
      });
    }
  }
  await rules.flush();

  const ownerTables = usersByCompany.map((users) => SeededRandom.zipfTable(users.length, 0.7));
  const ownerOf = (c: number) => usersByCompany[c]![random.zipf(ownerTables[c]!)]!;

  const accountsByCompany: string[][] = [];
  const accounts = new ChunkWriter(
    db,
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
    chunkSize,
    options.accounts,
    progress,
  );
  for (let c = 0; c < companyCount; c++) {
    const ids: string[] = [];
    for (let a = 0; a < accountsPer[c]!; a++) {
      const id = random.uuid();
      ids.push(id);
      const created = timestampWithin(random, anchor);
      const employees = Math.max(1, Math.round(random.logNormal(120, 1.6)));
      await accounts.push({
        id,
        company_id: companies[c]!.id,
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
    accountsByCompany.push(ids);
  }
  await accounts.flush();

  const leads = new ChunkWriter(
    db,
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
    chunkSize,
    options.leads,
    progress,
  );
  for (let c = 0; c < companyCount; c++) {
    for (let l = 0; l < leadsPer[c]!; l++) {
      const first = random.pick(FIRST_NAMES);
      const last = random.pick(LAST_NAMES);
      const status = random.weighted(STATUSES, STATUS_WEIGHTS);
      const created = timestampWithin(random, anchor);
      await leads.push({
        id: random.uuid(),
        company_id: companies[c]!.id,
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

  const deals = new ChunkWriter(
    db,
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
    chunkSize,
    options.deals,
    progress,
  );
  for (let c = 0; c < companyCount; c++) {
    const companyAccounts = accountsByCompany[c]!;
    for (let d = 0; d < dealsPer[c]!; d++) {
      const stage = random.weighted(STAGES, STAGE_WEIGHTS);
      const created = timestampWithin(random, anchor);
      const close = new Date(created.getTime() + random.int(14, 180) * DAY_MS);
      await deals.push({
        id: random.uuid(),
        company_id: companies[c]!.id,
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

  return {
    companies,
    counts: {
      companies: companyCount,
      users: userRows[0]!.length,
      accounts: accounts.written,
      leads: leads.written,
      deals: deals.written,
      rules: rules.written,
    },
  };
}
