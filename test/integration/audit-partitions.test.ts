import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import type { App } from '../../src/app';
import { createLogger } from '../../src/platform/logging/logger';
import { LocalFileStorage } from '../../src/platform/storage/local-file.storage';
import type { FileStorage } from '../../src/platform/storage/file-storage';
import { AuditPartitionManager } from '../../src/modules/audit/audit-partition.manager';
import { monthStart, partitionNameOf, type ArchiveStep } from '../../src/modules/audit/audit-partition.model';
import { createTenant, type TestTenant } from '../helpers/fixtures';
import { startTestApp, type GraphQLResponse, type TestApp } from '../helpers/test-app';

const logger = createLogger({ level: 'silent', name: 'audit-test' });

/** When an archive store's write fails: before it reads a byte, after its first chunk, or once it has read it all. */
type WriteFailure = 'before reading' | 'midway' | 'after reading everything';

/** A real local store whose puts fail at a chosen moment (what a full disk, a lost bucket or a crash may do). */
function failingStorage(directory: string, when: WriteFailure): FileStorage {
  const real = new LocalFileStorage(directory);
  const failure = () => Object.assign(new Error(`storage write failed ${when}`), { code: 'EIO' });
  // Every other method is the real store's: reads, stats and deletes see the real directory.
  const store = Object.create(real) as FileStorage;
  store.put = async (_key: string, body: Readable): Promise<never> => {
    if (when === 'before reading') throw failure();
    for await (const _chunk of body) {
      if (when === 'midway') throw failure();
    }
    throw failure();
  };
  return store;
}

function manager(
  app: App,
  archives: string | FileStorage,
  beforeArchiveStep?: (step: ArchiveStep, name: string) => void,
  bulkLoad: 'copy' | 'insert' = 'copy',
): AuditPartitionManager {
  return new AuditPartitionManager({
    dataSource: app.dataSource,
    archives: typeof archives === 'string' ? new LocalFileStorage(archives) : archives,
    logger,
    compressionLevel: 6,
    lockTimeoutMs: 200,
    detachAttempts: 2,
    beforeArchiveStep,
    bulkLoad,
  });
}

/** Audit rows with awkward values (quotes, commas, newlines, unicode, nulls) spread over one month. */
async function insertAuditRows(app: App, companyId: string, month: Date, count: number): Promise<void> {
  await app.dataSource.query(
    `INSERT INTO audit_logs (company_id, actor_id, action, object_type, object_id, occurred_at, changes)
     SELECT $1, CASE WHEN n % 3 = 0 THEN NULL ELSE gen_random_uuid() END, 'UPDATE', 'LEAD', gen_random_uuid(),
            $2::timestamptz + (n * interval '1 hour'),
            jsonb_build_object('note', jsonb_build_object('from', 'a "quoted", comma' || chr(10) || 'line é ☃', 'to', n))
       FROM generate_series(1, $3) AS n`,
    [companyId, month.toISOString(), count],
  );
}

/** The month's rows as one digest: equal digests mean the same rows, byte for byte. */
async function digestOfMonth(
  app: App,
  companyId: string,
  month: Date,
): Promise<{ rows: number; md5: string }> {
  const [row] = await app.dataSource.query<Array<{ rows: number; md5: string }>>(
    `SELECT count(*)::int AS rows, md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) AS md5
       FROM (SELECT id, occurred_at, company_id, actor_id, action, object_type, object_id, changes
               FROM audit_logs WHERE company_id = $1 AND occurred_at >= $2 AND occurred_at < $3) t`,
    [companyId, month.toISOString(), monthStart(month, 1).toISOString()],
  );
  return row!;
}

async function tableState(app: App, name: string): Promise<'attached' | 'detached' | 'missing'> {
  const [row] = await app.dataSource.query<Array<{ exists: boolean; attached: boolean }>>(
    `SELECT to_regclass($1) IS NOT NULL AS exists,
            EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass($1) AND inhparent = 'audit_logs'::regclass) AS attached`,
    [name],
  );
  return !row!.exists ? 'missing' : row!.attached ? 'attached' : 'detached';
}

async function defaultRows(app: App): Promise<number> {
  const [row] = await app.dataSource.query<Array<{ n: number }>>(
    'SELECT count(*)::int AS n FROM audit_logs_default',
  );
  return row!.n;
}

describe('audit partitions: created ahead, archived with verification, restored', () => {
  let t: TestApp;
  let tenant: TestTenant;
  let archiveDir: string;

  beforeAll(async () => {
    t = await startTestApp();
    tenant = await createTenant(t.app);
    archiveDir = mkdtempSync(join(tmpdir(), 'audit-archive-'));
  });
  afterAll(async () => {
    await t.stop();
    rmSync(archiveDir, { recursive: true, force: true });
  });

  it('creates months ahead idempotently, once, when two callers race', async () => {
    const [a, b] = [manager(t.app, archiveDir), manager(t.app, archiveDir)];
    const reports = await Promise.all([a.ensurePartitions(6), b.ensurePartitions(6)]);
    const names = Array.from({ length: 7 }, (_, i) => partitionNameOf(monthStart(new Date(), i)));
    for (const name of names) expect(await tableState(t.app, name)).toBe('attached');
    // Whatever one created, the other found: no month was created twice, and a third run creates nothing.
    const created = reports.flatMap((r) => r.created.map((c) => c.name));
    expect(new Set(created).size).toBe(created.length);
    expect((await a.ensurePartitions(6)).created).toEqual([]);
  });

  it('moves rows that landed in the default partition into their new month, in one step', async () => {
    const month = monthStart(new Date(), 9); // beyond every partition made so far: rows go to the default
    await insertAuditRows(t.app, tenant.companyId, month, 40);
    expect(await defaultRows(t.app)).toBe(40);
    const before = await digestOfMonth(t.app, tenant.companyId, month);

    const report = await manager(t.app, archiveDir).ensurePartitions(3);

    expect(report.created).toEqual([{ name: partitionNameOf(month), movedFromDefault: 40 }]);
    expect(report.defaultRows).toBe(0);
    expect(await defaultRows(t.app)).toBe(0);
    const [where] = await t.app.dataSource.query<Array<{ partition: string; n: number }>>(
      `SELECT tableoid::regclass::text AS partition, count(*)::int AS n FROM audit_logs
        WHERE company_id = $1 AND occurred_at >= $2 GROUP BY 1`,
      [tenant.companyId, month.toISOString()],
    );
    expect(where).toEqual({ partition: partitionNameOf(month), n: 40 });
    expect(await digestOfMonth(t.app, tenant.companyId, month)).toEqual(before);
  });

  it('archives a month past retention to a verified gzip CSV, drops it, and restores the same rows', async () => {
    const month = monthStart(new Date(), -15);
    const name = partitionNameOf(month);
    await insertAuditRows(t.app, tenant.companyId, month, 300);
    const partitions = manager(t.app, archiveDir);
    await partitions.ensurePartitions(3); // the old month's rows get their partition
    expect(await tableState(t.app, name)).toBe('attached');
    const before = await digestOfMonth(t.app, tenant.companyId, month);
    expect(before.rows).toBe(300);

    const report = await partitions.archiveOldPartitions(12);

    expect(report.failed).toEqual([]);
    const archived = report.archived.find((a) => a.partitionName === name)!;
    expect(archived).toMatchObject({ rowCount: 300, status: 'ARCHIVED' });
    expect(archived.location).toMatch(new RegExp(`^${name}\\.\\d+\\.csv\\.gz$`));
    expect(await tableState(t.app, name)).toBe('missing');
    expect((await digestOfMonth(t.app, tenant.companyId, month)).rows).toBe(0);
    // The file is what the record says: its size, its sha256, a header and 300 CSV records that hold the values.
    const file = readFileSync(join(archiveDir, archived.location));
    expect(file.length).toBe(archived.bytes);
    const { createHash } = await import('node:crypto');
    expect(createHash('sha256').update(file).digest('hex')).toBe(archived.sha256);
    const csv = gunzipSync(file).toString('utf8');
    expect(csv.split('\n')[0]).toBe(
      'id,occurred_at,company_id,actor_id,action,object_type,object_id,changes',
    );
    expect(csv).toContain('line é ☃');
    const [recorded] = await t.app.dataSource.query<Array<{ row_count: string; sha256: string }>>(
      `SELECT row_count, sha256 FROM audit_archives WHERE partition_name = $1`,
      [name],
    );
    expect(recorded).toEqual({ row_count: '300', sha256: archived.sha256 });

    const restored = await partitions.restoreArchive(month);
    expect(restored).toMatchObject({ status: 'RESTORED', rowCount: 300 });
    expect(await tableState(t.app, name)).toBe('attached');
    expect(await digestOfMonth(t.app, tenant.companyId, month)).toEqual(before);
    // A restored month stays until an operator archives it on purpose; restoring twice is refused.
    expect((await partitions.archiveOldPartitions(12)).keptRestored).toContain(name);
    await expect(partitions.restoreArchive(month)).rejects.toThrow(/already has a table/);
  });

  it.each<ArchiveStep>(['write', 'verify', 'drop'])(
    'a failure injected before %s (after the detach) loses nothing: the month is attached again, no file left',
    async (failingStep) => {
      const month = monthStart(new Date(), -20 - ['write', 'verify', 'drop'].indexOf(failingStep));
      const name = partitionNameOf(month);
      await insertAuditRows(t.app, tenant.companyId, month, 25);
      await manager(t.app, archiveDir).ensurePartitions(3);
      const before = await digestOfMonth(t.app, tenant.companyId, month);
      const steps: string[] = [];
      const failing = manager(t.app, archiveDir, (step, partition) => {
        if (partition !== name) return;
        steps.push(step);
        if (step === failingStep) throw new Error(`injected before ${step}`);
      });

      const report = await failing.archiveOldPartitions(12);

      expect(report.failed).toContainEqual(
        expect.objectContaining({ partitionName: name, step: failingStep, rowsKept: 'attached' }),
      );
      expect(steps[0]).toBe('detach');
      expect(await tableState(t.app, name)).toBe('attached');
      expect(await digestOfMonth(t.app, tenant.companyId, month)).toEqual(before);
      expect(readdirSync(archiveDir).filter((file) => file.startsWith(name))).toEqual([]);
      const recorded = await t.app.dataSource.query(
        'SELECT 1 FROM audit_archives WHERE partition_name = $1',
        [name],
      );
      expect(recorded).toEqual([]);
      // The next, healthy run archives it.
      const next = await manager(t.app, archiveDir).archiveOldPartitions(12);
      expect(next.archived.map((a) => a.partitionName)).toContain(name);
      expect(await tableState(t.app, name)).toBe('missing');
    },
  );

  it('a real write failure (archive directory unusable) keeps the rows; a crash after detach is resumed', async () => {
    const month = monthStart(new Date(), -30);
    const name = partitionNameOf(month);
    await insertAuditRows(t.app, tenant.companyId, month, 10);
    await manager(t.app, archiveDir).ensurePartitions(3);
    const before = await digestOfMonth(t.app, tenant.companyId, month);
    // Whatever error the store raises and whenever it raises it, the month stays attached with every row.
    const notADirectory = join(archiveDir, 'plain-file');
    writeFileSync(notADirectory, 'x');
    const failingStores: Array<[string, FileStorage]> = [
      ['a directory that is a plain file', new LocalFileStorage(notADirectory)],
      ...(['before reading', 'midway', 'after reading everything'] as const).map(
        (when) => [`a write failing ${when}`, failingStorage(archiveDir, when)] as [string, FileStorage],
      ),
    ];
    for (const [label, store] of failingStores) {
      const report = await manager(t.app, store).archiveOldPartitions(12);
      expect({ label, failed: report.failed }).toEqual({
        label,
        failed: expect.arrayContaining([
          expect.objectContaining({ partitionName: name, step: 'write', rowsKept: 'attached' }),
        ]),
      });
      expect(await tableState(t.app, name)).toBe('attached');
      expect(await digestOfMonth(t.app, tenant.companyId, month)).toEqual(before);
      expect(readdirSync(archiveDir).filter((file) => file.startsWith(name))).toEqual([]);
    }

    // A process that died right after detaching leaves the table detached while writes go on: a late row for the
    // month lands in the default partition, ensure leaves the detached table alone, archive resumes it.
    await t.app.dataSource.query(`ALTER TABLE audit_logs DETACH PARTITION ${name}`);
    await insertAuditRows(t.app, tenant.companyId, month, 1);
    const ensured = await manager(t.app, archiveDir).ensurePartitions(3);
    expect(ensured.skipped).toEqual([name]);
    expect(ensured.defaultRows).toBe(1);
    const resumed = await manager(t.app, archiveDir).archiveOldPartitions(12);
    expect(resumed.archived).toContainEqual(expect.objectContaining({ partitionName: name, rowCount: 10 }));
    // The late row gets its partition, and the next archive folds the first archive in: one archive of 11 rows.
    expect((await manager(t.app, archiveDir).ensurePartitions(3)).created).toEqual([
      { name, movedFromDefault: 1 },
    ]);
    const merged = await manager(t.app, archiveDir).archiveOldPartitions(12);
    expect(merged.archived).toContainEqual(expect.objectContaining({ partitionName: name, rowCount: 11 }));
    expect(readdirSync(archiveDir).filter((file) => file.startsWith(name))).toHaveLength(1);
    await manager(t.app, archiveDir).restoreArchive(month);
    expect((await digestOfMonth(t.app, tenant.companyId, month)).rows).toBe(11);
  });

  it('restores by batched INSERTs (the embedded database path) to the same rows, NULLs and empty strings included', async () => {
    const month = monthStart(new Date(), -40);
    await insertAuditRows(t.app, tenant.companyId, month, 2_500);
    await t.app.dataSource.query(
      `INSERT INTO audit_logs (company_id, action, object_type, occurred_at, changes) VALUES ($1, '', 'LEAD', $2, NULL)`,
      [tenant.companyId, month.toISOString()],
    );
    await manager(t.app, archiveDir).ensurePartitions(3);
    const before = await digestOfMonth(t.app, tenant.companyId, month);
    expect((await manager(t.app, archiveDir).archiveOldPartitions(12)).failed).toEqual([]);
    await manager(t.app, archiveDir, undefined, 'insert').restoreArchive(month);
    expect(await digestOfMonth(t.app, tenant.companyId, month)).toEqual(before);
  });

  it('a current-month audit query reads one partition (EXPLAIN)', async () => {
    const plan = await t.app.services.auditLog.statement(
      {
        userId: tenant.admin.id,
        companyId: tenant.companyId,
        roleId: null,
        isAdmin: true,
        tokenExpiresAt: 0,
      },
      {},
    );
    const rows = await t.app.dataSource.query<Array<{ 'QUERY PLAN': string }>>(
      `EXPLAIN ${plan.sql}`,
      plan.params,
    );
    const text = rows.map((r) => r['QUERY PLAN']).join('\n');
    const scanned = new Set(text.match(/audit_logs_(?:y\d{4}m\d{2}|default)/g));
    expect([...scanned]).toEqual([partitionNameOf(monthStart(new Date()))]);
  });
});

describe('auditLog query and maintenance over GraphQL', () => {
  let t: TestApp;
  let worker: TestApp;
  let tenant: TestTenant;

  const operatorId = randomUUID();
  let operatorToken: string;

  beforeAll(async () => {
    const queuePrefix = `test-${randomUUID().slice(0, 8)}`;
    const env = { PLATFORM_OPERATOR_USER_IDS: `${randomUUID()}, ${operatorId.toUpperCase()}` };
    t = await startTestApp(env, 'gateway', { queuePrefix });
    worker = await startTestApp(env, 'worker', { queuePrefix }); // workers own the schedules
    tenant = await createTenant(t.app);
    await t.app.dataSource.query(
      `INSERT INTO users (id, company_id, email, name, role_id, is_admin) VALUES ($1, $2, $3, 'Ops', $4, true)`,
      [operatorId, tenant.companyId, `ops-${operatorId}@platform.test`, tenant.roleIds.ceo],
    );
    operatorToken = await t.app.services.tokens.mint(operatorId, tenant.companyId);
  });
  afterAll(async () => {
    await worker.stop();
    await t.stop();
  });

  async function createLead(token: string, lastName: string): Promise<string> {
    const res = await t.gql(
      `mutation($n: String!) { createLead(input: { firstName: "A", lastName: $n }) { id } }`,
      { n: lastName },
      token,
    );
    expect(res.errors).toBeUndefined();
    return res.data!.createLead.id as string;
  }

  const LOG = `query($input: AuditLogInput) { auditLog(input: $input) {
    entries { id occurredAt actorId action objectType objectId changes } endCursor hasNextPage from to } }`;

  it('admins read everything newest first in keyset pages; reps only entries of records they may read', async () => {
    const adminLead = await createLead(tenant.admin.token, 'AdminOwned');
    const repLead = await createLead(tenant.rep.token, 'RepOwned');
    for (let i = 0; i < 4; i++) {
      const res = await t.gql(
        `mutation($id: ID!, $n: String!) { updateLead(id: $id, input: { lastName: $n }) { id } }`,
        { id: repLead, n: `Rep${i}` },
        tenant.rep.token,
      );
      expect(res.errors).toBeUndefined();
    }

    const seen: Array<{ id: string; occurredAt: string }> = [];
    let after: string | null = null;
    do {
      const page: GraphQLResponse = await t.gql(LOG, { input: { first: 2, after } }, tenant.admin.token);
      expect(page.errors).toBeUndefined();
      seen.push(...page.data!.auditLog.entries);
      after = page.data!.auditLog.endCursor;
      expect(page.data!.auditLog.hasNextPage).toBe(after !== null);
    } while (after);
    const [{ n }] = await t.app.dataSource.query<[{ n: number }]>(
      'SELECT count(*)::int AS n FROM audit_logs WHERE company_id = $1',
      [tenant.companyId],
    );
    expect(seen).toHaveLength(n);
    expect(new Set(seen.map((e) => e.id)).size).toBe(n);
    const times = seen.map((e) => Date.parse(e.occurredAt));
    expect(times).toEqual([...times].sort((x, y) => y - x));

    const rep = await t.gql(LOG, { input: { first: 100 } }, tenant.rep.token);
    expect(rep.errors).toBeUndefined();
    const repEntries = rep.data!.auditLog.entries as Array<{ objectId: string; action: string }>;
    expect(repEntries.map((e) => e.objectId)).toEqual(Array(5).fill(repLead));
    expect(repEntries.filter((e) => e.action === 'UPDATE')).toHaveLength(4);
    const admin = await t.gql(LOG, { input: { objectId: adminLead } }, tenant.admin.token);
    expect(admin.data!.auditLog.entries).toHaveLength(1);
    const hidden = await t.gql(LOG, { input: { objectId: adminLead } }, tenant.rep.token);
    expect(hidden.data!.auditLog.entries).toEqual([]);
    // Another company's admin sees none of it.
    const other = await createTenant(t.app);
    const foreign = await t.gql(LOG, { input: { objectId: repLead } }, other.admin.token);
    expect(foreign.data!.auditLog.entries).toEqual([]);
  });

  it.each([
    [{ from: '2026-05-01T00:00:00Z', to: '2026-04-01T00:00:00Z' }, 'input.from must not be after input.to'],
    [{ from: '2024-01-01T00:00:00Z', to: '2025-03-01T00:00:00Z' }, 'input.to must be within 13 months'],
    [{ action: 'DROP_TABLE' }, 'input.action must be one of'],
    [{ objectType: 'TABLES' }, 'input.objectType must be one of'],
    [{ after: 'bm90LWEtY3Vyc29y' }, 'input.after must be an endCursor'],
    [{ first: 0 }, 'input.first must be an integer between 1 and'],
  ])('rejects %j naming the field', async (input, message) => {
    const res = await t.gql(LOG, { input }, tenant.admin.token);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.message).toContain(message);
  });

  it('a long range is allowed for one object', async () => {
    const res = await t.gql(
      LOG,
      { input: { from: '2020-01-01T00:00:00Z', objectId: randomUUID() } },
      tenant.admin.token,
    );
    expect(res.errors).toBeUndefined();
  });

  it('platform operators run maintenance and list partitions; company admins and others may not', async () => {
    const run = await t.gql(
      'mutation { runAuditMaintenance { created { name } defaultRows failed { step } partitions { name month attached estimatedRows rows } } }',
      {},
      operatorToken,
    );
    expect(run.errors).toBeUndefined();
    expect(run.data!.runAuditMaintenance.defaultRows).toBe(0);
    // The estimate is named so; the old name (deprecated) says the same number.
    for (const partition of run.data!.runAuditMaintenance.partitions as Array<Record<string, unknown>>)
      expect(partition.rows).toBe(partition.estimatedRows);
    expect(
      (run.data!.runAuditMaintenance.partitions as Array<Record<string, unknown>>).find(
        (p) => p.month === null,
      ),
    ).toMatchObject({ estimatedRows: 0 });
    const months = (run.data!.runAuditMaintenance.partitions as Array<{ month: string | null }>).map(
      (p) => p.month,
    );
    expect(months).toContain(new Date().toISOString().slice(0, 7));
    // Partitions and archives hold every tenant's rows: a company admin is not enough.
    for (const token of [tenant.admin.token, tenant.rep.token]) {
      const denied = await t.gql('mutation { runAuditMaintenance { durationMs } }', {}, token);
      expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      const list = await t.gql('{ auditPartitions { name } }', {}, token);
      expect(list.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      const restore = await t.gql('mutation { restoreAuditArchive(month: "2020-01") { status } }', {}, token);
      expect(restore.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }
    const partitions = await t.gql('{ auditPartitions { name } }', {}, operatorToken);
    expect(partitions.errors).toBeUndefined();
    // The worker's scheduler runs it daily at 02:00 UTC (listed through the gateway).
    const jobs = await t.gql('{ scheduledJobs { name pattern nextRunAt } }', {}, tenant.admin.token);
    const job = (
      jobs.data!.scheduledJobs as Array<{ name: string; pattern: string; nextRunAt: string }>
    ).find((j) => j.name === 'audit.maintenance');
    expect(job?.pattern).toBe('0 2 * * *');
    expect(new Date(job!.nextRunAt).toISOString()).toMatch(/T02:00:00\.000Z$/);
  });
});
