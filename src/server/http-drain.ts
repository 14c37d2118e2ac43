import type { Server as HttpServer } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';

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

/**
 * Graceful HTTP drain for keep-alive traffic. `http.Server.close()` closes idle keep-alive sockets at once, racing a
 * client that is reusing one for its next request ("socket hang up", and for a mutation: committed but unanswered).
 * This drain never closes a socket that carries a request and tells each client not to reuse its connection.
 */
export function trackHttpConnections(server: HttpServer, options: HttpDrainOptions = {}): HttpDrain {
  const idleGraceMs = options.idleGraceMs ?? 1000;
  /** Requests in flight per socket (HTTP/1.1 pipelining can make it more than one). */
  const inFlight = new Map<Socket, number>();
  let draining = false;

  const closeIfIdle = (socket: Socket) => {
    if ((inFlight.get(socket) ?? 0) === 0) socket.end();
  };

  server.on('connection', (socket: Socket) => {
    inFlight.set(socket, 0);
    socket.once('close', () => inFlight.delete(socket));
  });
  // Prepended: express may answer synchronously, and the header must be set before it does.
  server.prependListener('request', (req, res) => {
    const socket = req.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    if (draining) res.setHeader('connection', 'close');
    res.once('close', () => {
      const remaining = Math.max(0, (inFlight.get(socket) ?? 1) - 1);
      if (inFlight.has(socket)) inFlight.set(socket, remaining);
      if (draining && remaining === 0 && !socket.destroyed) socket.end();
    });
  });

  return {
    get draining() {
      return draining;
    },
    async drain(deadlineMs) {
      if (draining) return;
      draining = true;
      // net.Server#close stops listening and waits for connections without http.Server's eager idle close.
      const closed = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
      const graceTimer = setTimeout(
        () => [...inFlight.keys()].forEach(closeIfIdle),
        Math.min(idleGraceMs, deadlineMs),
      );
      const deadline = new Promise<'deadline'>((resolve) => {
        const timer = setTimeout(() => resolve('deadline'), deadlineMs);
        timer.unref();
        void closed.then(() => clearTimeout(timer));
      });
      const outcome = await Promise.race([closed, deadline]);
      clearTimeout(graceTimer);
      if (outcome === 'deadline') {
        for (const socket of inFlight.keys()) socket.destroy();
        await closed;
      }
    },
  };
}
