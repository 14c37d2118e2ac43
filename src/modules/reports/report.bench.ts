import { performance } from 'node:perf_hooks';
import { TokenService } from '../identity';
import {
  millionRecordSizes,
  pickBenchUsers,
  type BenchContext,
  type BenchResult,
  type BenchScenario,
} from '../kernel';

const JWT_SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';

/** The calendar year so far and to come (a pipeline dashboard's horizon), as whole months in UTC. */
function thisYear(): { from: string; to: string } {
  const year = new Date().getUTCFullYear();
  return { from: `${year}-01-01T00:00:00.000Z`, to: `${year + 1}-01-01T00:00:00.000Z` };
}

const REPORTS: Array<{ key: string; title: string; input: Record<string, unknown>; covered: boolean }> = [
  {
    key: 'dealsByStage',
    title: 'deals by stage (count, sum amount)',
    covered: true,
    input: {
      entityType: 'DEAL',
      aggregates: [
        { name: 'deals', type: 'COUNT', dimensions: ['stage'] },
        { name: 'amount', type: 'SUM', field: 'amount', dimensions: ['stage'] },
      ],
    },
  },
  {
    key: 'pipelineByOwnerMonth',
    title: 'open pipeline by owner by close month, this year (sum, avg)',
    covered: true,
    input: {
      entityType: 'DEAL',
      filters: [
        { field: 'stage', op: 'IN', values: ['PROSPECTING', 'QUALIFICATION', 'PROPOSAL', 'NEGOTIATION'] },
      ],
      dateRange: { field: 'closeDate', ...thisYear() },
      aggregates: [
        { name: 'pipeline', type: 'SUM', field: 'amount', dimensions: ['ownerId', 'closeDate:month'] },
        { name: 'average', type: 'AVG', field: 'amount', dimensions: ['ownerId', 'closeDate:month'] },
      ],
    },
  },
  {
    key: 'leadsByStatusMonth',
    title: 'leads by status by created month (count)',
    covered: true,
    input: {
      entityType: 'LEAD',
      aggregates: [{ name: 'leads', type: 'COUNT', dimensions: ['status', 'createdAt:month'] }],
    },
  },
  {
    key: 'dealsByProbability',
    title: 'deals by probability (no rollup holds it)',
    covered: false,
    input: {
      entityType: 'DEAL',
      aggregates: [{ name: 'deals', type: 'COUNT', dimensions: ['probability'] }],
    },
  },
];

const REPORT_QUERY = `query ($input: ReportInput!) { report(input: $input) { source aggregates { rows { value } } } }`;
const PRECOMPUTE = `mutation { precomputeCommonReports { name rollupRows recordRows buildMs usable } }`;
const DEAL_COUNT = { entityType: 'DEAL', aggregates: [{ name: 'n', type: 'COUNT' }], source: 'MATERIALIZED' };

/**
 * Report aggregates through the gateway over HTTP for the admin, a manager and a rep: by default (rollups) against the
 * live GROUP BY (`source: LIVE`), each timed in the same run; and the rebuild of every preset of the 1M-row company.
 */
export const reportRollups: BenchScenario = {
  name: 'report.rollups',
  async run(context: BenchContext): Promise<BenchResult> {
    // Long by choice: one benchmark scenario that reads top to bottom as the table it prints (set up, warm up, measure,
    // compare with the baseline of the same run); cut into parts, its figures would be spread over several functions.
    const db = await context.openDatabase('crm1m', millionRecordSizes(context.scale));
    const [company] = await db.query<Array<{ id: string; deals: string; leads: string }>>(
      `SELECT c.id, (SELECT count(*) FROM deals d WHERE d.company_id = c.id) AS deals,
              (SELECT count(*) FROM leads l WHERE l.company_id = c.id) AS leads
         FROM companies c ORDER BY 2 DESC LIMIT 1`,
    );
    // A rerun starts from the seeded sharing: the rep's rules and shares of an earlier run go.
    await db.query(`DELETE FROM sharing_rules WHERE company_id = $1 AND name = 'bench report rep'`, [
      company!.id,
    ]);
    await db.query('DELETE FROM record_shares WHERE company_id = $1', [company!.id]);
    const databaseUrl = (db.options as { url: string }).url;
    const gateway = context.startProcess('main', {
      NODE_ENV: 'production',
      JWT_SECRET,
      DATABASE_URL: databaseUrl,
      REDIS_URL: context.redisUrl,
      PORT: '0',
      HOST: '127.0.0.1',
      METRICS_PORT: String(await context.freePort()),
      LOG_LEVEL: 'info',
      REPORT_STATEMENT_TIMEOUT_MS: '120000',
      REPORT_MAX_COST: '1000000000000',
      // Below scale 1 the same 200 owners hold a tenth of the records, so the month rollups (with the rep's rule mask)
      // pass the default 10% of their records and would go live: at scale 1 they are 3-4% and read. The same paths
      // as at scale 1 are measured.
      ...(context.scale < 1 ? { REPORT_ROLLUP_MAX_RATIO: '0.5' } : {}),
      // REPORT_RESULT_CACHE_SIZE=0 in the bench's environment measures the path without the result cache (A/B).
      ...(process.env.REPORT_RESULT_CACHE_SIZE
        ? { REPORT_RESULT_CACHE_SIZE: process.env.REPORT_RESULT_CACHE_SIZE }
        : {}),
    });
    try {
      const [, url] = await gateway.waitFor(/"url":"(http:\/\/[^"]+)\/graphql"/);
      const graphqlUrl = url!;
      const tokens = new TokenService({ secret: JWT_SECRET });
      const users = await pickBenchUsers(context, {
        graphqlUrl,
        db,
        companyId: company!.id,
        mint: (id) => tokens.mint(id, company!.id, 3600),
        ruleName: 'bench report rep',
        countDeals: async (token) => {
          const data = await context.graphql(graphqlUrl, token, REPORT_QUERY, { input: DEAL_COUNT });
          return (data.report as unknown as { aggregates: Array<{ rows: Array<{ value: number }> }> })
            .aggregates[0]!.rows[0]!.value;
        },
      });
      context.log(
        `report.rollups: company with ${company!.deals} deals and ${company!.leads} leads; ` +
          users.map((u) => `${u.name} reads ${(u.share * 100).toFixed(1)}% of the deals`).join(', '),
      );
      const admin = users[0]!;
      const started = performance.now();
      const built = (await context.graphql(graphqlUrl, admin.token, PRECOMPUTE))
        .precomputeCommonReports as unknown as Array<{
        name: string;
        rollupRows: number;
        recordRows: number;
        buildMs: number;
        usable: boolean;
      }>;
      const rebuildMs = performance.now() - started;
      context.log(
        `rebuilt ${built.length} rollups in ${(rebuildMs / 1000).toFixed(1)} s: ` +
          built
            .map((b) => `${b.name} ${b.rollupRows} rows (${b.buildMs} ms${b.usable ? '' : ', too large'})`)
            .join(', '),
      );

      const measured: Record<string, number> = { rebuildAllPresetsMs: rebuildMs };
      const baseline: Record<string, number> = {};
      const ratios: number[] = [];
      const sources: string[] = [];
      const rows: string[] = [];
      const iterations = (heavy: boolean) =>
        heavy ? Math.max(10, Math.round(20 * Math.min(1, 1 / context.scale))) : 50;
      // A write that changes no figure but moves the data version (so no answer held for the old one is reused): the
      // cost of an answer right after a write, as under a steady write load.
      const touch = async (entityType: string) => {
        const table = entityType === 'LEAD' ? 'leads' : 'deals';
        await db.query(
          `UPDATE ${table} SET updated_at = updated_at WHERE id = (SELECT id FROM ${table} WHERE company_id = $1 ORDER BY id LIMIT 1)`,
          [company!.id],
        );
      };
      for (const report of REPORTS) {
        for (const user of users) {
          const call = (source?: string) => async () => {
            const data = await context.graphql(graphqlUrl, user.token, REPORT_QUERY, {
              input: source ? { ...report.input, source } : report.input,
            });
            return data.report as { source: string };
          };
          const answer = await call()();
          for (let i = 0; i < 3; i++) await Promise.all([call()(), call('LIVE')()]);
          // Interleaved, so both paths see the same noise of a shared machine: default, live, then default after a
          // write (the answer computed, not reused).
          const samples = { auto: [] as number[], live: [] as number[], fresh: [] as number[] };
          const timed = async (into: number[], fn: () => Promise<unknown>) => {
            const at = performance.now();
            await fn();
            into.push(performance.now() - at);
          };
          for (let i = 0; i < iterations(!report.covered); i++) {
            await timed(samples.auto, call());
            await timed(samples.live, call('LIVE'));
            await touch(report.input.entityType as string);
            await timed(samples.fresh, call());
          }
          const [auto, live, fresh] = [stats(samples.auto), stats(samples.live), stats(samples.fresh)];
          const key = `${report.key}.${user.name}`;
          measured[`${key}.p50Ms`] = auto.p50Ms;
          measured[`${key}.p95Ms`] = auto.p95Ms;
          measured[`${key}.afterWriteP50Ms`] = fresh.p50Ms;
          measured[`${key}.afterWriteP95Ms`] = fresh.p95Ms;
          baseline[`${key}.liveP50Ms`] = live.p50Ms;
          baseline[`${key}.liveP95Ms`] = live.p95Ms;
          const ratio = live.p95Ms / auto.p95Ms;
          if (report.covered) ratios.push(ratio);
          sources.push(`${key}: ${answer.source}`);
          rows.push(row(report.title, user.name, answer.source, auto, fresh, live));
        }
      }
      context.log(
        [
          'report                                                  user     source         p50 ms   p95 ms  write p50 write p95  live p50  live p95   ratio',
          ...rows,
        ].join('\n'),
      );
      const worstP95 = Math.max(
        ...REPORTS.filter((r) => r.covered).flatMap((r) =>
          users.map((u) => measured[`${r.key}.${u.name}.p95Ms`]!),
        ),
      );
      return {
        scenario: 'report.rollups',
        description:
          'report() over HTTP for admin, manager (~30%) and rep (~3% + criteria + shares): default path (rollups) vs live GROUP BY; rebuild of every preset',
        measured: { ...measured, worstCoveredP95Ms: worstP95 },
        baseline,
        baselineName: 'the same report with source: LIVE (GROUP BY over the records)',
        ratio: Math.min(...ratios),
        ratioOf: 'smallest live p95 / rollup p95 over the covered reports and users',
        notes:
          `sources: ${sources.join(', ')}; ` +
          `company: ${company!.deals} deals, ${company!.leads} leads; users: ${users.map((u) => `${u.name} ${(u.share * 100).toFixed(1)}%`).join(', ')}. ` +
          'Default and live calls interleaved; "after a write" is the default path right after a write that moves the data version (the answer computed, not reused). ' +
          'Targets at 1M: rollup p95 < 20 ms for every user, >= 20x the live p95, rebuild of all presets < 30 s.',
      };
    } finally {
      await gateway.stop();
      // Leaves the seeded data set as it was, so the next run (and search's bench) does not reseed.
      await db.query(`DELETE FROM sharing_rules WHERE company_id = $1 AND name = 'bench report rep'`, [
        company!.id,
      ]);
      await db.query('DELETE FROM record_shares WHERE company_id = $1', [company!.id]);
      await db.destroy();
    }
  },
};

function stats(samples: number[]): { p50Ms: number; p95Ms: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return { p50Ms: at(0.5), p95Ms: at(0.95) };
}

type Stats = { p50Ms: number; p95Ms: number };

function row(title: string, user: string, source: string, auto: Stats, fresh: Stats, live: Stats): string {
  const n = (value: number) => value.toFixed(1).padStart(8);
  return `${title.padEnd(56)}${user.padEnd(9)}${source.padEnd(13)}${n(auto.p50Ms)} ${n(auto.p95Ms)}  ${n(fresh.p50Ms)}  ${n(fresh.p95Ms)}  ${n(live.p50Ms)}  ${n(live.p95Ms)}  ${(live.p95Ms / auto.p95Ms).toFixed(1).padStart(6)}x`;
}
