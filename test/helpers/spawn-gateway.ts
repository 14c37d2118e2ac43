import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { resolve } from 'node:path';

export interface SpawnedProcess {
  child: ChildProcessWithoutNullStreams;
  output: () => string;
  /** Resolves with the first match of `pattern` in stdout+stderr. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

/** The environment of a gateway or worker process on the test database and Redis DB, with its logs on stdout. */
export function testProcessEnv(overrides: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    PORT: '0',
    HOST: '127.0.0.1',
    METRICS_PORT: '0',
    DATABASE_URL: process.env.DATABASE_URL,
    REDIS_URL: process.env.REDIS_URL,
    JWT_SECRET: process.env.JWT_SECRET,
    // The suite runs once per GraphQL path (jest.config.js): spawned gateways take the same one.
    ...(process.env.GRAPHQL_FAST_PATH ? { GRAPHQL_FAST_PATH: process.env.GRAPHQL_FAST_PATH } : {}),
    ...overrides,
  };
}

/** Runs a built entry point (dist/src/*.js, built by the global setup) as a real OS process. */
export function spawnBuilt(
  entry: 'main' | 'worker' | 'cli/embedded-postgres.cli',
  env: NodeJS.ProcessEnv,
  args: readonly string[] = [],
): SpawnedProcess {
  const child = spawn(process.execPath, [resolve(__dirname, `../../dist/src/${entry}.js`), ...args], {
    env: { PATH: process.env.PATH, ...env },
    cwd: resolve(__dirname, '../..'),
  });
  let buffer = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    buffer += chunk.toString();
    listeners.forEach((listener) => listener());
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  return {
    child,
    output: () => buffer,
    exited,
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolveMatch, reject) => {
        const check = () => {
          const match = buffer.match(pattern);
          if (!match) return;
          cleanup();
          resolveMatch(match);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern}; output so far:\n${buffer}`));
        }, timeoutMs);
        const onExit = () => {
          cleanup();
          reject(new Error(`process exited before ${pattern}; output:\n${buffer}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
        };
        listeners.add(check);
        child.once('exit', onExit);
        check();
      });
    },
  };
}
