import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Pool } from 'pg';
import { spawnBuilt, type SpawnedProcess } from '../helpers/spawn-gateway';

/** The embedded PGlite behind its socket server, as the gateway uses it: many connections onto one backend. */
describe('embedded database: many connections onto one backend', () => {
  let pg: SpawnedProcess;
  const embedded = { url: '' };
  // On disk as in the quick start: each message then ends in a file sync, where other connections' messages come in.
  const dataDir = mkdtempSync(join(tmpdir(), 'crm-embedded-session-'));

  beforeAll(async () => {
    // Its own process: PGlite's WebAssembly cannot load inside jest's module sandbox.
    pg = spawnBuilt('cli/embedded-postgres.cli', { LOG_LEVEL: 'warn' }, [
      '--data-dir',
      'memory://',
      '--stall-ms',
      '400',
    ]);
    [, embedded.url] = (await pg.waitFor(/listening at (\S+)/, 60_000)) as [string, string];
  }, 90_000);
  afterAll(async () => {
    pg.child.kill('SIGTERM');
    await pg.exited;
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps each connection’s parameterised statements apart (Parse, Bind, Execute, Sync are never interleaved)', async () => {
    const pool = new Pool({ connectionString: embedded.url, max: 8 });
    try {
      // Statements of different arity on many connections at once, some with a parameter large enough to arrive in
      // many TCP chunks after its Parse: a Bind meeting another connection's unnamed statement fails with "bind
      // message supplies 2 parameters, but prepared statement "" requires 4".
      const large = 'x'.repeat(2_000_000);
      const answers = await Promise.all(
        Array.from({ length: 120 }, (_, i) =>
          i % 10 === 0
            ? pool.query<{ sum: number }>('SELECT length($1::text) + $2::int AS sum', [large, i])
            : i % 2 === 0
              ? pool.query<{ sum: number }>('SELECT $1::int + $2::int AS sum', [i, 1])
              : pool.query<{ sum: number }>('SELECT $1::int + $2::int + $3::int + $4::int AS sum', [
                  i,
                  1,
                  1,
                  1,
                ]),
        ),
      );
      expect(answers.map((answer) => answer.rows[0]!.sum)).toEqual(
        Array.from({ length: 120 }, (_, i) =>
          i % 10 === 0 ? large.length + i : i % 2 === 0 ? i + 1 : i + 3,
        ),
      );
    } finally {
      await pool.end();
    }
  });

  it('keeps a transaction to its connection until it commits', async () => {
    const pool = new Pool({ connectionString: embedded.url, max: 4 });
    try {
      await pool.query('CREATE TABLE IF NOT EXISTS counted (n int)');
      const inside = await pool.connect();
      await inside.query('BEGIN');
      await inside.query('INSERT INTO counted VALUES (1)');
      // Another connection's read waits for the commit instead of running inside the open transaction.
      const outside = pool.query<{ n: number }>('SELECT count(*)::int AS n FROM counted');
      await inside.query('INSERT INTO counted VALUES (2)');
      await inside.query('COMMIT');
      inside.release();
      expect((await outside).rows[0]!.n).toBe(2);
    } finally {
      await pool.end();
    }
  });

  it('breaks a connection that holds a transaction while another waits: rolled back, closed, and the other answers', async () => {
    const holder = new Client({ connectionString: embedded.url });
    const other = new Client({ connectionString: embedded.url });
    await holder.connect();
    await other.connect();
    const holderFailed = new Promise<Error>((resolve) => holder.on('error', resolve));
    try {
      await holder.query('CREATE TABLE IF NOT EXISTS held (n int)');
      await holder.query('BEGIN');
      await holder.query('INSERT INTO held VALUES (1)');
      // The deadlock the gateway must never hang on: inside its transaction, the holder waits for a second connection.
      const started = Date.now();
      const waited = await other.query<{ n: number }>('SELECT count(*)::int AS n FROM held');
      expect(waited.rows[0]!.n).toBe(0); // the holder's insert was rolled back, not committed
      expect(Date.now() - started).toBeGreaterThanOrEqual(350);
      await expect(holder.query('COMMIT')).rejects.toThrow();
      expect(await holderFailed).toHaveProperty('message'); // its connection was closed under it
      expect(pg.output()).toMatch(/held a transaction idle while others waited.*"waiting":1/);
    } finally {
      await Promise.allSettled([holder.end(), other.end()]);
    }
  });
});
