import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnBuilt, type SpawnedProcess } from '../helpers/spawn-gateway';

describe('embedded mode (nothing configured)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'crm-embedded-'));
  let gateway: SpawnedProcess | undefined;

  afterAll(() => {
    gateway?.child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('boots on PGlite with in-process drivers, migrates, seeds a demo, answers a query, and stops cleanly', async () => {
    gateway = spawnBuilt('main', {
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      METRICS_PORT: '0',
      PORT: '0',
      HOST: '127.0.0.1',
      EMBEDDED_DATA_DIR: dataDir,
      // The demo company is small: its rollups are not a tenth of its records, read them anyway.
      REPORT_ROLLUP_MAX_RATIO: '1',
    });
    const [, url] = await gateway.waitFor(/running with embedded defaults at (\S+)/, 120_000);
    const [, token] = await gateway.waitFor(/Authorization: Bearer (\S+)/);
    await gateway.waitFor(/gateway started/);
    expect(gateway.output()).toMatch(/"postgres":"embedded PGlite \+ pgvector/);
    expect(gateway.output()).toMatch(/"cache":"in-process LRU"/);
    expect(gateway.output()).toMatch(/"queue":"in-process runner"/);

    const response = await fetch(url!, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query: '{ me { email isAdmin } deals(pageSize: 5) { total items { owner { id } account { id } } } }',
      }),
    });
    const body = (await response.json()) as {
      data: { me: { email: string; isAdmin: boolean }; deals: { total: number; items: unknown[] } };
    };
    expect(body.data.me).toEqual({ email: 'user0@company0.example.com', isAdmin: true });
    expect(body.data.deals.total).toBeGreaterThan(0);
    expect(body.data.deals.items).toHaveLength(5);

    // A write whose checks read inside the transaction must not deadlock PGlite's single backend.
    const accountId = (body.data.deals.items as Array<{ account: { id: string } | null }>).find(
      (item) => item.account,
    )!.account!.id;
    const created = await fetch(url!, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query: `mutation { createDeal(input: { name: "Embedded", accountId: "${accountId}" }) { account { id } } }`,
      }),
    });
    expect(await created.json()).toEqual({ data: { createDeal: { account: { id: accountId } } } });

    // Reports on PGlite: the rollups (kept by triggers, rebuilt and vacuumed on demand) answer as the live query does.
    const call = async (query: string, variables?: Record<string, unknown>) => {
      const res = await fetch(url!, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
      return (await res.json()) as { data?: Record<string, any>; errors?: unknown };
    };
    // A single read runs as a prepared statement: on PGlite too, and again once it is prepared.
    const listed = await call('{ deals(pageSize: 2) { items { id account { id } } } }');
    for (const item of listed.data!.deals.items as unknown[])
      for (let i = 0; i < 2; i++)
        expect(
          await call('query($id: ID!) { deal(id: $id) { id account { id } } }', {
            id: (item as { id: string }).id,
          }),
        ).toEqual({
          data: { deal: item },
        });

    const rebuilt = await call('mutation { precomputeCommonReports(entityType: DEAL) { name rollupRows } }');
    expect(rebuilt.errors).toBeUndefined();
    expect((rebuilt.data!.precomputeCommonReports as unknown[]).length).toBe(2);
    const reportQuery = `query ($input: ReportInput!) { report(input: $input) { source aggregates { rows { dimensions value } } } }`;
    const input = {
      entityType: 'DEAL',
      aggregates: [{ name: 'n', type: 'SUM', field: 'amount', dimensions: ['stage'] }],
    };
    const materialized = await call(reportQuery, { input: { ...input, source: 'MATERIALIZED' } });
    const live = await call(reportQuery, { input: { ...input, source: 'LIVE' } });
    expect(materialized.errors).toBeUndefined();
    expect(materialized.data!.report.source).toBe('MATERIALIZED');
    expect(materialized.data!.report.aggregates).toEqual(live.data!.report.aggregates);
    expect(materialized.data!.report.aggregates[0].rows.length).toBeGreaterThan(0);

    const ready = await fetch(url!.replace('/graphql', '/readyz'));
    expect(await ready.json()).toEqual({ status: 'ready', checks: { postgres: true } });

    // A second process on the same data directory is refused instead of corrupting it.
    const second = spawnBuilt('main', {
      NODE_ENV: 'development',
      METRICS_PORT: '0',
      PORT: '0',
      HOST: '127.0.0.1',
      EMBEDDED_DATA_DIR: dataDir,
    });
    await second.waitFor(/in use by process \d+/);
    expect(await second.exited).toBe(1);

    gateway.child.kill('SIGTERM');
    expect(await gateway.exited).toBe(0);
  }, 180_000);
});
