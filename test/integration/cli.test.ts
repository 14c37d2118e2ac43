import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { TokenService } from '../../src/modules/identity/token.service';

const run = promisify(execFile);
const ROOT = resolve(__dirname, '../..');
/** A database of its own beside the test database (TEST_DATABASE_URL names the server and the stem). */
const DATABASE = `${new URL(process.env.TEST_DATABASE_URL!).pathname.slice(1)}_cli`;

/** The operator commands, run as the built scripts against a database of their own. */
describe('command line: migrate, seed, token', () => {
  const adminUrl = Object.assign(new URL(process.env.TEST_DATABASE_URL!), {
    pathname: '/postgres',
  }).toString();
  const url = Object.assign(new URL(process.env.TEST_DATABASE_URL!), { pathname: `/${DATABASE}` }).toString();
  const env = {
    PATH: process.env.PATH,
    DATABASE_URL: url,
    LOG_LEVEL: 'error',
    JWT_SECRET: process.env.JWT_SECRET,
  };
  const cli = (script: string, args: string[]) =>
    run(process.execPath, [resolve(ROOT, `dist/src/cli/${script}.cli.js`), ...args], { env, cwd: ROOT });

  beforeAll(async () => {
    const admin = new Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${DATABASE}`);
    await admin.end();
  });
  afterAll(async () => {
    const admin = new Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await admin.end();
  });

  it('migrates, creating audit_logs as a monthly-partitioned table with a default and 4 months', async () => {
    const { stdout } = await cli('migrate', []);
    expect(stdout).toMatch(/applied: Foundation/);
    expect((await cli('migrate', [])).stdout).toMatch(/up to date/);
    const db = new Client({ connectionString: url });
    await db.connect();
    const { rows } = await db.query<{ name: string; bound: string }>(
      `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_logs'::regclass ORDER BY c.relname`,
    );
    await db.end();
    expect(rows.map((r) => r.name)).toContain('audit_logs_default');
    const monthly = rows.filter((r) => /^audit_logs_y\d{4}m\d{2}$/.test(r.name));
    expect(monthly).toHaveLength(4);
    const now = new Date();
    const current = `audit_logs_y${now.getUTCFullYear()}m${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
    expect(monthly.map((r) => r.name)).toContain(current);
  });

  it('the typeorm CLI prints which migrations ran, in its own console format', async () => {
    const typeorm = resolve(ROOT, 'node_modules/typeorm/cli.js');
    const { stdout } = await run(process.execPath, [typeorm, 'migration:show', '-d', 'dist/ormconfig.js'], {
      env,
      cwd: ROOT,
    });
    expect(stdout).toMatch(/\[X\] \d+ Foundation1764300000000/);
    expect(stdout).toMatch(/\[X\] \d+ UserDeactivation1764500000000/);
    expect(stdout).not.toMatch(/^\{/m); // not pino's JSON lines
  });

  it('seeds the exact counts, refuses to seed twice without --reset, and mints working tokens', async () => {
    const sizes = [
      '--companies',
      '3',
      '--users',
      '15',
      '--accounts',
      '40',
      '--leads',
      '500',
      '--deals',
      '120',
    ];
    const seeded = await cli('seed', sizes);
    // Every record is embedded at seed, so similar(text:) finds seeded records without a reindex.
    expect(seeded.stdout).toMatch(
      /"companies":3,"users":15,"accounts":40,"leads":500,"deals":120,"rules":0,"vectors":660\}/,
    );
    await expect(cli('seed', sizes)).rejects.toMatchObject({
      stderr: expect.stringMatching(/already holds 3 companies; pass --reset/),
    });
    expect((await cli('seed', [...sizes, '--reset'])).stdout).toMatch(/seeded/);

    // At the default log level the command's warnings (no pgvector here) go to stderr: stdout is the token alone,
    // so TOKEN=$(npm run -s token ...) works.
    const { stdout, stderr } = await run(
      process.execPath,
      [resolve(ROOT, 'dist/src/cli/token.cli.js'), '--email', 'user0@company0.example.com'],
      { env: { ...env, LOG_LEVEL: 'info' }, cwd: ROOT },
    );
    expect(stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    expect(stderr).toMatch(/"msg":"vector backend down"/);
    const claims = await new TokenService({ secret: process.env.JWT_SECRET! }).verify(stdout.trim());
    const db = new Client({ connectionString: url });
    await db.connect();
    const { rows } = await db.query<{ id: string; company_id: string }>(
      "SELECT id, company_id FROM users WHERE email = 'user0@company0.example.com'",
    );
    await db.end();
    expect(claims).toMatchObject({ userId: rows[0]!.id, companyId: rows[0]!.company_id });
    await expect(cli('token', ['--email', 'nobody@nowhere'])).rejects.toMatchObject({
      stderr: expect.stringMatching(/No user with email/),
    });
    await expect(cli('seed', ['--leads', 'many'])).rejects.toMatchObject({
      stderr: expect.stringMatching(/--leads must be a non-negative integer/),
    });
  });

  it('vectors:reindex embeds existing records, and says why a backend cannot be rebuilt', async () => {
    const db = new Client({ connectionString: url });
    await db.connect();
    try {
      const { rows } = await db.query<{ id: string; records: string }>(
        `SELECT c.id, (SELECT count(*) FROM leads WHERE company_id = c.id) + (SELECT count(*) FROM deals WHERE company_id = c.id)
                     + (SELECT count(*) FROM accounts WHERE company_id = c.id) AS records
           FROM companies c ORDER BY c.name LIMIT 1`,
      );
      const company = rows[0]!;
      expect(Number(company.records)).toBeGreaterThan(0);
      const { stdout } = await cli('vectors-reindex', ['--embed-records', '--company', company.id]);
      expect(stdout).toMatch(new RegExp(`\\b${company.records} record vectors written`));
      // Not a terminal (a pipe): whole lines with a summary per record type, no carriage-return redraws.
      expect(stdout).not.toContain('\r');
      expect(stdout.split('\n').filter((line) => / records embedded in /.test(line))).toHaveLength(3);
      const stored = await db.query<{ n: number; types: string[] }>(
        `SELECT count(*)::int AS n, array_agg(DISTINCT entity_type ORDER BY entity_type) AS types
           FROM vector_documents WHERE company_id = $1 AND embedding IS NOT NULL`,
        [company.id],
      );
      expect(stored.rows[0]).toEqual({ n: Number(company.records), types: ['ACCOUNT', 'DEAL', 'LEAD'] });
    } finally {
      await db.end();
    }
    // This Postgres has no pgvector, and no OpenSearch is configured: a rebuild of everything says what it could not
    // rebuild and why, and succeeds; naming that backend fails.
    const everything = await cli('vectors-reindex', []);
    expect(everything.stderr).toMatch(
      /pgvector cannot be rebuilt now: the vector extension is not installed in this database; skipped/,
    );
    await expect(cli('vectors-reindex', ['--backend', 'pgvector'])).rejects.toMatchObject({
      stderr: expect.stringMatching(/pgvector cannot be rebuilt now: the vector extension is not installed/),
    });
    await expect(cli('vectors-reindex', ['--backend', 'opensearch'])).rejects.toMatchObject({
      code: 64,
      stderr: expect.stringMatching(/No index backend named opensearch is configured \(pgvector\)/),
    });
  });

  it('audit:maintain creates a month that arrived early, archives an old one, restores it, and says so', async () => {
    const archiveDir = mkdtempSync(join(tmpdir(), 'audit-cli-'));
    const withArchive = { ...env, AUDIT_ARCHIVE_DIR: archiveDir };
    const maintain = (args: string[]) =>
      run(process.execPath, [resolve(ROOT, 'dist/src/cli/audit-maintain.cli.js'), ...args], {
        env: withArchive,
        cwd: ROOT,
      });
    const now = new Date();
    const month = (offset: number) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
    const label = (date: Date) =>
      `y${date.getUTCFullYear()}m${String(date.getUTCMonth() + 1).padStart(2, '0')}`;
    const db = new Client({ connectionString: url });
    await db.connect();
    try {
      const { rows } = await db.query<{ id: string }>('SELECT id FROM companies LIMIT 1');
      for (const at of [month(8), month(-14)])
        await db.query(
          `INSERT INTO audit_logs (company_id, action, object_type, occurred_at) VALUES ($1, 'UPDATE', 'LEAD', $2)`,
          [rows[0]!.id, at.toISOString()],
        );
      const first = await maintain([]);
      expect(first.stdout).toContain(`created audit_logs_${label(month(8))} (moved 1 rows from default)`);
      expect(first.stdout).toMatch(
        new RegExp(`archived audit_logs_${label(month(-14))}: 1 rows, \\d+ bytes`),
      );
      expect(first.stdout).toMatch(/; 0 rows in the default partition;/);
      expect((await maintain([])).stdout).toMatch(/^nothing to do\n/);
      // The partition sizes are the planner's estimates, and --json names them so.
      const json = JSON.parse((await maintain(['--json'])).stdout) as {
        partitions: Array<Record<string, unknown>>;
      };
      expect(json.partitions.length).toBeGreaterThan(0);
      for (const partition of json.partitions) {
        expect(partition).toHaveProperty('estimatedRows', expect.any(Number));
        expect(partition).not.toHaveProperty('rows');
      }
      const restored = await maintain(['--restore', month(-14).toISOString().slice(0, 7)]);
      expect(restored.stdout).toContain(`restored audit_logs_${label(month(-14))}: 1 rows`);
      await expect(maintain(['--restore', '2020-13'])).rejects.toMatchObject({
        stderr: expect.stringMatching(/--restore must be a month like 2025-03/),
      });
    } finally {
      await db.end();
      rmSync(archiveDir, { recursive: true, force: true });
    }
  });
});
