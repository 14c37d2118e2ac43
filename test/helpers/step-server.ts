import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StepHit {
  path: string;
  query: URLSearchParams;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  startedAt: number;
  endedAt?: number;
  /** The client went away before the answer (a cancelled or timed-out step). */
  aborted: boolean;
}

/**
 * The far side of I/O steps, on loopback: `/slow?ms=N` answers after N ms, `/flaky?key=K&fail=N` fails N times with
 * 500 then answers, `/status/<code>` answers that code, `/hook` takes webhooks. Every call is recorded.
 */
export class StepServer {
  readonly hits: StepHit[] = [];
  private readonly failures = new Map<string, number>();
  private server!: Server;
  url = '';

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      let raw = '';
      req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://x');
        let body: unknown = raw;
        try {
          body = raw ? JSON.parse(raw) : undefined;
        } catch {
          body = raw;
        }
        const hit: StepHit = {
          path: url.pathname,
          query: url.searchParams,
          body,
          headers: req.headers,
          startedAt: Date.now(),
          aborted: false,
        };
        this.hits.push(hit);
        res.on('close', () => {
          if (!res.writableFinished) hit.aborted = true;
        });
        const answer = (status: number, payload: unknown) => {
          hit.endedAt = Date.now();
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(payload));
        };
        if (url.pathname === '/slow') {
          const timer = setTimeout(
            () => answer(200, { ok: true, echo: body ?? null }),
            Number(url.searchParams.get('ms') ?? 100),
          );
          res.on('close', () => clearTimeout(timer));
        } else if (url.pathname === '/flaky') {
          const key = url.searchParams.get('key') ?? '';
          const failed = this.failures.get(key) ?? 0;
          if (failed < Number(url.searchParams.get('fail') ?? 0)) {
            this.failures.set(key, failed + 1);
            answer(500, { error: 'try again' });
          } else answer(200, { ok: true, after: failed });
        } else if (url.pathname.startsWith('/status/')) {
          answer(Number(url.pathname.slice('/status/'.length)), { status: 'as asked' });
        } else if (url.pathname === '/hook') {
          answer(202, { received: true });
        } else answer(404, { error: 'no such path' });
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  hitsOf(path: string): StepHit[] {
    return this.hits.filter((hit) => hit.path === path);
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
