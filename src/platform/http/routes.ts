import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';

export type RouteMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** What a route handler sees: the authenticated caller (or none), the path parameters, query and JSON body. */
export interface RouteRequest<Caller> {
  caller: Caller | undefined;
  params: Readonly<Record<string, string>>;
  query: Readonly<Record<string, string | undefined>>;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body (POST/PUT), within the gateway's body limit. */
  body: unknown;
  requestId: string;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/** A JSON answer, or a stream (e.g. a download) with its headers. */
export type RouteResponse =
  | { status?: number; json: unknown; headers?: Record<string, string> }
  | { status?: number; stream: Readable; headers?: Record<string, string> };

export interface RouteDefinition<Caller = unknown> {
  method: RouteMethod;
  /** express path, e.g. `/exports/:id/download`; must not be `/graphql`, `/healthz` or `/readyz`. */
  path: string;
  /** Default true: anonymous callers get 401 before the handler runs. */
  requiresAuth?: boolean;
  handler(request: RouteRequest<Caller>): Promise<RouteResponse>;
}
