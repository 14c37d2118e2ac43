import { freePort, timeCalls, type Scenario, type ScenarioResult } from '../harness';
import { adminToken, gatewaySizes, startBenchGateway, GATEWAY_DATABASE_URL } from './gateway.bench';
import { prepareBenchDatabase } from '../bench-database';

/** Exercises every instrumented path first, so the scrape carries all series it would in production. */
export const metricsScrape: Scenario = {
  name: 'metrics.scrape',
  async run(context): Promise<ScenarioResult> {
    await prepareBenchDatabase(GATEWAY_DATABASE_URL, gatewaySizes(context.scale), context.log);
    const app = await startBenchGateway({ METRICS_PORT: String(await freePort()) });
    try {
      const token = await adminToken(app);
      const post = (query: string, name: string) =>
        fetch(`${app.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ query, operationName: name }),
        }).then((res) => res.text());
      for (let i = 0; i < 50; i++) {
        await post(
          `query Q${i % 20} { deals(pageSize: 50) { items { owner { name } account { name } } } leads(pageSize: 5) { total } }`,
          `Q${i % 20}`,
        );
        await post(`query Bad${i % 5} { me { nope } }`, `Bad${i % 5}`);
      }
      // A mutation that validation rejects: exercises the path without changing the shared data set.
      await post('mutation M { createLead(input: { firstName: "", lastName: "Scrape" }) { id } }', 'M');
      const scrapeUrl = app.metricsUrl!;
      const body = await (await fetch(scrapeUrl)).text();
      const series = body.split('\n').filter((line) => line && !line.startsWith('#')).length;
      const scrape = await timeCalls(() => fetch(scrapeUrl).then((res) => res.text()), {
        iterations: 200,
        warmup: 20,
      });
      const health = await timeCalls(() => fetch(`${app.url}/healthz`).then((res) => res.text()), {
        iterations: 200,
        warmup: 20,
      });
      return {
        scenario: 'metrics.scrape',
        description: `GET /metrics on the sidecar with every feature exercised (${series} series, ${body.length} bytes)`,
        measured: { p50Ms: scrape.p50Ms, p95Ms: scrape.p95Ms, p99Ms: scrape.p99Ms, series },
        baseline: { p50Ms: health.p50Ms, p95Ms: health.p95Ms, p99Ms: health.p99Ms },
        baselineName: 'GET /healthz on the public port',
        ratio: scrape.p95Ms / health.p95Ms,
        ratioOf: 'p95 vs baseline',
        notes: 'Target: a scrape under 50 ms.',
      };
    } finally {
      await app.stop();
    }
  },
};
