import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { Client as WsClient, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startApp, type App, type ProcessRole } from '../../src/app';
import { loadConfig } from '../../src/config/config';
import type { CrmModule } from '../../src/modules/kernel';
import type { FileStorage } from '../../src/platform/storage/file-storage';

export interface GraphQLResponse<T = Record<string, any>> {
  status: number;
  data?: T | null;
  errors?: Array<{
    message: string;
    extensions?: { code?: string; violations?: Array<{ field: string; rule: string }> };
  }>;
}

export interface TestApp {
  app: App;
  url: string;
  gql<T = Record<string, any>>(
    query: string,
    variables?: Record<string, unknown>,
    token?: string,
  ): Promise<GraphQLResponse<T>>;
  stop(): Promise<void>;
}

/** A real gateway (HTTP + WebSocket) on a free port, against crm_test and the test Redis DB. */
export async function startTestApp(
  overrides: Record<string, string> = {},
  role: ProcessRole = 'gateway',
  options: {
    modules?: readonly CrmModule[];
    queuePrefix?: string;
    migrate?: boolean;
    storage?: FileStorage;
  } = {},
): Promise<TestApp> {
  const config = loadConfig(process.env, { PORT: '0', HOST: '127.0.0.1', ...overrides });
  const app = await startApp({
    config,
    role,
    queuePrefix: options.queuePrefix ?? `test-${randomUUID().slice(0, 8)}`,
    modules: options.modules,
    migrate: options.migrate,
    storage: options.storage,
  });
  const url = app.url ?? '';
  return {
    app,
    url,
    async gql(query, variables, token) {
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as GraphQLResponse;
      return { ...body, status: response.status } as never;
    },
    stop: () => app.stop(),
  };
}

export function wsClient(
  url: string,
  authorization?: string,
  options: { keepOpen?: boolean; generateID?: () => string } = {},
): WsClient {
  return createClient({
    generateID: options.generateID,
    url: url.replace(/^http/, 'ws') + '/graphql',
    webSocketImpl: WebSocket,
    connectionParams: authorization ? { authorization } : {},
    retryAttempts: 0,
    // lazy: connect on the first operation and close after the last; otherwise stay open until dispose().
    lazy: !options.keepOpen,
  });
}

/** Runs one operation over graphql-ws; resolves with the result or rejects with the close event / errors. */
export function wsExecute(
  client: WsClient,
  query: string,
  variables?: Record<string, unknown>,
): Promise<GraphQLResponse> {
  return new Promise((resolve, reject) => {
    let result: GraphQLResponse | undefined;
    client.subscribe(
      { query, variables },
      {
        next: (value) => {
          result = value as GraphQLResponse;
        },
        error: (error: unknown) => {
          if (Array.isArray(error)) resolve({ status: 0, errors: error as GraphQLResponse['errors'] });
          else {
            const code = (error as { code?: number }).code;
            reject(Object.assign(new Error(`websocket closed (${code})`), { code }));
          }
        },
        complete: () => resolve(result ?? { status: 0 }),
      },
    );
  });
}
