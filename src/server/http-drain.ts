import type { Server as HttpServer, ServerResponse } from 'node:http';
import { Server as NetServer } from 'node:net';

export interface HttpDrainOptions {
  /**
   * How long a socket that is idle when the drain starts stays open. A keep-alive client may already be sending its
   * next request on it; that request is answered (with `Connection: close`) instead of being cut off. Default 1000 ms.
   */
  idleGraceMs?: number;
}

export interface HttpDrain {
  readonly draining: boolean;
  /**
   * Stops accepting connections, answers every request in flight or arriving on an open connection (each response
   * says `Connection: close`), closes sockets only between requests, and resolves when none is left. Past
   * `deadlineMs` the remaining sockets are destroyed.
   */
  drain(deadlineMs: number): Promise<void>;
}

/** After the grace period, idle sockets are looked for this often (a long request may finish late). */
const IDLE_SWEEP_MS = 200;

/**
 * Graceful HTTP drain for keep-alive traffic. `http.Server.close()` closes idle keep-alive sockets at once, racing a
 * client that is reusing one for its next request ("socket hang up", and for a mutation: committed but unanswered).
 * This drain tells every client not to reuse its connection and closes a socket only when it carries no request.
 */
export function trackHttpConnections(server: HttpServer, options: HttpDrainOptions = {}): HttpDrain {
  const idleGraceMs = options.idleGraceMs ?? 1000;
  const pending = new Set<ServerResponse>();
  let draining = false;

  // Prepended: express may answer synchronously, and the header must be set before it does.
  server.prependListener('request', (_req, res: ServerResponse) => {
    if (draining) res.setHeader('connection', 'close');
    pending.add(res);
    res.once('close', () => pending.delete(res));
  });

  return {
    get draining() {
      return draining;
    },
    async drain(deadlineMs) {
      if (draining) return;
      draining = true;
      // Requests already running answer with Connection: close too, if their headers are not out yet.
      for (const res of pending) if (!res.headersSent) res.setHeader('connection', 'close');
      // net.Server#close stops listening and waits for the connections, without http.Server's eager idle close.
      const closed = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
      // Node's own idle check skips sockets whose next request has begun to arrive.
      let sweep: NodeJS.Timeout | undefined;
      const grace = setTimeout(
        () => {
          server.closeIdleConnections();
          sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
        },
        Math.min(idleGraceMs, deadlineMs),
      );
      let deadline: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        closed.then(() => 'closed' as const),
        new Promise<'deadline'>((resolve) => (deadline = setTimeout(() => resolve('deadline'), deadlineMs))),
      ]);
      clearTimeout(grace);
      clearInterval(sweep);
      clearTimeout(deadline);
      if (outcome === 'deadline') {
        server.closeAllConnections();
        await closed;
      }
    },
  };
}
