import type { DataSource } from 'typeorm';
import { TokenService } from '../identity';
import { millionRecordSizes, type BenchContext, type BenchResult, type BenchScenario } from '../kernel';

const JWT_SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';
const WRITERS = 16;
const PHASE_MS = 12_000;
/** Each state's warm-up (triggers on, then off) before the timed phases. */
const WARMUP_MS = 10_000;
/** Of the writes, this share creates a lead; the rest update one the same writer created in the phase. */
const CREATE_SHARE = 0.4;
const STATUSES = ['NEW', 'CONTACTED', 'QUALIFIED', 'UNQUALIFIED', 'CONVERTED'] as const;

const CREATE = `mutation ($input: CreateLeadInput!) { createLead(input: $input) { id } }`;
const UPDATE = `mutation ($id: ID!, $input: UpdateLeadInput!) { updateLead(id: $id, input: $input) { id } }`;

/**
 * The triggers that derive data from lead writes (search change log and versions, report rollups): what the baseline
 * runs without. Truncate triggers are left alone (nothing here truncates).
 */
async function derivedTriggers(db: DataSource): Promise<string[]> {
  const rows = await db.query<Array<{ name: string }>>(
    `SELECT tgname AS name FROM pg_trigger
      WHERE tgrelid = 'leads'::regclass AND NOT tgisinternal AND tgname NOT LIKE '%truncate%'
        AND (tgname LIKE 'leads_search_%' OR tgname LIKE 'report_rollups_%')
      ORDER BY 1`,
  );
  return rows.map((row) => row.name);
}

async function setTriggers(db: DataSource, triggers: string[], enabled: boolean): Promise<void> {
  // Names come from pg_trigger above, never from input; quoted all the same.
  for (const name of triggers)
    await db.query(`ALTER TABLE leads ${enabled ? 'ENABLE' : 'DISABLE'} TRIGGER "${name.replace(/"/g, '')}"`);
}

interface Phase {
  triggers: boolean;
  writes: number;
  failed: number;
  ms: number;
  /** Mean number of lock requests waiting in the bench database, sampled every 100 ms. */
  lockWaits: number;
  /** What the waiting lock requests were on, summed over the samples. */
  waitsOn: Map<string, number>;
}

/**
 * One timed phase: WRITERS loops, each sending createLead / updateLead to the gateway one after another (as a client
 * would), on the leads it created in this phase. The phase's leads are deleted afterwards, with the triggers in the
 * same state as when they were written, so the derived data stays exact and the data set is left as seeded.
 */
async function runPhase(
  context: BenchContext,
  db: DataSource,
  call: (
    query: string,
    variables: Record<string, unknown>,
  ) => Promise<Record<string, Record<string, unknown>>>,
  owners: string[],
  triggers: boolean,
  ms: number,
): Promise<Phase> {
  const created: string[][] = Array.from({ length: WRITERS }, () => []);
  let writes = 0;
  let failed = 0;
  let firstError: Error | undefined;
  const pick = <T>(values: readonly T[]) => values[Math.floor(Math.random() * values.length)]!;
  const deadline = performance.now() + ms;
  const waitsOn = new Map<string, number>();
  let samples = 0;
  let waiting = 0;
  const sampler = setInterval(() => {
    void db
      .query<Array<{ target: string; n: number }>>(
        `SELECT coalesce(l.relation::regclass::text, l.locktype) AS target, count(*)::int AS n
           FROM pg_locks l WHERE NOT l.granted
            AND (l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) OR l.database IS NULL)
          GROUP BY 1`,
      )
      .then((rows) => {
        samples++;
        for (const row of rows) {
          waiting += row.n;
          waitsOn.set(row.target, (waitsOn.get(row.target) ?? 0) + row.n);
        }
      })
      .catch(() => undefined);
  }, 100);
  const started = performance.now();
  await Promise.all(
    created.map(async (mine) => {
      while (performance.now() < deadline) {
        try {
          if (mine.length < 4 || Math.random() < CREATE_SHARE) {
            const data = await call(CREATE, {
              input: {
                firstName: 'Bench',
                lastName: `Writer ${writes}`,
                email: `bench.writer${writes}@example.com`,
                ownerId: pick(owners),
                status: pick(STATUSES),
                score: Math.floor(Math.random() * 101),
                estimatedValue: Math.round(Math.random() * 100_000),
              },
            });
            mine.push((data.createLead as { id: string }).id);
          } else {
            await call(UPDATE, {
              id: pick(mine),
              input: {
                status: pick(STATUSES),
                score: Math.floor(Math.random() * 101),
                description: `updated ${writes}`,
              },
            });
          }
          writes++;
        } catch (error) {
          failed++;
          firstError ??= error as Error;
        }
      }
    }),
  );
  const elapsed = performance.now() - started;
  clearInterval(sampler);
  if (firstError) context.log(`records.writes: first failure: ${firstError.message.slice(0, 500)}`);
  await db.query('DELETE FROM leads WHERE id = ANY($1::uuid[])', [created.flat()]);
  return { triggers, writes, failed, ms: elapsed, lockWaits: waiting / Math.max(1, samples), waitsOn };
}

/**
 * Tenant write throughput: 16 concurrent writers (create/update mix, GraphQL mutations over HTTP to one gateway
 * process, as the admin) on the largest company, with the search and report rollup triggers on, against the same
 * load with them disabled on the bench database (restored after). Phases alternate (on, off, on, off) so drift in
 * the machine's load falls on both.
 */
export const recordWrites: BenchScenario = {
  name: 'records.writes',
  async run(context: BenchContext): Promise<BenchResult> {
    // Long by choice: one scenario that reads top to bottom as the table it prints (set up, alternate the phases,
    // compare), with the triggers restored in its `finally`.
    const db = await context.openDatabase('crm1m', millionRecordSizes(context.scale));
    const triggers = await derivedTriggers(db);
    // A run that died in a baseline phase left them off: every run starts from the real schema.
    await setTriggers(db, triggers, true);
    const [company] = await db.query<Array<{ id: string; leads: string }>>(
      `SELECT c.id, (SELECT count(*) FROM leads l WHERE l.company_id = c.id) AS leads
         FROM companies c ORDER BY 2 DESC LIMIT 1`,
    );
    const companyId = company!.id;
    const users = await db.query<Array<{ id: string; is_admin: boolean }>>(
      'SELECT id, is_admin FROM users WHERE company_id = $1 AND deactivated_at IS NULL ORDER BY id',
      [companyId],
    );
    const admin = users.find((user) => user.is_admin) ?? users[0]!;
    const gateway = context.startProcess('main', {
      NODE_ENV: 'production',
      JWT_SECRET,
      DATABASE_URL: (db.options as { url: string }).url,
      DATABASE_POOL_SIZE: String(WRITERS),
      // Room for the writers' pool beside the process's other pools (search, exports, reports).
      DATABASE_MAX_CONNECTIONS: String(WRITERS + 16),
      REDIS_URL: context.redisUrl,
      PORT: '0',
      HOST: '127.0.0.1',
      METRICS_PORT: String(await context.freePort()),
      LOG_LEVEL: 'info',
    });
    try {
      const [, url] = await gateway.waitFor(/"url":"(http:\/\/[^"]+)\/graphql"/);
      const token = await new TokenService({ secret: JWT_SECRET }).mint(admin.id, companyId, 3600);
      const call = (query: string, variables: Record<string, unknown>) =>
        context.graphql(url!, token, query, variables);
      const owners = users.map((user) => user.id);
      context.log(
        `records.writes: company with ${company!.leads} leads, ${owners.length} owners; triggers ${triggers.join(', ')}`,
      );
      // Warm up in both states first. The first timed phase after a 3 s warm-up ran 30-60 % under the same state's
      // later phase in every run, whichever state it was (with the triggers off first: 98 writes/s, then 200), and
      // with the triggers always first that fell on them: a start-up cost of the gateway and its connections, not of
      // either state.
      await runPhase(context, db, call, owners, true, WARMUP_MS);
      await setTriggers(db, triggers, false);
      try {
        await runPhase(context, db, call, owners, false, WARMUP_MS);
      } finally {
        await setTriggers(db, triggers, true);
      }
      const phases: Phase[] = [];
      for (const on of [true, false, true, false]) {
        if (!on) await setTriggers(db, triggers, false);
        try {
          phases.push(await runPhase(context, db, call, owners, on, PHASE_MS));
        } finally {
          if (!on) await setTriggers(db, triggers, true);
        }
        const last = phases.at(-1)!;
        context.log(
          `records.writes: triggers ${on ? 'on ' : 'off'} ${((last.writes * 1000) / last.ms).toFixed(0)} writes/s, ` +
            `${last.failed} failed, ${last.lockWaits.toFixed(2)} lock waits on average (${[...last.waitsOn]
              .sort((a, b) => b[1] - a[1])
              .slice(0, 4)
              .map(([on, n]) => `${on} ${n}`)
              .join(', ')})`,
        );
      }
      const rate = (on: boolean) => {
        const of = phases.filter((phase) => phase.triggers === on);
        return (of.reduce((sum, p) => sum + p.writes, 0) * 1000) / of.reduce((sum, p) => sum + p.ms, 0);
      };
      const stat = (on: boolean, figure: (phase: Phase) => number) =>
        phases.filter((phase) => phase.triggers === on).reduce((sum, p) => sum + figure(p), 0);
      const waits = (on: boolean) => stat(on, (p) => p.lockWaits) / 2;
      return {
        scenario: 'records.writes',
        description: `${WRITERS} concurrent writers (${CREATE_SHARE * 100}% createLead, the rest updateLead) over HTTP on one company, search and rollup triggers on vs disabled`,
        measured: {
          writesPerSecond: rate(true),
          failed: stat(true, (p) => p.failed),
          meanLockWaits: waits(true),
        },
        baseline: {
          writesPerSecond: rate(false),
          failed: stat(false, (p) => p.failed),
          meanLockWaits: waits(false),
        },
        baselineName: 'the same writers with the search and rollup triggers disabled',
        ratio: rate(true) / rate(false),
        ratioOf: 'writes/s with the triggers / writes/s without (target >= 0.7)',
        notes: `company: ${company!.leads} leads; ${phases.length} alternating phases of ${PHASE_MS / 1000} s; triggers: ${triggers.join(', ')}`,
      };
    } finally {
      await gateway.stop();
      await setTriggers(db, triggers, true).catch(() => undefined);
      await db.destroy();
    }
  },
};
