import { Client } from 'pg';
import { startPostgresPair, type PostgresPair } from '../../bench/cluster/postgres-pair';
import { buildSharingOrg, type SharingOrg } from '../helpers/sharing-org';
import { startTestApp, type TestApp } from '../helpers/test-app';

/**
 * Reads on a REAL streaming replica (initdb + pg_basebackup -R -X stream, made by the test in a temp directory on its
 * own ports): read-your-writes while the replica's replay is paused, other users reading the replica, a replica that
 * falls too far behind or stops mid-load skipped without failing a read, and coming back by itself.
 */
describe('read replicas (a real Postgres streaming replica)', () => {
  let pair: PostgresPair;
  let gateway: TestApp;
  let second: TestApp;
  let org: SharingOrg;
  const database = 'crm_replicas';
  const url = (base: string) => base.replace(/\/postgres$/, `/${database}`);

  const LEAD = `query ($id: ID!) { lead(id: $id) { id lastName } }`;
  const LEADS = `{ leads(pageSize: 200) { total items { id lastName } } }`;
  const SEARCH = `query ($text: String) { search(input: { entityType: LEAD, text: $text, pageSize: 50 }) { total items { ... on Lead { id } } } }`;
  const REPORT = `{ report(input: { entityType: LEAD, aggregates: [{ name: "n", type: COUNT }] }) { aggregates { rows { value } } } }`;
  const CREATE = `mutation ($last: String!) { createLead(input: { firstName: "R", lastName: $last }) { id lastName } }`;

  const replicaReads = async (t: TestApp) =>
    Number(
      /crm_db_reads_total\{target="replica"[^}]*\} (\d+)/.exec(await t.app.metrics.registry.metrics())?.[1] ??
        0,
    );

  beforeAll(async () => {
    pair = await startPostgresPair();
    const admin = new Client({ connectionString: pair.primaryUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    const settings = {
      DATABASE_URL: url(pair.primaryUrl),
      DATABASE_REPLICA_URLS: url(pair.replicaUrl),
      DATABASE_REPLICA_MAX_LAG_MS: '1500',
      DATABASE_REPLICA_CHECK_MS: '100',
    };
    gateway = await startTestApp(settings, 'gateway', { migrate: true });
    second = await startTestApp(settings);
    org = await buildSharingOrg(gateway.app);
    await waitFor(async () => (await replicaLeads(org.users.mgr.token)).length > 0);
  }, 120_000);

  afterAll(async () => {
    await second?.stop();
    await gateway?.stop();
    await pair?.stop();
  });

  /** The leads the manager (who reads the reps' leads through the role tree) sees. */
  async function replicaLeads(token: string): Promise<string[]> {
    const answer = await second.gql(LEADS, {}, token);
    const items = (answer.data?.leads.items ?? []) as Array<{ lastName: string }>;
    return items.map((lead) => lead.lastName);
  }

  async function exportedIds(token: string): Promise<string[]> {
    const response = await fetch(`${second.url}/exports/stream?entityType=LEAD&fields=id&format=CSV`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    return (await response.text()).trim().split('\n').slice(1);
  }

  async function replay(paused: boolean): Promise<void> {
    await pair.psql(
      'replica',
      `SELECT ${paused ? 'pg_wal_replay_pause' : 'pg_wal_replay_resume'}()`,
      database,
    );
  }

  it('a writer reads its own write at once while the replica holds it back; others see it once replayed', async () => {
    const before = await replicaReads(second);
    expect((await second.gql(LEADS, {}, org.users.mgr.token)).data!.leads.total).toBeGreaterThan(0);
    expect(await replicaReads(second)).toBeGreaterThan(before); // the manager's reads are the replica's

    await replay(true);
    try {
      const created = await gateway.gql(CREATE, { last: 'Paused-write' }, org.users.rep1.token);
      expect(created.errors).toBeUndefined();
      const id = created.data!.createLead.id as string;
      // The writer, through the OTHER gateway (its floor is in Redis): single read, list, search, report.
      const [one, list, found, counted] = await Promise.all([
        second.gql(LEAD, { id }, org.users.rep1.token),
        second.gql(LEADS, {}, org.users.rep1.token),
        second.gql(SEARCH, { text: 'Paused-write' }, org.users.rep1.token),
        second.gql(REPORT, {}, org.users.rep1.token),
      ]);
      expect(one.data!.lead).toEqual({ id, lastName: 'Paused-write' });
      expect(list.data!.leads.items.map((lead: { id: string }) => lead.id)).toContain(id);
      expect(found.data!.search.items.map((lead: { id: string }) => lead.id)).toContain(id);
      expect(counted.data!.report.aggregates[0].rows[0].value).toBe(list.data!.leads.total);
      // An export streamed by the writer (COPY in a snapshot of the same server) holds it; the manager's does not.
      expect(await exportedIds(org.users.rep1.token)).toContain(id);
      expect(await exportedIds(org.users.mgr.token)).not.toContain(id);
      // The manager may read it too, but reads the replica, which has not replayed it.
      expect(await replicaLeads(org.users.mgr.token)).not.toContain('Paused-write');
      expect((await second.gql(LEAD, { id }, org.users.mgr.token)).data!.lead).toBeNull();
    } finally {
      await replay(false);
    }
    await waitFor(async () => (await replicaLeads(org.users.mgr.token)).includes('Paused-write'));
  });

  it('skips a replica that lags past the limit, and reads it again once it catches up', async () => {
    await replay(true);
    let id: string;
    try {
      id = (await gateway.gql(CREATE, { last: 'Lagging' }, org.users.rep2.token)).data!.createLead.id;
      // Keep the primary writing so the paused replica's lag grows past 1.5 s.
      await waitFor(async () => {
        await gateway.app.dataSource.query('SELECT pg_switch_wal()').catch(() => undefined);
        await gateway.app.dataSource.query(`UPDATE companies SET name = name WHERE id = $1`, [org.companyId]);
        return (await second.gql(LEAD, { id }, org.users.mgr.token)).data!.lead !== null;
      });
    } finally {
      await replay(false);
    }
    // Caught up: the manager's reads are the replica's again.
    await waitFor(async () => {
      const before = await replicaReads(second);
      await second.gql(LEAD, { id: id! }, org.users.mgr.token);
      return (await replicaReads(second)) > before;
    });
  });

  it('fails no read while the replica stops mid-load, and goes back to it once it is up', async () => {
    let failures = 0;
    let reads = 0;
    let running = true;
    const load = (async () => {
      while (running) {
        const answers = await Promise.all([
          second.gql(LEADS, {}, org.users.mgr.token),
          second.gql(SEARCH, { text: null }, org.users.vp.token),
          second.gql(REPORT, {}, org.users.mgr.token),
        ]);
        for (const answer of answers) {
          reads++;
          if (answer.errors || answer.status !== 200) failures++;
        }
      }
    })();
    await sleep(500);
    await pair.stopReplica();
    await sleep(1000);
    await pair.startReplica();
    await sleep(500);
    running = false;
    await load;
    expect(reads).toBeGreaterThan(10);
    expect(failures).toBe(0);
    await waitFor(async () => {
      const before = await replicaReads(second);
      await second.gql(LEADS, {}, org.users.mgr.token);
      return (await replicaReads(second)) > before;
    });
  }, 60_000);
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(100);
  }
}
