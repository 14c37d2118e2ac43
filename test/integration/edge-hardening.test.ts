import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import WebSocket from 'ws';
import { startApp } from '../../src/app';
import { loadConfig } from '../../src/config/config';
import { createTenant, type TestTenant } from '../helpers/fixtures';
import { freePort } from '../helpers/ports';
import { startRedisServer } from '../helpers/redis-server';
import { startTestApp, type TestApp } from '../helpers/test-app';

/** Opens a raw graphql-ws socket and resolves with the close code once the server closes it. */
function closeCodeOf(
  url: string,
  onOpen: (socket: WebSocket) => void,
): Promise<{ code: number; afterMs: number }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url.replace(/^http/, 'ws') + '/graphql', 'graphql-transport-ws');
    const started = Date.now();
    socket.once('open', () => onOpen(socket));
    socket.once('close', (code) => resolve({ code, afterMs: Date.now() - started }));
    socket.once('error', (error) => {
      if (socket.readyState === WebSocket.CLOSED) return;
      reject(error);
    });
  });
}

describe('graphql-ws edge: message size and connection_init deadline', () => {
  let t: TestApp;
  let a: TestTenant;

  beforeAll(async () => {
    t = await startTestApp();
    a = await createTenant(t.app);
  });
  afterAll(() => t.stop());

  it('closes a connection whose message exceeds the 1 MB body limit (1009) before parsing it', async () => {
    const { code } = await closeCodeOf(t.url, (socket) => {
      socket.send(JSON.stringify({ type: 'connection_init', payload: { pad: 'x'.repeat(2 * 1024 * 1024) } }));
    });
    expect(code).toBe(1009);
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
  });

  it('still accepts an authenticated subscribe message under the limit', async () => {
    const { code } = await closeCodeOf(t.url, (socket) => {
      socket.send(
        JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${a.admin.token}` } }),
      );
      socket.once('message', (raw) => {
        expect(JSON.parse((raw as Buffer).toString())).toEqual({ type: 'connection_ack' });
        socket.send(
          JSON.stringify({
            id: '1',
            type: 'subscribe',
            payload: { query: '{ me { id } }', variables: { pad: 'y'.repeat(500_000) } },
          }),
        );
        socket.once('message', (next) => {
          expect(JSON.parse((next as Buffer).toString())).toMatchObject({
            id: '1',
            type: 'next',
            payload: { data: { me: { id: a.admin.id } } },
          });
          socket.close(1000);
        });
      });
    });
    expect(code).toBe(1000);
  });

  it('closes a socket that never sends connection_init within 3 s (4408)', async () => {
    const { code, afterMs } = await closeCodeOf(t.url, () => {});
    expect(code).toBe(4408);
    expect(afterMs).toBeGreaterThanOrEqual(2900);
    expect(afterMs).toBeLessThan(6000);
  });
});

describe('schema suggestions follow introspection', () => {
  it('strips "Did you mean" when introspection is off, keeps it when on', async () => {
    const closed = await startTestApp({ GRAPHQL_INTROSPECTION: 'false' });
    const open = await startTestApp({ GRAPHQL_INTROSPECTION: 'true' });
    try {
      const hidden = await closed.gql('{ lea { id } }');
      expect(hidden.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(hidden.errors?.[0]?.message).toBe('Cannot query field "lea" on type "Query".');
      const shown = await open.gql('{ lea { id } }');
      expect(shown.errors?.[0]?.message).toMatch(/Did you mean "lead"/);
      // Enum values and arguments suggest too.
      const enumHint = await closed.gql('{ sharingRules(objectType: LEADS) { id } }');
      expect(enumHint.errors?.[0]?.message).not.toMatch(/Did you mean/);
    } finally {
      await closed.stop();
      await open.stop();
    }
  });
});

/** A TCP relay to the real Postgres that the test can cut and restore: the gateway sees an outage. */
async function startPostgresRelay(): Promise<{
  url: string;
  cut: () => Promise<void>;
  restore: () => Promise<void>;
  stop: () => Promise<void>;
}> {
  const target = new URL(process.env.TEST_DATABASE_URL!);
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = connect(Number(target.port || 5432), target.hostname);
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          socket.on('error', () => socket.destroy());
        }
        client.pipe(upstream).pipe(client);
      }).listen(port, '127.0.0.1', () => resolve());
    });
  const cut = async () => {
    await new Promise<void>((resolve) => {
      server!.close(() => resolve());
      sockets.forEach((socket) => socket.destroy());
    });
  };
  await listen();
  return {
    url: Object.assign(new URL(target), { port: String(port) }).toString(),
    cut,
    restore: listen,
    stop: cut,
  };
}

describe('Postgres outage', () => {
  it('answers SERVICE_UNAVAILABLE with HTTP 503 (and /readyz 503), then recovers by itself', async () => {
    const relay = await startPostgresRelay();
    const t = await startTestApp({ DATABASE_URL: relay.url });
    try {
      const a = await createTenant(t.app);
      const warm = await t.gql('{ me { id } leads { total } }', {}, a.admin.token);
      expect(warm.errors).toBeUndefined();

      await relay.cut();
      // The principal is in the shared cache, so the request starts; its SQL cannot run.
      const down = await t.gql('{ leads { total } }', {}, a.admin.token);
      expect(down.status).toBe(503);
      expect(down.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
      expect(down.errors?.[0]?.message).not.toMatch(/ECONNREFUSED|127\.0\.0\.1/);
      // A principal that must be read from Postgres cannot even be authenticated: 503 too, not 401.
      const cold = await t.gql('{ me { id } }', {}, a.rep.token);
      expect(cold.status).toBe(503);
      expect(cold.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
      expect((await fetch(`${t.url}/readyz`)).status).toBe(503);

      await relay.restore();
      let recovered = false;
      for (let attempt = 0; attempt < 50 && !recovered; attempt++) {
        recovered = (await t.gql('{ leads { total } }', {}, a.admin.token)).status === 200;
        if (!recovered) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(recovered).toBe(true);
      expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
    } finally {
      await t.stop();
      await relay.stop();
    }
  });
});

/** Local address a TCP port listens on, from the kernel's own table (Linux). */
function listeningAddress(port: number): string | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, , state] = line.trim().split(/\s+/);
    if (state !== '0A' || !local?.endsWith(`:${hexPort}`)) continue;
    const hex = local.split(':')[0]!;
    return [3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join('.');
  }
  return undefined;
}

describe('metrics listener address', () => {
  it('binds loopback by default even when the public port binds every interface', async () => {
    const metricsPort = await freePort();
    const t = await startTestApp({ HOST: '0.0.0.0', METRICS_PORT: String(metricsPort) });
    try {
      expect(listeningAddress(metricsPort)).toBe('127.0.0.1');
      expect(listeningAddress(Number(new URL(t.url).port))).toBe('0.0.0.0');
      expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status).toBe(200);
    } finally {
      await t.stop();
    }
  });
});

describe('credentials in what the gateway prints', () => {
  it('masks the Redis and Postgres passwords in the startup log', async () => {
    const password = 'hunter2-redis-password';
    const port = await freePort();
    const redis = await startRedisServer(port, ['--requirepass', password]);
    const lines: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    const databaseUrl = Object.assign(new URL(process.env.TEST_DATABASE_URL!), {
      password: 'pg-password-unused',
    });
    const config = loadConfig(process.env, {
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_URL: `redis://:${password}@127.0.0.1:${port}/0`,
      DATABASE_URL: databaseUrl.toString(),
    });
    const app = await startApp({ config, role: 'gateway', logger });
    try {
      const log = lines.join('');
      expect(log).toContain(`redis (redis://:***@127.0.0.1:${port}/0)`);
      expect(log).toContain('postgres (postgres://postgres:***@');
      expect(log).not.toContain(password);
      expect(log).not.toContain('pg-password-unused');
      // The connection really authenticated with the password it does not print.
      expect(await app.cache.mget(['missing-key'])).toEqual([undefined]);
      expect(app.cache.isHealthy()).toBe(true);
    } finally {
      await app.stop();
      redis.kill('SIGKILL');
    }
  });
});
