import { createServer } from 'node:net';

/** A loopback TCP port that was free a moment ago (for listeners whose port 0 means "off", or child servers). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
