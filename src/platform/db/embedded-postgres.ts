import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { Logger } from '../logging/logger';
import { EmbeddedSessionQueue } from './embedded-session.queue';

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
  /** Where a broken stall (a connection holding the backend while others wait) is reported. Default: stderr. */
  logger?: Logger;
  /** See EmbeddedSessionQueueOptions.stallMs. */
  stallMs?: number;
}

interface SocketHandler {
  readonly handlerId: number;
  detach(close?: boolean): Promise<unknown>;
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
    // The server hands its queue to each connection it accepts, so it is replaced before the first one.
    const internals = server as unknown as { handlers: Set<SocketHandler>; queryQueue: unknown };
    const { handlers } = internals;
    const queue = new EmbeddedSessionQueue(db, {
      stallMs: options.stallMs,
      onStall: (stall) => {
        const message =
          'embedded database: a connection held a transaction idle while others waited (a second connection asked for inside a transaction?); rolled it back and closed it';
        if (options.logger) options.logger.error(stall, message);
        else process.stderr.write(`${message} ${JSON.stringify(stall)}\n`);
      },
      closeConnection: (handlerId) => {
        const handler = [...handlers].find((candidate) => candidate.handlerId === handlerId);
        void handler?.detach(true);
        return handler !== undefined;
      },
    });
    internals.queryQueue = queue;
    await server.start();
    let stopped: Promise<void> | undefined;
    return {
      url: `postgres://postgres@${server.getServerConn()}/postgres`,
      stop: () =>
        (stopped ??= (async () => {
          await server.stop();
          queue.stop();
          await db.close();
          unlock();
        })()),
    };
  } catch (error) {
    unlock();
    throw error;
  }
}
