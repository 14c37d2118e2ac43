import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import ExcelJS from 'exceljs';
import { Redis } from 'ioredis';
import type { App } from '../../src/app';
import { createTenant, type TestTenant } from '../helpers/fixtures';
import { spawnBuilt, testProcessEnv, type SpawnedProcess } from '../helpers/spawn-gateway';
import { startTestApp, wsClient, type TestApp } from '../helpers/test-app';

/** Values a CSV writer gets wrong: quotes, commas, line breaks, unicode, and cells a spreadsheet would run. */
const AWKWARD = [
  'Plain',
  'O"Brien, "Jr"',
  'Line\nbreak',
  'Ünïcødé ☃ 日本',
  '=SUM(A1:A9)',
  '+1 555',
  '-minus',
  '@handle',
  '\ttabbed',
];

const FIELDS = ['id', 'firstName', 'lastName', 'status', 'score', 'estimatedValue', 'createdAt', 'ownerName'];

interface ReferenceRow {
  id: string;
  first_name: string;
  last_name: string;
  status: string;
  score: number;
  estimated_value: string | null;
  created_at: Date;
  owner_name: string;
}

async function seedLeads(app: App, tenant: TestTenant): Promise<{ sharedWithRep: string }> {
  const db = app.dataSource;
  for (const [i, lastName] of AWKWARD.entries())
    await db.query(
      `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score, estimated_value, created_at)
       VALUES ($1, $2, 'Rep', $3, 'NEW', $4, $5, now() - make_interval(mins => $4))`,
      [tenant.companyId, tenant.rep.id, lastName, i, i % 2 === 0 ? 1234.5 + i : null],
    );
  const [shared] = await db.query<[{ id: string }]>(
    `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score)
     SELECT $1, $2, 'Admin', 'Admin ' || n, 'QUALIFIED', n FROM generate_series(1, 6) AS n RETURNING id`,
    [tenant.companyId, tenant.admin.id],
  );
  await db.query(
    `INSERT INTO record_shares (company_id, object_type, record_id, grantee_type, grantee_id, access_level)
     VALUES ($1, 'LEAD', $2, 'USER', $3, 'READ')`,
    [tenant.companyId, shared.id, tenant.rep.id],
  );
  return { sharedWithRep: shared.id };
}

/** What the rep may read, straight from the tables: own leads and the one shared with them (PRIVATE default). */
async function repReference(
  app: App,
  tenant: TestTenant,
  sharedId: string,
): Promise<Map<string, ReferenceRow>> {
  const rows = await app.dataSource.query<ReferenceRow[]>(
    `SELECT l.id, l.first_name, l.last_name, l.status, l.score, l.estimated_value, l.created_at, u.name AS owner_name
       FROM leads l JOIN users u ON u.id = l.owner_id
      WHERE l.company_id = $1 AND (l.owner_id = $2 OR l.id = $3)`,
    [tenant.companyId, tenant.rep.id, sharedId],
  );
  return new Map(rows.map((row) => [row.id, row]));
}

const neutralised = (value: string) => (/^[=+\-@\t\r]/.test(value) ? `'${value}` : value);

async function waitForStatus(t: TestApp, token: string, id: string, statuses: string[], timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await t.gql(
      `query($id: ID!) { exportJob(id: $id) { id status progress rowsExported totalRows bytesWritten sha256 downloadUrl error attempts } }`,
      { id },
      token,
    );
    const job = res.data?.exportJob as Record<string, unknown> | undefined;
    if (job && statuses.includes(job.status as string)) return job;
    if (Date.now() > deadline) throw new Error(`export ${id} still ${JSON.stringify(res)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const START = `mutation($input: StartExportInput!) { startExport(input: $input) { id status } }`;

describe('export jobs: formats, visibility, downloads', () => {
  let t: TestApp;
  let worker: TestApp;
  let tenant: TestTenant;
  let reference: Map<string, ReferenceRow>;

  beforeAll(async () => {
    const queuePrefix = `test-${randomUUID().slice(0, 8)}`;
    t = await startTestApp({}, 'gateway', { queuePrefix });
    worker = await startTestApp({}, 'worker', { queuePrefix });
    tenant = await createTenant(t.app);
    const { sharedWithRep } = await seedLeads(t.app, tenant);
    reference = await repReference(t.app, tenant, sharedWithRep);
  });
  afterAll(async () => {
    await worker.stop();
    await t.stop();
  });

  async function exportAs(
    token: string,
    format: string,
    compression: string,
    extra: Record<string, unknown> = {},
  ) {
    const started = await t.gql(
      START,
      {
        input: {
          entityType: 'LEAD',
          format,
          compression,
          fields: FIELDS,
          sort: [{ field: 'lastName' }],
          ...extra,
        },
      },
      token,
    );
    expect(started.errors).toBeUndefined();
    const job = await waitForStatus(t, token, started.data!.startExport.id as string, [
      'COMPLETED',
      'FAILED',
    ]);
    expect(job).toMatchObject({ status: 'COMPLETED', error: null, progress: 1 });
    const response = await fetch(`${t.url}${job.downloadUrl as string}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    const raw = Buffer.from(await response.arrayBuffer());
    expect(raw.length).toBe(job.bytesWritten);
    expect(response.headers.get('etag')).toBe(`"${job.sha256 as string}"`);
    return { job, response, body: compression === 'GZIP' ? gunzipSync(raw) : raw };
  }

  /** Every format's rows as records keyed by field name, for one comparison. */
  async function records(format: string, body: Buffer): Promise<Array<Record<string, unknown>>> {
    if (format === 'CSV') return parse<Record<string, string>>(body, { columns: true });
    if (format === 'JSON') return JSON.parse(body.toString('utf8')) as Array<Record<string, unknown>>;
    if (format === 'NDJSON')
      return body
        .toString('utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    const workbook = new ExcelJS.Workbook();
    await workbook.xlsx.load(body as never);
    const sheet = workbook.worksheets[0]!;
    const header = (sheet.getRow(1).values as unknown[]).slice(1) as string[];
    expect(header).toEqual(FIELDS);
    const out: Array<Record<string, unknown>> = [];
    sheet.eachRow((row, number) => {
      if (number === 1) return;
      const values = (row.values as unknown[]).slice(1);
      out.push(Object.fromEntries(FIELDS.map((field, i) => [field, values[i] ?? null])));
    });
    return out;
  }

  it.each([
    ['CSV', 'NONE'],
    ['CSV', 'GZIP'],
    ['JSON', 'NONE'],
    ['JSON', 'GZIP'],
    ['NDJSON', 'GZIP'],
    ['XLSX', 'NONE'],
    ['XLSX', 'GZIP'],
  ])('%s (%s) holds exactly the rows the rep may read, with their values', async (format, compression) => {
    const { body, response, job } = await exportAs(tenant.rep.token, format, compression);
    expect(response.headers.get('content-type')).toContain(compression === 'GZIP' ? 'application/gzip' : '');
    const rows = await records(format, body);
    expect(rows.map((r) => r.id).sort()).toEqual([...reference.keys()].sort());
    expect(job.rowsExported).toBe(reference.size);
    expect(job.totalRows).toBe(reference.size);
    // Sorted by lastName, id breaking ties.
    const sortedNames = [...reference.values()]
      .sort((a, b) => (a.last_name < b.last_name ? -1 : a.last_name > b.last_name ? 1 : a.id < b.id ? -1 : 1))
      .map((r) => r.id);
    expect(rows.map((r) => r.id)).toEqual(sortedNames);
    for (const row of rows) {
      const expected = reference.get(row.id as string)!;
      if (format === 'CSV') {
        expect(row.lastName).toBe(neutralised(expected.last_name));
        expect(row.score).toBe(String(expected.score));
        expect(row.estimatedValue).toBe(expected.estimated_value === null ? '' : expected.estimated_value);
        expect(row.createdAt).toBe(expected.created_at.toISOString());
      } else if (format === 'XLSX') {
        expect(row.lastName).toBe(expected.last_name); // a cell holds text, never a formula
        expect(row.score).toBe(expected.score);
        expect(row.estimatedValue).toBe(
          expected.estimated_value === null ? null : Number(expected.estimated_value),
        );
        expect((row.createdAt as Date).toISOString()).toBe(expected.created_at.toISOString());
      } else {
        expect(row.lastName).toBe(expected.last_name);
        expect(row.score).toBe(expected.score);
        expect(row.estimatedValue).toBe(
          expected.estimated_value === null ? null : Number(expected.estimated_value),
        );
        expect(row.createdAt).toBe(expected.created_at.toISOString());
      }
      expect(row.ownerName).toBe(expected.owner_name);
    }
  });

  it('filters narrow the rows; another user cannot see, download or cancel the job (404, not 403)', async () => {
    const { job, body } = await exportAs(tenant.rep.token, 'CSV', 'NONE', {
      filters: [{ field: 'score', op: 'RANGE', from: 2, to: 5 }],
    });
    const rows = parse<Record<string, string>>(body, { columns: true });
    const expected = [...reference.values()].filter((r) => r.score >= 2 && r.score <= 5).map((r) => r.id);
    expect(rows.map((r) => r.id).sort()).toEqual(expected.sort());

    const other = tenant.admin; // same company, different user
    const stranger = await createTenant(t.app);
    for (const token of [other.token, stranger.admin.token]) {
      const download = await fetch(`${t.url}/exports/${job.id as string}/download`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(download.status).toBe(404);
      const read = await t.gql(`query($id: ID!) { exportJob(id: $id) { id } }`, { id: job.id }, token);
      expect(read.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    }
    const anonymous = await fetch(`${t.url}/exports/${job.id as string}/download`);
    expect(anonymous.status).toBe(401);
  });

  it('a Range request returns exactly those bytes (206), so a broken download resumes', async () => {
    const { job } = await exportAs(tenant.rep.token, 'CSV', 'GZIP');
    const url = `${t.url}${job.downloadUrl as string}`;
    const auth = { authorization: `Bearer ${tenant.rep.token}` };
    const whole = Buffer.from(await (await fetch(url, { headers: auth })).arrayBuffer());
    const part = await fetch(url, { headers: { ...auth, range: 'bytes=10-49' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 10-49/${whole.length}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(whole.subarray(10, 50));
    const rest = await fetch(url, { headers: { ...auth, range: 'bytes=50-' } });
    expect(Buffer.concat([whole.subarray(0, 50), Buffer.from(await rest.arrayBuffer())])).toEqual(whole);
    const beyond = await fetch(url, { headers: { ...auth, range: `bytes=${whole.length + 10}-` } });
    expect(beyond.status).toBe(416);
    // The answer says how large the file is (RFC 9110), so the client can ask again within it.
    expect(beyond.headers.get('content-range')).toBe(`bytes */${whole.length}`);
    expect(
      ((await beyond.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0],
    ).toMatchObject({ extensions: { code: 'RANGE_NOT_SATISFIABLE' } });
    // A suffix range and overlapping ranges (combined into one) are served; a malformed header is ignored.
    const tail = await fetch(url, { headers: { ...auth, range: 'bytes=-20' } });
    expect(tail.status).toBe(206);
    expect(tail.headers.get('content-range')).toBe(
      `bytes ${whole.length - 20}-${whole.length - 1}/${whole.length}`,
    );
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(whole.subarray(whole.length - 20));
    const overlapping = await fetch(url, { headers: { ...auth, range: 'bytes=0-9,5-19' } });
    expect(overlapping.status).toBe(206);
    expect(Buffer.from(await overlapping.arrayBuffer())).toEqual(whole.subarray(0, 20));
    const malformed = await fetch(url, { headers: { ...auth, range: 'bytes=oops' } });
    expect(malformed.status).toBe(200);
    expect(Buffer.from(await malformed.arrayBuffer())).toEqual(whole);
  });

  it.each([
    ['report', 'CSV', 'GZIP', 'report.csv.gz'],
    ['report', 'XLSX', 'NONE', 'report.xlsx'],
    ['report.csv', 'CSV', 'GZIP', 'report.csv.gz'],
    ['report.csv.gz', 'CSV', 'GZIP', 'report.csv.gz'],
    ['Q3 pipeline.ndjson', 'NDJSON', 'NONE', 'Q3 pipeline.ndjson'],
  ])('a custom fileName %j (%s, %s) is served as %j', async (fileName, format, compression, served) => {
    const { job, response } = await exportAs(tenant.rep.token, format, compression, { fileName });
    expect(response.headers.get('content-disposition')).toBe(
      `attachment; filename="${served}"; filename*=UTF-8''${encodeURIComponent(served)}`,
    );
    const view = await t.gql(
      `query($id: ID!) { exportJob(id: $id) { fileName } }`,
      { id: job.id },
      tenant.rep.token,
    );
    expect(view.data?.exportJob).toEqual({ fileName: served });
    const stream = await fetch(
      `${t.url}/exports/stream?${new URLSearchParams({ entityType: 'LEAD', format, compression, fields: 'id', fileName }).toString()}`,
      { headers: { authorization: `Bearer ${tenant.rep.token}` } },
    );
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-disposition')).toContain(`filename="${served}"`);
    await stream.arrayBuffer();
  });

  it.each([
    [{ entityType: 'LEAD', format: 'CSV', fields: [] }, 'input.fields must name at least one field'],
    [{ entityType: 'LEAD', format: 'CSV', fields: ['id', 'id'] }, 'input.fields[1] repeats id'],
    [{ entityType: 'LEAD', format: 'CSV', fields: ['passwordHash'] }, 'input.fields[0] must be one of'],
    [{ entityType: 'LEAD', format: 'CSV', fields: ['accountName'] }, 'input.fields[0] must be one of'],
    [
      {
        entityType: 'LEAD',
        format: 'CSV',
        fields: ['id'],
        filters: [{ field: 'score', op: 'RANGE', from: 9, to: 1 }],
      },
      'input.filters[0].from must not be greater than to',
    ],
    [
      {
        entityType: 'LEAD',
        format: 'CSV',
        fields: ['id'],
        filters: [{ field: 'status', op: 'EQ', value: 'NOPE' }],
      },
      'input.filters[0].value must be one of',
    ],
    [
      { entityType: 'LEAD', format: 'CSV', fields: ['id'], sort: [{ field: 'description' }] },
      'input.sort[0].field must be one of',
    ],
    [
      { entityType: 'LEAD', format: 'CSV', fields: ['id'], fileName: '../etc/passwd' },
      'input.fileName must be',
    ],
  ])('rejects %j with a clear error and enqueues nothing', async (input, message) => {
    const before = await t.app.dataSource.query<[{ n: number }]>(
      'SELECT count(*)::int AS n FROM export_jobs WHERE owner_id = $1',
      [tenant.rep.id],
    );
    const res = await t.gql(START, { input }, tenant.rep.token);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.message).toContain(message);
    const after = await t.app.dataSource.query<[{ n: number }]>(
      'SELECT count(*)::int AS n FROM export_jobs WHERE owner_id = $1',
      [tenant.rep.id],
    );
    expect(after[0].n).toBe(before[0].n);
  });

  it('an unfinished job cannot be downloaded; a finished one cannot be cancelled', async () => {
    const [queued] = await t.app.dataSource.query<[{ id: string }]>(
      `INSERT INTO export_jobs (company_id, owner_id, entity_type, format, compression, fields, file_name, status)
       VALUES ($1, $2, 'LEAD', 'CSV', 'NONE', '{id}', 'x.csv', 'FAILED') RETURNING id`,
      [tenant.companyId, tenant.rep.id],
    );
    const download = await fetch(`${t.url}/exports/${queued.id}/download`, {
      headers: { authorization: `Bearer ${tenant.rep.token}` },
    });
    expect(download.status).toBe(409);
    const cancel = await t.gql(
      `mutation($id: ID!) { cancelExport(id: $id) { id } }`,
      { id: queued.id },
      tenant.rep.token,
    );
    expect(cancel.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect(cancel.errors?.[0]?.message).toContain(
      'is FAILED; only a queued or running export can be cancelled',
    );
  });

  it('the direct route streams a small export under the same visibility, gzip when asked', async () => {
    const query = new URLSearchParams({
      entityType: 'LEAD',
      format: 'CSV',
      fields: 'id,lastName',
      compression: 'GZIP',
    });
    const response = await fetch(`${t.url}/exports/stream?${query.toString()}`, {
      headers: { authorization: `Bearer ${tenant.rep.token}` },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/gzip');
    const rows = parse<Record<string, string>>(gunzipSync(Buffer.from(await response.arrayBuffer())), {
      columns: true,
    });
    expect(rows.map((r) => r.id).sort()).toEqual([...reference.keys()].sort());
    const bad = await fetch(`${t.url}/exports/stream?entityType=LEAD&fields=secret`, {
      headers: { authorization: `Bearer ${tenant.rep.token}` },
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: Array<{ message: string }> }).errors[0]!.message).toContain(
      'query.fields[0] must be one of',
    );
  });
});

describe('export jobs without Redis (in-process queue and pub/sub): the gateway runs them', () => {
  let t: TestApp;
  let tenant: TestTenant;

  beforeAll(async () => {
    // A small cap for the direct route, so a capped answer is cheap to make.
    t = await startTestApp({ REDIS_URL: '', EXPORT_STREAM_MAX_ROWS: '5' });
    tenant = await createTenant(t.app);
  });
  afterAll(() => t.stop());

  it('the direct route says when its cap cut the answer short, in headers sent before the rows', async () => {
    await t.app.dataSource.query(
      `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score)
       SELECT $1, $2, 'Capped', 'Capped ' || n, 'NEW', n FROM generate_series(1, 7) AS n`,
      [tenant.companyId, tenant.rep.id],
    );
    const stream = async (params: Record<string, string>) => {
      const query = new URLSearchParams({ entityType: 'LEAD', format: 'CSV', fields: 'id,score', ...params });
      const response = await fetch(`${t.url}/exports/stream?${query.toString()}`, {
        headers: { authorization: `Bearer ${tenant.rep.token}` },
      });
      const rows = parse<Record<string, string>>(await response.text(), { columns: true });
      const header = (name: string) => response.headers.get(name);
      return {
        status: response.status,
        rows: rows.length,
        truncated: header('x-export-truncated'),
        count: header('x-export-rows'),
        limit: header('x-export-row-limit'),
      };
    };
    // 7 readable leads, no limit: the cap (5) cuts the answer, and the headers say so.
    expect(await stream({})).toEqual({ status: 200, rows: 5, truncated: 'true', count: '5', limit: '5' });
    // Everything fits: not truncated, and the row count is exact.
    const filtered = { filters: JSON.stringify([{ field: 'score', op: 'LTE', value: 3 }]) };
    expect(await stream(filtered)).toEqual({
      status: 200,
      rows: 3,
      truncated: 'false',
      count: '3',
      limit: '5',
    });
    // A limit of the caller's own: truncated says more matched than it let through.
    expect(await stream({ limit: '2' })).toEqual({
      status: 200,
      rows: 2,
      truncated: 'true',
      count: '2',
      limit: '2',
    });
    expect(await stream({ ...filtered, limit: '3' })).toMatchObject({ rows: 3, truncated: 'false' });
    // Past the cap is refused, naming it.
    const over = await fetch(`${t.url}/exports/stream?entityType=LEAD&fields=id&limit=6`, {
      headers: { authorization: `Bearer ${tenant.rep.token}` },
    });
    expect(over.status).toBe(400);
    expect(((await over.json()) as { errors: Array<{ message: string }> }).errors[0]!.message).toContain(
      'query.limit must be an integer between 1 and 5',
    );
  });

  it("exports deals with their account's name only where the account is readable too", async () => {
    const db = t.app.dataSource;
    const [own] = await db.query<[{ id: string }]>(
      `INSERT INTO accounts (company_id, owner_id, name) VALUES ($1, $2, 'Rep Account') RETURNING id`,
      [tenant.companyId, tenant.rep.id],
    );
    const [hidden] = await db.query<[{ id: string }]>(
      `INSERT INTO accounts (company_id, owner_id, name) VALUES ($1, $2, 'Secret Account') RETURNING id`,
      [tenant.companyId, tenant.admin.id],
    );
    for (const [name, account] of [
      ['With own account', own.id],
      ['With hidden account', hidden.id],
    ])
      await db.query(
        `INSERT INTO deals (company_id, owner_id, account_id, name, stage, amount) VALUES ($1, $2, $3, $4, 'PROSPECTING', 10)`,
        [tenant.companyId, tenant.rep.id, account, name],
      );
    const started = await t.gql(
      START,
      {
        input: {
          entityType: 'DEAL',
          format: 'NDJSON',
          fields: ['name', 'accountName', 'ownerName'],
          sort: [{ field: 'name' }],
        },
      },
      tenant.rep.token,
    );
    expect(started.errors).toBeUndefined();
    const job = await waitForStatus(t, tenant.rep.token, started.data!.startExport.id as string, [
      'COMPLETED',
      'FAILED',
    ]);
    expect(job.status).toBe('COMPLETED');
    const response = await fetch(`${t.url}${job.downloadUrl as string}`, {
      headers: { authorization: `Bearer ${tenant.rep.token}` },
    });
    const lines = (await response.text())
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as unknown);
    const repName = (
      await db.query<[{ name: string }]>('SELECT name FROM users WHERE id = $1', [tenant.rep.id])
    )[0].name;
    expect(lines).toEqual([
      { name: 'With hidden account', accountName: null, ownerName: repName },
      { name: 'With own account', accountName: 'Rep Account', ownerName: repName },
    ]);
  });
});

describe('export jobs: progress on another gateway, cancel, limits', () => {
  let t: TestApp;
  let second: TestApp;
  let worker: TestApp;
  let tenant: TestTenant;

  beforeAll(async () => {
    const queuePrefix = `test-${randomUUID().slice(0, 8)}`;
    t = await startTestApp({ EXPORT_STREAM_MAX_ROWS: '200000' }, 'gateway', { queuePrefix });
    second = await startTestApp({}, 'gateway', { queuePrefix });
    worker = await startTestApp({ EXPORT_CONCURRENCY: '4' }, 'worker', { queuePrefix });
    tenant = await createTenant(t.app);
    await t.app.dataSource.query(
      `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score, description)
       SELECT $1, $2, 'Bulk', 'Lead ' || n, 'NEW', n % 100, repeat('x', 200) FROM generate_series(1, 120000) AS n`,
      [tenant.companyId, tenant.rep.id],
    );
  });
  afterAll(async () => {
    await worker.stop();
    await second.stop();
    await t.stop();
  });

  it('a graphql-ws subscriber on a second gateway hears the snapshot, rising progress and COMPLETED', async () => {
    const started = await t.gql(
      START,
      {
        input: {
          entityType: 'LEAD',
          format: 'CSV',
          compression: 'GZIP',
          fields: ['id', 'lastName', 'description'],
        },
      },
      tenant.rep.token,
    );
    const id = started.data!.startExport.id as string;
    const client = wsClient(second.url, `Bearer ${tenant.rep.token}`);
    const events: Array<{ status: string; progress: number; downloadUrl: string | null }> = [];
    await new Promise<void>((resolve, reject) => {
      client.subscribe(
        {
          query: `subscription($id: ID!) { exportProgress(jobId: $id) { status progress downloadUrl } }`,
          variables: { id },
        },
        {
          next: (value) => {
            if (value.errors) reject(new Error(JSON.stringify(value.errors)));
            events.push(value.data!.exportProgress as never);
          },
          error: reject,
          complete: resolve,
        },
      );
    });
    await client.dispose();
    expect(events.length).toBeGreaterThanOrEqual(3);
    const progress = events.map((e) => e.progress);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(
      events.filter((e) => e.status === 'RUNNING' && e.progress > 0 && e.progress < 1).length,
    ).toBeGreaterThan(0);
    expect(events.at(-1)).toEqual({
      status: 'COMPLETED',
      progress: 1,
      downloadUrl: `/exports/${id}/download`,
    });

    // A subscriber that joins after the end gets the final state at once; another user gets NOT_FOUND.
    const late = await new Promise<unknown[]>((resolve, reject) => {
      const seen: unknown[] = [];
      wsClient(second.url, `Bearer ${tenant.rep.token}`).subscribe(
        { query: `subscription($id: ID!) { exportProgress(jobId: $id) { status } }`, variables: { id } },
        { next: (v) => seen.push(v.data), error: reject, complete: () => resolve(seen) },
      );
    });
    expect(late).toEqual([{ exportProgress: { status: 'COMPLETED' } }]);
    const denied = await new Promise<unknown>((resolve) => {
      wsClient(second.url, `Bearer ${tenant.admin.token}`).subscribe(
        { query: `subscription($id: ID!) { exportProgress(jobId: $id) { status } }`, variables: { id } },
        {
          next: (v) => resolve(v.errors?.[0]?.extensions?.code),
          error: (e) => resolve((e as Array<{ extensions: { code: string } }>)[0]?.extensions.code),
          complete: () => undefined,
        },
      );
    });
    expect(denied).toBe('NOT_FOUND');
  });

  it('the direct route stops its COPY when the client goes away', async () => {
    const activeCopies = async () => {
      const [row] = await t.app.dataSource.query<[{ n: number }]>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'COPY (SELECT %description%' AND state <> 'idle'`,
      );
      return row.n;
    };
    const aborter = new AbortController();
    const query = new URLSearchParams({
      entityType: 'LEAD',
      format: 'CSV',
      fields: 'id,description',
      limit: '120000',
    });
    const response = await fetch(`${t.url}/exports/stream?${query.toString()}`, {
      headers: { authorization: `Bearer ${tenant.rep.token}` },
      signal: aborter.signal,
    });
    const reader = response.body!.getReader();
    const first = await reader.read();
    expect(first.value!.length).toBeGreaterThan(0);
    expect(await activeCopies()).toBe(1); // the client reads no further: the COPY waits on it
    aborter.abort();
    await waitFor(async () => (await activeCopies()) === 0, 3_000);
  });

  it('cancel stops a running export within a second and leaves no file; a fourth concurrent export is refused', async () => {
    const start = () =>
      t.gql(
        START,
        { input: { entityType: 'LEAD', format: 'XLSX', fields: ['id', 'lastName', 'description', 'score'] } },
        tenant.rep.token,
      );
    const jobs = [await start(), await start(), await start()].map((r) => r.data!.startExport.id as string);
    const fourth = await start();
    expect(fourth.errors?.[0]?.extensions?.code).toBe('TOO_MANY_EXPORTS');
    expect(fourth.errors?.[0]?.message).toContain('at most 3 may run at once');

    const target = jobs[0]!;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const [row] = await t.app.dataSource.query<[{ status: string; rows_exported: string }]>(
        'SELECT status, rows_exported FROM export_jobs WHERE id = $1',
        [target],
      );
      if (row.status === 'RUNNING' && Number(row.rows_exported) > 0) break;
      if (Date.now() > deadline) throw new Error(`export never ran: ${JSON.stringify(row)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const before = await cancelledRuns(worker.app);
    const cancelledAt = Date.now();
    const cancel = await second.gql(
      `mutation($id: ID!) { cancelExport(id: $id) { status } }`,
      { id: target },
      tenant.rep.token,
    );
    expect(cancel.data?.cancelExport.status).toBe('CANCELLED');
    // The worker lets go of it (its run ends), and no file is ever recorded for it.
    const stopped = await waitFor(async () => (await cancelledRuns(worker.app)) > before, 5_000);
    expect(stopped - cancelledAt).toBeLessThan(1_000);
    const [row] = await t.app.dataSource.query<[{ status: string; storage_key: string | null }]>(
      'SELECT status, storage_key FROM export_jobs WHERE id = $1',
      [target],
    );
    expect(row).toEqual({ status: 'CANCELLED', storage_key: null });
    for (const other of jobs.slice(1))
      await t.gql(`mutation($id: ID!) { cancelExport(id: $id) { status } }`, { id: other }, tenant.rep.token);
  });
});

/** Cancelled exports the worker process has let go of (its run ended), from its own metrics registry. */
async function cancelledRuns(app: App): Promise<number> {
  const metric = await app.metrics.registry.getSingleMetric('crm_export_operations_total')?.get();
  return (metric?.values ?? [])
    .filter((v) => v.labels.status === 'cancelled')
    .reduce((sum, v) => sum + v.value, 0);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return Date.now();
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('export jobs: a worker killed mid-export', () => {
  const env = { REDIS_URL: 'redis://127.0.0.1:6379/13', EXPORT_LOCK_MS: '1000' };
  let t: TestApp;
  let tenant: TestTenant;
  let killed: SpawnedProcess | undefined;
  let replacement: TestApp | undefined;

  beforeAll(async () => {
    const redis = new Redis(env.REDIS_URL);
    await redis.flushdb();
    redis.disconnect();
    // A spawned worker uses the default queue prefix; this gateway and the replacement worker share it.
    t = await startTestApp(env, 'gateway', { queuePrefix: 'crm' });
    tenant = await createTenant(t.app);
    await t.app.dataSource.query(
      `INSERT INTO leads (company_id, owner_id, first_name, last_name, status, score, description)
       SELECT $1, $2, 'Bulk', 'Lead ' || n, 'NEW', n % 100, repeat('y', 100) FROM generate_series(1, 100000) AS n`,
      [tenant.companyId, tenant.rep.id],
    );
  });
  afterAll(async () => {
    killed?.child.kill('SIGKILL');
    await replacement?.stop();
    await t.stop();
  });

  it('leaves no finished file; the job is retried by another worker and completes', async () => {
    killed = spawnBuilt('worker', testProcessEnv({ ...env, EXPORT_DIR: process.env.EXPORT_DIR }));
    await killed.waitFor(/"role":"worker"/);
    const started = await t.gql(
      START,
      { input: { entityType: 'LEAD', format: 'XLSX', fields: ['id', 'lastName', 'description'] } },
      tenant.rep.token,
    );
    const id = started.data!.startExport.id as string;
    await waitFor(async () => {
      const [row] = await t.app.dataSource.query<[{ rows_exported: string }]>(
        'SELECT rows_exported FROM export_jobs WHERE id = $1',
        [id],
      );
      return Number(row.rows_exported) > 0;
    }, 30_000);
    killed.child.kill('SIGKILL');
    await killed.exited;

    const [afterKill] = await t.app.dataSource.query<[{ status: string; storage_key: string | null }]>(
      'SELECT status, storage_key FROM export_jobs WHERE id = $1',
      [id],
    );
    expect(afterKill).toEqual({ status: 'RUNNING', storage_key: null });
    const jobDir = join(process.env.EXPORT_DIR!, tenant.companyId, id);
    const finished = () => readdirSync(jobDir).filter((file) => !/\.partial|~type$/.test(file));
    expect(finished()).toEqual([]); // only the dead worker's temporary file, never a complete one

    replacement = await startTestApp(env, 'worker', { queuePrefix: 'crm' });
    const job = await waitForStatus(t, tenant.rep.token, id, ['COMPLETED', 'FAILED'], 60_000);
    expect(job).toMatchObject({ status: 'COMPLETED', attempts: 2, rowsExported: 100_000 });
    expect(finished()).toHaveLength(1);

    // The periodic cleanup: past retention the job and its whole folder go (the dead worker's temporary file too);
    // a RUNNING job nobody renewed for many claim periods is failed with a reason.
    await t.app.dataSource.query(
      `UPDATE export_jobs SET created_at = now() - interval '25 hours' WHERE id = $1`,
      [id],
    );
    const [orphan] = await t.app.dataSource.query<[{ id: string }]>(
      `INSERT INTO export_jobs (company_id, owner_id, entity_type, format, compression, fields, file_name, status, updated_at)
       VALUES ($1, $2, 'LEAD', 'CSV', 'NONE', '{id}', 'x.csv', 'RUNNING', now() - interval '1 hour') RETURNING id`,
      [tenant.companyId, tenant.rep.id],
    );
    const cleaned = await t.app.services.exports.cleanup();
    expect(cleaned.deleted).toBeGreaterThanOrEqual(1);
    expect(existsSync(jobDir)).toBe(false);
    const left = await t.app.dataSource.query<Array<{ id: string; status: string; error: string }>>(
      'SELECT id, status, error FROM export_jobs WHERE id = ANY($1::uuid[])',
      [[id, orphan.id]],
    );
    expect(left).toEqual([
      { id: orphan.id, status: 'FAILED', error: 'the worker running this export stopped; start it again' },
    ]);
  });
});
