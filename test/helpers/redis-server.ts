import { spawn, type ChildProcess } from 'node:child_process';

/** A private, non-persistent redis-server on a loopback port (for tests that kill and restart Redis). */
export function startRedisServer(port: number, extraArgs: readonly string[] = []): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      ...extraArgs,
    ]);
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('Ready to accept connections')) resolve(child);
    });
    child.once('error', reject);
  });
}
