import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { MetricName } from '../../src/platform/metrics/metrics';
import { createTenant, insertAccount, insertDeal, type TestTenant } from '../helpers/fixtures';
import { spawnBuilt, testProcessEnv } from '../helpers/spawn-gateway';
import { freePort } from '../helpers/ports';
import { startTestApp, wsClient, wsExecute, type TestApp } from '../helpers/test-app';

const ROOT = resolve(__dirname, '../..');
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** Sum of the samples of `name` whose labels include every pair in `labels`. */
function sample(exposition: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** The global setup installs promtool where it can; a missing one fails these tests instead of skipping them. */
function requirePromtool(): true {
  if (spawnSync('promtool', ['--version']).status === 0) return true;
  throw new Error(
    'promtool is required for these checks: apt-get install prometheus (the test setup does it as root)',
  );
}

describe('Prometheus metrics', () => {
  let t: TestApp;
  let a: TestTenant;
  let metricsUrl: string;

  beforeAll(async () => {
    t = await startTestApp({ METRICS_PORT: String(await freePort()) });
    metricsUrl = t.app.metricsUrl!;
    a = await createTenant(t.app);
    const account = await insertAccount(t.app, a, a.admin.id);
    await insertDeal(t.app, a, a.admin.id, account);
  });
  afterAll(() => t.stop());

  const scrape = async () => {
    const response = await fetch(metricsUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return response.text();
  };

  it('exports every product metric family, and they move with representative operations', async () => {
    const before = await scrape();
    await t.gql('query Nested { deals { items { owner { name } account { name } } } }', {}, a.admin.token); // one query
    await t.gql('query Nested { deals { items { owner { name } account { name } } } }', {}, a.admin.token);
    // Search names its items' accounts through the request's loaders: a miss in the shared cache, then a hit.
    const found = '{ search(input: { entityType: DEAL }) { items { ... on Deal { account { name } } } } }';
    await t.gql(found, {}, a.admin.token);
    await t.gql(found, {}, a.admin.token);
    await t.gql(
      'mutation AddLead { createLead(input: { firstName: "M", lastName: "X" }) { id } }',
      {},
      a.admin.token,
    );
    await t.gql('{ me { id } }'); // UNAUTHENTICATED
    const after = await scrape();

    for (const name of Object.values(MetricName)) expect(after).toContain(`# TYPE ${name} `);
    expect(after).toContain('crm_nodejs_eventloop_lag_seconds');
    expect(after).toContain('crm_process_cpu_seconds_total');

    const grew = (name: string, labels: Record<string, string> = {}) =>
      sample(after, name, labels) - sample(before, name, labels);
    expect(
      grew('crm_http_requests_total', { route: '/graphql', status_class: '2xx' }),
    ).toBeGreaterThanOrEqual(3);
    expect(grew('crm_http_request_duration_seconds_count', { route: '/graphql' })).toBeGreaterThanOrEqual(4);
    expect(grew('crm_graphql_operations_total', { operation_type: 'query', operation_name: 'Nested' })).toBe(
      2,
    );
    expect(
      grew('crm_graphql_operations_total', { operation_type: 'mutation', operation_name: 'AddLead' }),
    ).toBe(1);
    expect(grew('crm_graphql_operation_duration_seconds_count', { operation_name: 'Nested' })).toBe(2);
    expect(grew('crm_graphql_errors_total', { code: 'UNAUTHENTICATED' })).toBe(1);
    expect(grew('crm_db_queries_total', { operation: 'select', model: 'deals' })).toBeGreaterThanOrEqual(2);
    expect(grew('crm_db_queries_total', { operation: 'insert', model: 'leads' })).toBe(1);
    expect(grew('crm_db_queries_total', { operation: 'insert', model: 'audit_logs' })).toBe(1);
    expect(grew('crm_db_query_duration_seconds_count', { model: 'deals' })).toBeGreaterThanOrEqual(2);
    expect(grew('crm_cache_misses_total', { cache: 'account', tier: 'redis' })).toBeGreaterThanOrEqual(1);
    expect(grew('crm_cache_hits_total', { cache: 'account', tier: 'redis' })).toBeGreaterThanOrEqual(1);
    expect(grew('crm_cache_hits_total', { cache: 'sharing', tier: 'memory' })).toBeGreaterThanOrEqual(1);
    expect(
      grew('crm_cache_operation_duration_seconds_count', { cache: 'account', tier: 'redis' }),
    ).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'crm_audit_partitions')).toBeGreaterThanOrEqual(5);
    expect(after).toMatch(/crm_queue_jobs\{[^}]*queue="system"[^}]*state="waiting"/);
  });

  it('carries no tenant, user or record id and no query text in any label', async () => {
    const exposition = await scrape();
    const labelled = exposition.split('\n').filter((line) => line.startsWith('crm_') && line.includes('{'));
    expect(labelled.length).toBeGreaterThan(20);
    for (const line of labelled) {
      expect(line).not.toMatch(UUID);
      expect(line).not.toMatch(/deals \{|createLead\(/);
    }
  });

  it('counts GraphQL operations over WebSocket too', async () => {
    const before = sample(await scrape(), 'crm_graphql_operations_total', { operation_name: 'OverSocket' });
    const client = wsClient(t.url, `Bearer ${a.admin.token}`);
    try {
      await wsExecute(client, 'query OverSocket { me { id } }');
    } finally {
      await client.dispose();
    }
    expect(
      sample(await scrape(), 'crm_graphql_operations_total', { operation_name: 'OverSocket' }) - before,
    ).toBe(1);
  });

  it('times each WebSocket operation once, when clients on other sockets use the same operation id', async () => {
    // Operation ids are the client's and unique within its socket only: a simple client numbers them from 1.
    const clients = Array.from({ length: 6 }, () =>
      wsClient(t.url, `Bearer ${a.admin.token}`, { keepOpen: true, generateID: () => '1' }),
    );
    const count = async () =>
      sample(await scrape(), 'crm_graphql_operation_duration_seconds_count', { operation_name: 'SameId' });
    const before = await count();
    try {
      const results = await Promise.all(
        clients.map((client) => wsExecute(client, 'query SameId { me { id } }')),
      );
      expect(results.map((result) => result.errors)).toEqual(clients.map(() => undefined));
    } finally {
      for (const client of clients) await client.dispose();
    }
    expect((await count()) - before).toBe(clients.length);
  });

  it('serves /metrics only on the sidecar port, not on the public one', async () => {
    const publicPort = await fetch(`${t.url}/metrics`);
    expect(publicPort.status).toBe(404);
    expect(await publicPort.text()).not.toContain('crm_http_requests_total');
    expect((await fetch(metricsUrl.replace('/metrics', '/other'))).status).toBe(404);
  });

  it('passes `promtool check metrics`', async () => {
    requirePromtool();
    const exposition = await scrape();
    const result = spawnSync('promtool', ['check', 'metrics'], { input: exposition });
    expect(result.stderr.toString() + result.stdout.toString()).toBe('');
    expect(result.status).toBe(0);
  });

  it('monitoring/ passes `promtool check config` and `check rules`', () => {
    requirePromtool();
    execFileSync('promtool', ['check', 'config', resolve(ROOT, 'monitoring/prometheus.yml')]);
    execFileSync('promtool', ['check', 'rules', resolve(ROOT, 'monitoring/alerts.yml')]);
  });

  it('the dashboard parses and every metric in its queries and in the alerts is one the code exports', async () => {
    const families = new Set(await t.app.metrics.familyNames());
    const exported = (name: string) =>
      families.has(name) || families.has(name.replace(/_(bucket|sum|count)$/, ''));
    const dashboard = JSON.parse(
      readFileSync(resolve(ROOT, 'monitoring/grafana/crm_performance_dashboard.json'), 'utf8'),
    ) as {
      templating: { list: Array<{ type: string }> };
      panels: Array<{ title: string; datasource: { uid: string }; targets: Array<{ expr: string }> }>;
    };
    expect(dashboard.templating.list.some((v) => v.type === 'datasource')).toBe(true);
    const alerts = parse(readFileSync(resolve(ROOT, 'monitoring/alerts.yml'), 'utf8')) as {
      groups: Array<{ rules: Array<{ expr: string }> }>;
    };
    const expressions = [
      ...dashboard.panels.flatMap((p) => p.targets.map((target) => target.expr)),
      ...alerts.groups.flatMap((g) => g.rules.map((r) => r.expr)),
    ];
    const names = new Set(expressions.flatMap((expr) => expr.match(/\bcrm_[a-z0-9_]+/g) ?? []));
    expect(names.size).toBeGreaterThan(15);
    expect([...names].filter((name) => !exported(name))).toEqual([]);
    for (const panel of dashboard.panels) expect(panel.datasource.uid).toBe('${datasource}');
    for (const required of [
      'crm_graphql_operation_duration_seconds_bucket',
      'crm_cache_hits_total',
      'crm_db_query_duration_seconds_bucket',
      'crm_queue_jobs',
      'crm_export_rows_total',
      'crm_vector_search_duration_seconds_bucket',
      'crm_active_subscriptions',
    ]) {
      expect(names).toContain(required);
    }
  });

  it('a worker process serves its own /metrics, with queue gauges', async () => {
    const port = await freePort();
    const worker = spawnBuilt('worker', testProcessEnv({ METRICS_PORT: String(port) }));
    try {
      await worker.waitFor(/worker started/);
      const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(body).toContain('process="worker"');
      expect(body).toMatch(/crm_queue_jobs\{[^}]*queue="system"/);
    } finally {
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
    }
  });
});
