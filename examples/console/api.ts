import { createClient, type Client } from 'graphql-ws';
import type { TypedDocumentString } from '../generated/graphql';
import manifest from '../generated/persisted-query-manifest.json';

/**
 * The console's GraphQL client: the generated documents (typed results and variables), sent as the bodies of the
 * persisted-operation manifest (the same text a safelist compares), over POST /graphql and graphql-ws. Nothing else
 * of the gateway is used but the download URL an export returns.
 */

const BODIES = new Map(manifest.operations.map((operation) => [operation.id, operation.body]));

export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

interface GraphQLErrorShape {
  message: string;
  extensions?: { code?: string };
}

/** The manifest's body for a generated document (its hash), or the document's own text. */
function bodyOf<TResult, TVariables>(document: TypedDocumentString<TResult, TVariables>): string {
  const hash = (document.__meta__ as { hash?: string } | undefined)?.hash?.replace(/^sha256:/, '');
  return (hash && BODIES.get(hash)) || document.toString();
}

function failure(errors: readonly GraphQLErrorShape[]): ApiError {
  const [first] = errors;
  return new ApiError(first?.message ?? 'request failed', first?.extensions?.code);
}

export class Api {
  private socket: Client | undefined;

  constructor(private token: string) {}

  get authorization(): string {
    return `Bearer ${this.token}`;
  }

  async request<TResult, TVariables>(
    document: TypedDocumentString<TResult, TVariables>,
    ...[variables]: TVariables extends Record<string, never> ? [] : [TVariables]
  ): Promise<TResult> {
    const response = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: this.authorization },
      body: JSON.stringify({ query: bodyOf(document), variables }),
    });
    const answer = (await response.json()) as { data?: TResult | null; errors?: GraphQLErrorShape[] };
    if (answer.errors?.length) throw failure(answer.errors);
    if (!answer.data) throw new ApiError(`HTTP ${response.status} without data`, undefined);
    return answer.data;
  }

  /** Each event to onEvent until the server completes; resolves then, rejects on an error. */
  subscribe<TResult, TVariables>(
    document: TypedDocumentString<TResult, TVariables>,
    variables: TVariables,
    onEvent: (data: TResult) => void,
  ): Promise<void> {
    this.socket ??= createClient({
      url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`,
      connectionParams: { authorization: this.authorization },
      lazy: true,
      retryAttempts: 2,
    });
    const socket = this.socket;
    return new Promise((resolve, reject) => {
      socket.subscribe<TResult>(
        { query: bodyOf(document), variables: variables as Record<string, unknown> },
        {
          next: (result) => {
            if (result.errors?.length) reject(failure(result.errors));
            else if (result.data) onEvent(result.data);
          },
          error: (error: unknown) =>
            reject(
              Array.isArray(error)
                ? failure(error as GraphQLErrorShape[])
                : new ApiError(String(error), undefined),
            ),
          complete: resolve,
        },
      );
    });
  }

  /** A file the API pointed to (an export's downloadUrl), fetched with the token. */
  async download(url: string): Promise<Blob> {
    const response = await fetch(url, { headers: { authorization: this.authorization } });
    if (!response.ok) throw new ApiError(`download failed: HTTP ${response.status}`, undefined);
    return response.blob();
  }

  close(): void {
    void this.socket?.dispose();
    this.socket = undefined;
  }
}
