import { startMetricsServer } from '../../../server/metrics.server';
import { Metrics, MetricName } from '../metrics';

describe('a scrape with one failing family', () => {
  it('serves every other family, leaves the failed one out, counts it, and logs it once a minute', async () => {
    const metrics = new Metrics({ process: 'gateway' });
    metrics.declare({
      type: 'gauge',
      name: 'crm_test_broken_rows',
      help: 'Reads a table that is not there',
      collect: () => Promise.reject(new Error('relation "audit_logs_default" does not exist')),
    });
    metrics.httpRequests.inc({ method: 'POST', route: '/graphql', status_class: '2xx' });
    const warnings: unknown[] = [];
    const server = await startMetricsServer({
      metrics,
      port: 0,
      host: '127.0.0.1',
      logger: { warn: (details: unknown) => warnings.push(details), error: () => {} } as never,
    });
    try {
      const scrape = async () => {
        const response = await fetch(server.url);
        expect(response.status).toBe(200);
        return response.text();
      };
      const first = await scrape();
      expect(first).toContain(
        `${MetricName.httpRequests}{method="POST",route="/graphql",status_class="2xx",process="gateway"} 1`,
      );
      expect(first).toContain('crm_nodejs_heap_size_used_bytes');
      expect(first).not.toMatch(/^(# TYPE )?crm_test_broken_rows/m);
      expect(first).toContain(
        `${MetricName.collectErrors}{family="crm_test_broken_rows",process="gateway"} 1`,
      );
      const second = await scrape();
      expect(second).toContain(
        `${MetricName.collectErrors}{family="crm_test_broken_rows",process="gateway"} 2`,
      );
      expect(warnings).toEqual([expect.objectContaining({ family: 'crm_test_broken_rows' })]);
    } finally {
      await server.close();
    }
  });
});
