import { startPostgresPair, type PostgresPair } from '../../bench/cluster/postgres-pair';

/**
 * The launcher of a real Postgres streaming pair (bench/cluster/postgres-pair.ts) that the read-replica tests, the
 * local cluster and the fault bench stand on. No binaries: startPostgresPair throws, and so this fails.
 */
describe('a real Postgres streaming pair', () => {
  let pair: PostgresPair;

  beforeAll(async () => {
    pair = await startPostgresPair();
  }, 60_000);
  afterAll(async () => {
    await pair?.stop();
  });

  async function replicaSees(sql: string, expected: string, timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await pair.psql('replica', sql)) === expected) return true;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return false;
  }

  it('streams: the replica is a hot standby and a table written on the primary is readable there', async () => {
    expect(await pair.psql('replica', 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await pair.psql('primary', 'SELECT pg_is_in_recovery()')).toBe('f');
    await pair.psql(
      'primary',
      "CREATE TABLE pair_notes (id int PRIMARY KEY, body text); INSERT INTO pair_notes VALUES (1, 'one')",
    );
    expect(await replicaSees('SELECT body FROM pair_notes WHERE id = 1', 'one')).toBe(true);
    await expect(pair.psql('replica', "INSERT INTO pair_notes VALUES (2, 'x')")).rejects.toThrow(/read-only/);
  });

  it('pg_wal_replay_pause() on the replica holds a new write back until pg_wal_replay_resume()', async () => {
    await pair.psql('primary', 'CREATE TABLE IF NOT EXISTS pair_held (id int PRIMARY KEY)');
    expect(await replicaSees("SELECT to_regclass('pair_held') IS NOT NULL", 't')).toBe(true);
    await pair.psql('replica', 'SELECT pg_wal_replay_pause()');
    expect(await replicaSees('SELECT pg_get_wal_replay_pause_state()', 'paused')).toBe(true);

    await pair.psql('primary', 'INSERT INTO pair_held VALUES (1)');
    const committedAt = await pair.psql('primary', 'SELECT pg_current_wal_lsn()');
    // Held back: the commit has reached the replica's WAL, but not its data, for as long as replay is paused.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await pair.psql('replica', 'SELECT count(*) FROM pair_held')).toBe('0');
    expect(await pair.psql('replica', `SELECT pg_last_wal_replay_lsn() < '${committedAt}'::pg_lsn`)).toBe(
      't',
    );

    await pair.psql('replica', 'SELECT pg_wal_replay_resume()');
    expect(await replicaSees('SELECT count(*) FROM pair_held', '1')).toBe(true);
    expect(await pair.psql('replica', `SELECT pg_last_wal_replay_lsn() >= '${committedAt}'::pg_lsn`)).toBe(
      't',
    );
  });

  it('stopReplica() stops it, startReplica() brings it back streaming, and it catches up on what it missed', async () => {
    await pair.stopReplica();
    await expect(pair.psql('replica', 'SELECT 1')).rejects.toThrow();
    await pair.psql('primary', "INSERT INTO pair_notes VALUES (3, 'while the replica was down')");
    await pair.startReplica();
    expect(
      await pair.psql('primary', "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"),
    ).toBe('1');
    expect(await replicaSees('SELECT body FROM pair_notes WHERE id = 3', 'while the replica was down')).toBe(
      true,
    );
  }, 60_000);

  it('killReplica() crashes it (SIGKILL), and startReplica() recovers it', async () => {
    await pair.killReplica();
    await expect(pair.psql('replica', 'SELECT 1')).rejects.toThrow();
    await pair.psql('primary', "INSERT INTO pair_notes VALUES (4, 'after the crash')");
    await pair.startReplica();
    expect(await replicaSees('SELECT body FROM pair_notes WHERE id = 4', 'after the crash')).toBe(true);
  }, 60_000);
});
