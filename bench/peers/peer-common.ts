import { createServer, type Server } from 'node:http';
import { jwtVerify } from 'jose';
import { Pool, type PoolClient } from 'pg';

/** What a peer learns from a request's bearer token: the same HS256 check and claims as the gateway's. */
export interface PeerCaller {
  userId: string;
  companyId: string;
}

export function peerEnvironment() {
  const required = (name: string) => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is required`);
    return value;
  };
  return {
    databaseUrl: required('DATABASE_URL'),
    secret: new TextEncoder().encode(required('JWT_SECRET')),
    port: Number(process.env.PORT ?? 0),
  };
}

const BEARER = /^Bearer\s+(\S+)$/i;

/** Tokens already verified, as the gateway keeps them (so neither side pays the HMAC on every request). */
const verified = new Map<string, PeerCaller & { expiresAt: number }>();

/** Verifies `Authorization: Bearer <jwt>` as the gateway does (HS256, expiry, `sub` and `company_id`). */
export async function verifyCaller(
  header: string | undefined,
  secret: Uint8Array,
): Promise<PeerCaller | undefined> {
  const token = header ? BEARER.exec(header)?.[1] : undefined;
  if (!token) return undefined;
  const known = verified.get(token);
  if (known && known.expiresAt * 1000 > Date.now()) return known;
  try {
    const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'] });
    const companyId = payload.company_id;
    if (typeof payload.sub !== 'string' || typeof companyId !== 'string' || typeof payload.exp !== 'number')
      return undefined;
    const caller = { userId: payload.sub, companyId, expiresAt: payload.exp };
    if (verified.size < 10_000) verified.set(token, caller);
    return caller;
  } catch {
    return undefined;
  }
}

/** A pg pool that counts the statements it sends, so the bench can report SQL statements per request. */
export function countingPool(connectionString: string, max = 10): { pool: Pool; statements: () => number } {
  let statements = 0;
  const pool = new Pool({ connectionString, max });
  const counted = new WeakSet<PoolClient>();
  pool.on('connect', (client) => {
    if (counted.has(client)) return;
    counted.add(client);
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      statements++;
      return query(...args);
    };
  });
  return { pool, statements: () => statements };
}

/**
 * Serves the bench's side door, `GET /__sql` (statements sent so far), and hands every other request to `handler`;
 * prints `listening on <url>` once it listens, which the bench waits for.
 */
export function listenPeer(
  name: string,
  port: number,
  statements: () => number,
  handler: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void,
): Server {
  const server = createServer((req, res) => {
    if (req.url === '/__sql') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ statements: statements() }));
      return;
    }
    handler(req, res);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(port, '127.0.0.1', () => {
    const address = server.address() as { port: number };
    process.stdout.write(`${name} listening on http://127.0.0.1:${address.port}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
  return server;
}
