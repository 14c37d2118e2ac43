import { TokenService } from '../identity';
import {
  millionRecordSizes,
  pickBenchUsers,
  type BenchContext,
  type BenchResult,
  type BenchScenario,
  type BenchUser,
  type LatencyStats,
} from '../kernel';

const JWT_SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';
const RULE_NAME = 'bench search rep';

const QUERY = `query ($input: SearchInput!) { search(input: $input) {
  total facetSource window items { ... on Lead { id lastName owner { name } } ... on Deal { id name owner { name } } }
  facets { field buckets { key count } other missing } } }`;

const LEAD_FACETS = [
  { field: 'status' },
  { field: 'source' },
  { field: 'industry' },
  { field: 'ownerId' },
  { field: 'score' },
  { field: 'createdAt', interval: 'MONTH', timeZone: 'Europe/Berlin' },
];
const DEAL_FACETS = [
  { field: 'stage' },
  { field: 'ownerId' },
  { field: 'accountId' },
  { field: 'amount' },
  { field: 'probability' },
  { field: 'closeDate', interval: 'QUARTER' },
];
const STATUSES = ['NEW', 'CONTACTED', 'QUALIFIED', 'UNQUALIFIED', 'CONVERTED'];
const FIRST = [
  'ada',
  'gra',
  'ala',
  'lin',
  'mar',
  'den',
  'bar',
  'ken',
  'fra',
  'eds',
  'hed',
  'tim',
  'rad',
  'joh',
  'kar',
  'nik',
];
const LAST = [
  'lov',
  'hop',
  'tur',
  'tor',
  'ham',
  'rit',
  'lis',
  'tho',
  'all',
  'dij',
  'lam',
  'ber',
  'per',
  'mcc',
  'jon',
  'wir',
];

/**
 * Every call of a "new" scenario is a query never seen: this counter makes its filter values unique, and starting it
 * from the clock keeps a rerun from meeting windows an earlier run cached.
 */
let unique = Date.now() % 100_000_000;

/** A createdAt bound before every record, different each call: the query is new, the rows are all of them. */
function neverSeen(): { field: string; op: string; value: string } {
  unique++;
  return {
    field: 'createdAt',
    op: 'GTE',
    value: new Date(Date.UTC(2000, 0, 1) + unique * 1000).toISOString(),
  };
}

const SCENARIOS: Array<{ key: string; title: string; input: () => Record<string, unknown> }> = [
  {
    key: 'leadsFirstPage',
    title: 'leads: first page + 6 facets, unfiltered',
    input: () => ({ entityType: 'LEAD', facets: LEAD_FACETS, filters: [neverSeen()] }),
  },
  {
    key: 'dealsFirstPage',
    title: 'deals: first page + 6 facets, unfiltered',
    input: () => ({ entityType: 'DEAL', facets: DEAL_FACETS, filters: [neverSeen()] }),
  },
  {
    key: 'leadsFiltered',
    title: 'leads: 2 filters + text + 6 facets',
    input: () => {
      unique++;
      return {
        entityType: 'LEAD',
        text: `${FIRST[unique % 16]!} ${LAST[Math.floor(unique / 16) % 16]!}`,
        filters: [
          { field: 'status', op: 'IN', values: [STATUSES[unique % 5], STATUSES[(unique + 2) % 5]] },
          { field: 'score', op: 'GTE', value: unique % 40 },
        ],
        facets: LEAD_FACETS,
      };
    },
  },
  {
    key: 'leadsPastWindow',
    title: 'leads: page 11 (past the 10-page window), sorted by score',
    input: () => ({
      entityType: 'LEAD',
      filters: [neverSeen(), { field: 'status', op: 'NE', value: 'CONVERTED' }],
      sort: [{ field: 'score', direction: 'DESC' }],
      page: 11,
    }),
  },
];

async function residentBytes(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  return Number(/^crm_process_resident_memory_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1] ?? NaN);
}

/**
 * search() over HTTP at 1M leads and 1M deals in one company, for the admin, a manager (~30%) and a rep (~3% + criteria
 * rules + shares): the gateway with its counting index and window cache, against a second gateway answering the same
 * queries from SQL alone (SEARCH_INDEX=off: one COUNT, one GROUP BY per facet, the page's rows), each call a query it
 * has not cached.
 */
export const searchBench: BenchScenario = {
  name: 'search.facets',
  async run(context: BenchContext): Promise<BenchResult> {
    // Long by choice: one benchmark scenario that reads top to bottom as the table it prints (set up, warm up, measure,
    // compare with the baseline of the same run); cut into parts, its figures would be spread over several functions.
    const db = await context.openDatabase('crm1m', millionRecordSizes(context.scale));
    const [company] = await db.query<Array<{ id: string; deals: string; leads: string }>>(
      `SELECT c.id, (SELECT count(*) FROM deals d WHERE d.company_id = c.id) AS deals,
              (SELECT count(*) FROM leads l WHERE l.company_id = c.id) AS leads
         FROM companies c ORDER BY 3 DESC LIMIT 1`,
    );
    const companyId = company!.id;
    const cleanUp = async () => {
      await db.query('DELETE FROM sharing_rules WHERE company_id = $1 AND name = $2', [companyId, RULE_NAME]);
      await db.query('DELETE FROM record_shares WHERE company_id = $1', [companyId]);
    };
    await cleanUp();
    const databaseUrl = (db.options as { url: string }).url;
    const env = async (extra: Record<string, string>) => ({
      NODE_ENV: 'production',
      JWT_SECRET,
      DATABASE_URL: databaseUrl,
      REDIS_URL: context.redisUrl,
      PORT: '0',
      HOST: '127.0.0.1',
      METRICS_PORT: String(await context.freePort()),
      LOG_LEVEL: 'info',
      SEARCH_STATEMENT_TIMEOUT_MS: '120000',
      // A search's statements (page, total, six facets) run at once.
      SEARCH_DB_POOL_SIZE: '8',
      ...extra,
    });
    const indexedEnv = await env({});
    // Same Redis (sharing's invalidations reach both); every query it gets is one never asked before, so no cached
    // window or facet set answers for it.
    const liveEnv = await env({ SEARCH_INDEX: 'off' });
    const indexed = context.startProcess('main', indexedEnv);
    const live = context.startProcess('main', liveEnv);
    try {
      const [, indexedUrl] = await indexed.waitFor(/"url":"(http:\/\/[^"]+)\/graphql"/);
      const [, liveUrl] = await live.waitFor(/"url":"(http:\/\/[^"]+)\/graphql"/);
      const metricsUrl = `http://127.0.0.1:${indexedEnv.METRICS_PORT}/metrics`;
      const tokens = new TokenService({ secret: JWT_SECRET });
      const users = await pickBenchUsers(context, {
        graphqlUrl: liveUrl!,
        db,
        companyId,
        mint: (id) => tokens.mint(id, companyId, 3600),
        ruleName: RULE_NAME,
        countDeals: async (token) =>
          (
            (await context.graphql(liveUrl!, token, QUERY, { input: { entityType: 'DEAL', pageSize: 1 } }))
              .search as { total: number }
          ).total,
      });
      context.log(
        `search.facets: company with ${company!.leads} leads and ${company!.deals} deals; ` +
          users.map((u) => `${u.name} reads ${(u.share * 100).toFixed(1)}% of the deals`).join(', '),
      );

      // The first search of each type starts its build; the log says when it is done, how long it took, its size.
      const rssBefore = await residentBytes(metricsUrl);
      const builds: Record<string, { ms: number; bytes: number; rows: number }> = {};
      for (const type of ['LEAD', 'DEAL']) {
        await context.graphql(indexedUrl!, users[0]!.token, QUERY, {
          input: { entityType: type, pageSize: 1 },
        });
        const [line] = await indexed.waitFor(
          new RegExp(`\\{[^\\n]*"type":"${type}"[^\\n]*"msg":"search index built"[^\\n]*`),
        );
        const parsed = JSON.parse(line) as { ms: number; bytes: number; rows: number };
        builds[type] = { ms: parsed.ms, bytes: parsed.bytes, rows: parsed.rows };
      }
      const rssAfter = await residentBytes(metricsUrl);
      context.log(
        `index builds: ${Object.entries(builds)
          .map(
            ([type, b]) =>
              `${type} ${b.rows} rows in ${(b.ms / 1000).toFixed(1)} s, ${(b.bytes / 1e6).toFixed(1)} MB`,
          )
          .join(
            '; ',
          )}; gateway RSS ${(rssBefore / 1e6).toFixed(0)} MB before, ${(rssAfter / 1e6).toFixed(0)} MB after`,
      );

      const measured: Record<string, number> = {};
      const baseline: Record<string, number> = {};
      const newRatios: number[] = [];
      const repeatRatios: number[] = [];
      const rows: string[] = [];
      const sources = new Set<string>();
      const iterations = 30;
      const call =
        (url: string, user: BenchUser, input: () => Record<string, unknown>, seen?: Set<string>) =>
        async () => {
          const data = await context.graphql(url, user.token, QUERY, { input: input() });
          const result = data.search as { facetSource: string; window: string };
          seen?.add(`${result.facetSource}/${result.window}`);
        };
      for (const scenario of SCENARIOS) {
        for (const user of users) {
          const seen = new Set<string>();
          // Rounds interleave the two gateways, so both meet the same machine load.
          const fresh: LatencyStats[] = [];
          const naive: LatencyStats[] = [];
          for (let round = 0; round < 2; round++) {
            fresh.push(
              await context.timeCalls(call(indexedUrl!, user, scenario.input, seen), {
                iterations: iterations / 2,
                warmup: 1,
              }),
            );
            naive.push(
              await context.timeCalls(call(liveUrl!, user, scenario.input), { iterations: 5, warmup: 0 }),
            );
          }
          const merged = (stats: LatencyStats[]) => ({
            p50Ms: stats.reduce((s, x) => s + x.p50Ms, 0) / stats.length,
            p95Ms: Math.max(...stats.map((x) => x.p95Ms)),
          });
          const newStats = merged(fresh);
          const naiveStats = merged(naive);
          // The same query again (the first call of it above was new): a cached window and facets.
          const fixed = scenario.input();
          const repeatSeen = new Set<string>();
          const repeated = await context.timeCalls(
            call(indexedUrl!, user, () => fixed, repeatSeen),
            {
              iterations: 50,
              warmup: 1,
            },
          );
          const key = `${scenario.key}.${user.name}`;
          measured[`${key}.newP50Ms`] = newStats.p50Ms;
          measured[`${key}.newP95Ms`] = newStats.p95Ms;
          measured[`${key}.repeatedP50Ms`] = repeated.p50Ms;
          measured[`${key}.repeatedP95Ms`] = repeated.p95Ms;
          baseline[`${key}.sqlP50Ms`] = naiveStats.p50Ms;
          baseline[`${key}.sqlP95Ms`] = naiveStats.p95Ms;
          newRatios.push(naiveStats.p95Ms / newStats.p95Ms);
          repeatRatios.push(naiveStats.p95Ms / repeated.p95Ms);
          sources.add(`${key}: ${[...seen].join(' ')} | repeated ${[...repeatSeen].join(' ')}`);
          const n = (value: number) => value.toFixed(1).padStart(8);
          rows.push(
            `${scenario.title.padEnd(58)}${user.name.padEnd(9)}${n(newStats.p50Ms)} ${n(newStats.p95Ms)} ${n(repeated.p50Ms)} ${n(repeated.p95Ms)} ${n(naiveStats.p50Ms)} ${n(naiveStats.p95Ms)} ${(naiveStats.p95Ms / newStats.p95Ms).toFixed(1).padStart(7)}x ${(naiveStats.p95Ms / repeated.p95Ms).toFixed(1).padStart(7)}x`,
          );
        }
      }
      const rssEnd = await residentBytes(metricsUrl);
      context.log(
        [
          'scenario                                                  user      new p50  new p95  rep p50  rep p95  sql p50  sql p95  new x  repeated x',
          ...rows,
        ].join('\n'),
      );
      const bytesPerMillion = (builds.LEAD!.bytes / builds.LEAD!.rows) * 1e6;
      measured.leadIndexBuildMs = builds.LEAD!.ms;
      measured.dealIndexBuildMs = builds.DEAL!.ms;
      measured.leadIndexBytesPerMillion = bytesPerMillion;
      measured.dealIndexBytesPerMillion = (builds.DEAL!.bytes / builds.DEAL!.rows) * 1e6;
      measured.gatewayRssBeforeIndexMb = rssBefore / 1e6;
      measured.gatewayRssAfterIndexMb = rssAfter / 1e6;
      measured.gatewayRssEndMb = rssEnd / 1e6;
      measured.worstNewP95Ms = Math.max(
        ...Object.entries(measured)
          .filter(([k]) => k.endsWith('newP95Ms'))
          .map(([, v]) => v),
      );
      measured.worstRepeatedP95Ms = Math.max(
        ...Object.entries(measured)
          .filter(([k]) => k.endsWith('repeatedP95Ms'))
          .map(([, v]) => v),
      );
      measured.smallestRepeatedRatio = Math.min(...repeatRatios);
      return {
        scenario: 'search.facets',
        description:
          'search() over HTTP for admin, manager (~30%) and rep (~3% + criteria + shares): counting index + window cache, new queries and repeated ones',
        measured,
        baseline,
        baselineName:
          'a second gateway answering from SQL (SEARCH_INDEX=off: COUNT + GROUP BY per facet + page), no cache hit',
        ratio: Math.min(...newRatios),
        ratioOf: 'smallest SQL p95 / index p95 over new queries (repeated: smallestRepeatedRatio)',
        notes:
          `served: ${[...sources].join('; ')}. company: ${company!.leads} leads, ${company!.deals} deals. ` +
          'Targets at 1M: new query p95 < 100 ms and >= 5x; repeated p95 < 10 ms and >= 20x; rebuild < 30 s.',
      };
    } finally {
      await Promise.all([indexed.stop(), live.stop()]);
      await cleanUp();
      await db.destroy();
    }
  },
};
