import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { Client } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { DataSource } from 'typeorm';
import { TokenService } from '../identity';
import type { BenchContext, BenchResult, BenchScenario } from '../kernel';

const JWT_SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';
const FIELDS = [
  'id',
  'firstName',
  'lastName',
  'email',
  'companyName',
  'status',
  'source',
  'industry',
  'score',
  'estimatedValue',
  'createdAt',
  'ownerName',
];
const FORMATS = [
  { format: 'CSV', compression: 'GZIP' },
  { format: 'JSON', compression: 'GZIP' },
  { format: 'XLSX', compression: 'NONE' },
  { format: 'XLSX', compression: 'GZIP' },
] as const;

/** Leads as a CRM holds them, in two companies: the large one (1M at full scale) and one of 100k. */
async function seedLeads(db: DataSource, large: number, small: number, log: (m: string) => void) {
  const companies = await db.query<Array<{ id: string; admin: string }>>(
    `SELECT c.id, (SELECT u.id FROM users u WHERE u.company_id = c.id ORDER BY u.id LIMIT 1) AS admin
       FROM companies c ORDER BY c.id LIMIT 2`,
  );
  const [big, little] = companies as [{ id: string; admin: string }, { id: string; admin: string }];
  await db.query('UPDATE users SET is_admin = true WHERE id = ANY($1::uuid[])', [[big.admin, little.admin]]);
  const counts = await db.query<Array<{ company_id: string; n: number }>>(
    'SELECT company_id, count(*)::int AS n FROM leads GROUP BY 1',
  );
  const has = (id: string) => counts.find((c) => c.company_id === id)?.n ?? 0;
  if (has(big.id) !== large || has(little.id) !== small) {
    log(`seeding ${large} + ${small} leads for exports ...`);
    await db.query('TRUNCATE leads CASCADE');
    for (const [company, rows] of [
      [big, large],
      [little, small],
    ] as const) {
      for (let from = 1; from <= rows; from += 250_000) {
        await db.query(
          `WITH owners AS (SELECT array_agg(id) AS ids FROM users WHERE company_id = $1)
           INSERT INTO leads (company_id, owner_id, first_name, last_name, email, company_name, status, source, industry,
                              score, estimated_value, description, created_at)
           SELECT $1, owners.ids[1 + n % array_length(owners.ids, 1)],
                  'First' || (n % 997), 'Last' || (n % 1009), 'person' || n || '@example.com', 'Company ' || (n % 4999),
                  (ARRAY['NEW','CONTACTED','QUALIFIED','UNQUALIFIED','CONVERTED'])[1 + n % 5],
                  (ARRAY['WEB','REFERRAL','EVENT','PARTNER','COLD_CALL','ADVERTISING'])[1 + n % 6],
                  (ARRAY['TECHNOLOGY','FINANCE','HEALTHCARE','RETAIL'])[1 + n % 4],
                  n % 100, (n % 50000) * 10.5, NULL, now() - make_interval(mins => n % 500000)
             FROM generate_series($2::int, $3::int) AS n, owners`,
          [company.id, from, Math.min(rows, from + 249_999)],
        );
      }
    }
    await db.query('VACUUM ANALYZE leads');
  }
  return { big, little };
}

/** Peak resident set of a process as the kernel counts it (VmHWM), in MB. */
function peakRssMb(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

async function runExport(
  context: BenchContext,
  url: string,
  token: string,
  format: string,
  compression: string,
) {
  const started = await context.graphql(
    url,
    token,
    'mutation($input: StartExportInput!) { startExport(input: $input) { id } }',
    { input: { entityType: 'LEAD', format, compression, fields: FIELDS } },
  );
  const id = started.startExport!.id as string;
  for (;;) {
    const { exportJob } = await context.graphql(
      url,
      token,
      'query($id: ID!) { exportJob(id: $id) { status rowsExported bytesWritten startedAt finishedAt error } }',
      { id },
    );
    if (exportJob!.status === 'COMPLETED') {
      const seconds =
        (Date.parse(exportJob!.finishedAt as string) - Date.parse(exportJob!.startedAt as string)) / 1000;
      return { rows: exportJob!.rowsExported as number, bytes: exportJob!.bytesWritten as number, seconds };
    }
    if (exportJob!.status === 'FAILED' || exportJob!.status === 'CANCELLED')
      throw new Error(`export ${id} ${exportJob!.status as string}: ${exportJob!.error as string}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The floor: COPY of the same columns as CSV, through gzip, no encoding of ours. Bytes before and after gzip. */
async function copyBaseline(databaseUrl: string, companyId: string) {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  let raw = 0;
  let gz = 0;
  const started = process.hrtime.bigint();
  const copy = client.query(
    copyTo(
      `COPY (SELECT r.id, r.first_name, r.last_name, r.email, r.company_name, r.status, r.source, r.industry, r.score,
                    r.estimated_value, r.created_at, o.name FROM leads r LEFT JOIN users o ON o.id = r.owner_id
              WHERE r.company_id = '${companyId}' ORDER BY r.id) TO STDOUT WITH (FORMAT csv, HEADER true)`,
    ),
  );
  await pipeline(
    copy,
    new Transform({
      transform(chunk: Buffer, _e, done) {
        raw += chunk.length;
        done(null, chunk);
      },
    }),
    createGzip({ level: 6 }),
    new Writable({
      write(chunk: Buffer, _e, done) {
        gz += chunk.length;
        done();
      },
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await client.end();
  return { rows: copy.rowCount, seconds, raw, gz };
}

async function exportScenario(context: BenchContext): Promise<BenchResult> {
  // Long by choice: one benchmark scenario that reads top to bottom as the table it prints (set up, warm up, measure,
  // compare with the baseline of the same run); cut into parts, its figures would be spread over several functions.
  const large = Math.max(20_000, Math.round(1_000_000 * context.scale));
  const small = Math.max(10_000, Math.round(100_000 * context.scale));
  const db = await context.openDatabase('exports', {
    companies: 2,
    users: 10,
    accounts: 0,
    leads: 0,
    deals: 0,
  });
  const databaseUrl = (db.options as { url: string }).url;
  const { big, little } = await seedLeads(db, large, small, (m) => context.log(m));
  await db.query('DELETE FROM export_jobs');
  await db.destroy();
  const exportDir = mkdtempSync(join(tmpdir(), 'export-bench-'));
  const env = {
    NODE_ENV: 'production',
    JWT_SECRET,
    DATABASE_URL: databaseUrl,
    REDIS_URL: context.redisUrl,
    EXPORT_DIR: exportDir,
    EXPORT_CONCURRENCY: '4',
    EXPORT_MAX_ACTIVE_PER_USER: '10',
    LOG_LEVEL: 'info',
  };
  const metricsPort = await context.freePort();
  const gateway = context.startProcess('main', {
    ...env,
    PORT: '0',
    HOST: '127.0.0.1',
    METRICS_PORT: String(metricsPort),
  });
  const tokens = new TokenService({ secret: JWT_SECRET });
  const measured: Record<string, number> = {};
  const baseline: Record<string, number> = {};
  try {
    const [, url] = await gateway.waitFor(/"url":"(http:\/\/[^"]+)\/graphql"/);
    const base = url!;
    const tokenFor = async (company: { id: string; admin: string }) =>
      tokens.mint(company.admin, company.id, 3600);
    const sizes = [
      { label: '100k', company: little, rows: small },
      { label: '1M', company: big, rows: large },
    ];
    for (const { format, compression } of FORMATS) {
      for (const size of sizes) {
        const worker = context.startProcess('worker', { ...env, METRICS_PORT: '0' });
        await worker.waitFor(/worker started/);
        let peak = peakRssMb(worker.process.pid!);
        const sampler = setInterval(() => {
          try {
            peak = Math.max(peak, peakRssMb(worker.process.pid!));
          } catch {
            /* the process is gone */
          }
        }, 100);
        const result = await runExport(context, base, await tokenFor(size.company), format, compression);
        clearInterval(sampler);
        peak = Math.max(peak, peakRssMb(worker.process.pid!));
        await worker.stop();
        const key = `${format}${compression === 'GZIP' ? 'Gzip' : ''}${size.label}`;
        measured[`${key}RowsPerSecond`] = Math.round(result.rows / result.seconds);
        measured[`${key}Seconds`] = result.seconds;
        measured[`${key}Bytes`] = result.bytes;
        measured[`${key}PeakRssMb`] = Math.round(peak);
        context.log(`${key}: ${JSON.stringify(result)} peak ${Math.round(peak)} MB`);
      }
    }
    for (const size of sizes) {
      const copy = await copyBaseline(databaseUrl, size.company.id);
      baseline[`copyGzip${size.label}RowsPerSecond`] = Math.round(copy.rows / copy.seconds);
      baseline[`copyGzip${size.label}Seconds`] = copy.seconds;
      baseline[`csv${size.label}RawBytes`] = copy.raw;
      baseline[`csv${size.label}GzipBytes`] = copy.gz;
    }
    // Uncompressed sizes of the encoded files, for the real compression ratios.
    const rawWorker = context.startProcess('worker', { ...env, METRICS_PORT: '0' });
    await rawWorker.waitFor(/worker started/);
    for (const format of ['CSV', 'JSON']) {
      const raw = await runExport(context, base, await tokenFor(little), format, 'NONE');
      measured[`${format}CompressionRatio`] = raw.bytes / measured[`${format}Gzip100kBytes`]!;
    }
    measured.XLSXGzipCompressionRatio = measured.XLSX100kBytes! / measured.XLSXGzip100kBytes!;

    // Four 100k exports at once in the worker; the gateway's event loop meanwhile (its own p99, reset per scrape).
    await context.eventLoopP99(`http://127.0.0.1:${metricsPort}/metrics`);
    const token = await tokenFor(little);
    const probes: number[] = [];
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const t0 = process.hrtime.bigint();
        await fetch(`${base.replace(/\/graphql$/, '')}/healthz`);
        probes.push(Number(process.hrtime.bigint() - t0) / 1e6);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await Promise.all(
      ['CSV', 'JSON', 'XLSX', 'CSV'].map((format) => runExport(context, base, token, format, 'GZIP')),
    );
    probing = false;
    await probe;
    measured.gatewayEventLoopP99MsDuring4Exports = await context.eventLoopP99(
      `http://127.0.0.1:${metricsPort}/metrics`,
    );
    probes.sort((a, b) => a - b);
    measured.gatewayHealthzP99MsDuring4Exports = probes[Math.floor(probes.length * 0.99)] ?? NaN;
    await rawWorker.stop();
  } finally {
    await gateway.stop();
    rmSync(exportDir, { recursive: true, force: true });
  }
  const csv1M = measured.CSVGzip1MRowsPerSecond!;
  return {
    scenario: 'export.formats',
    description: `lead exports (${FIELDS.length} fields) of ${small} and ${large} rows in a separate worker process`,
    measured,
    baseline,
    baselineName: 'COPY (SELECT ...) TO STDOUT (FORMAT csv) through gzip, nothing of ours',
    ratio: csv1M / baseline.copyGzip1MRowsPerSecond!,
    ratioOf: 'CSV+gzip rows/s / COPY+gzip rows/s at the large size',
    notes:
      `peak RSS 1M/100k: CSV ${(measured.CSVGzip1MPeakRssMb! / measured.CSVGzip100kPeakRssMb!).toFixed(2)}, ` +
      `JSON ${(measured.JSONGzip1MPeakRssMb! / measured.JSONGzip100kPeakRssMb!).toFixed(2)}, ` +
      `XLSX ${(measured.XLSX1MPeakRssMb! / measured.XLSX100kPeakRssMb!).toFixed(2)}; ` +
      `COPY CSV compresses ${(baseline.csv100kRawBytes! / baseline.csv100kGzipBytes!).toFixed(2)}:1`,
  };
}

export const exportBench: readonly BenchScenario[] = [{ name: 'export.formats', run: exportScenario }];
