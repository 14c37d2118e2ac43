import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface EmbeddedPostgres {
  /** A postgres:// URL that `pg` and TypeORM connect to like any server. */
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Directory for the data files; `memory://` keeps everything in memory. Default `.data/pglite`. */
  dataDir?: string;
  /** Concurrent wire connections the socket server accepts. Default 20 (must exceed the pool size). */
  maxConnections?: number;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** PGlite has no lock of its own: two processes on one data directory would corrupt it, so take one. */
function lockDataDir(dataDir: string): () => void {
  const lockFile = join(dataDir, 'crm-gateway.pid');
  let holder: number | undefined;
  try {
    holder = Number(readFileSync(lockFile, 'utf8').trim());
  } catch {
    holder = undefined;
  }
  if (holder && holder !== process.pid && isAlive(holder)) {
    throw new Error(
      `The embedded database in ${dataDir} is in use by process ${holder}. Stop it, or set DATABASE_URL to use a Postgres server.`,
    );
  }
  writeFileSync(lockFile, String(process.pid));
  return () => rmSync(lockFile, { force: true });
}

/**
 * Embedded PostgreSQL 18 with pgvector (PGlite), served over the wire protocol on a loopback port so the same
 * `pg`/TypeORM code runs against it. One backend serves every connection: for first runs, demos and pgvector tests.
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedPostgres> {
  const dataDir = options.dataDir ?? '.data/pglite';
  const inMemory = dataDir.startsWith('memory://');
  let unlock = () => {};
  if (!inMemory) {
    mkdirSync(dataDir, { recursive: true });
    unlock = lockDataDir(dataDir);
  }
  try {
    const db = await PGlite.create(dataDir, { extensions: { vector } });
    await db.exec('CREATE EXTENSION IF NOT EXISTS vector');
    const server = new PGLiteSocketServer({
      db,
      host: '127.0.0.1',
      port: 0,
      maxConnections: options.maxConnections ?? 20,
    });
    await server.start();
    let stopped: Promise<void> | undefined;
    return {
      url: `postgres://postgres@${server.getServerConn()}/postgres`,
      stop: () =>
        (stopped ??= (async () => {
          await server.stop();
          await db.close();
          unlock();
        })()),
    };
  } catch (error) {
    unlock();
    throw error;
  }
}
