import type { RequestHandler, Response } from 'express';
import type { GraphQLError } from 'graphql';
import type { Authentication, OperationCore } from '../graphql/operation';

/** The caller the middleware authenticated, kept for Apollo's context function (one check per request). */
export function authenticatedCaller(res: Response): Authentication | undefined {
  return res.locals.caller as Authentication | undefined;
}

/**
 * Before Apollo (whose own APQ is off): the request's persisted-operation extension and the safelist through the
 * operation core. The document to run (the hash's, or the request's own) goes where Apollo reads it (the JSON body for
 * POST, the search string for GET) without the extension, a refusal is answered here with its code and status, and a
 * request without either passes unchanged.
 */
export function persistedOperations(core: OperationCore): RequestHandler {
  return async (req, res, next) => {
    try {
      const method = req.method === 'GET' ? 'GET' : req.method === 'POST' ? 'POST' : undefined;
      const request = method === 'GET' ? getRequest(req) : postRequest(req.body);
      if (!method || !request) return next();
      const caller = await core.authenticate(req.headers.authorization);
      res.locals.caller = caller;
      // Apollo answers a refused token first, as it does for every request.
      if ('error' in caller) return next();
      const resolved = await core.resolveOperation(request.fields, { principal: caller.principal, method });
      if ('error' in resolved) return answerError(core, res, resolved.error);
      if (resolved.unchanged) return next();
      // Apollo's own APQ is off: it must not see the extension (it would answer PERSISTED_QUERY_NOT_SUPPORTED).
      request.replace(resolved.query);
      next();
    } catch (error) {
      next(error);
    }
  };
}

interface EdgeRequest {
  fields: { query?: unknown; extensions?: unknown };
  /** Puts the document to run where Apollo reads it, and drops the extension Apollo would refuse. */
  replace(query: string): void;
}

function withoutPersistedQuery(extensions: Record<string, unknown>): Record<string, unknown> | undefined {
  const { persistedQuery: _persistedQuery, ...rest } = extensions;
  return Object.keys(rest).length > 0 ? rest : undefined;
}

function postRequest(body: unknown): EdgeRequest | undefined {
  // Batches (arrays) are Apollo's to refuse; anything not an object is its to answer.
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const fields = body as Record<string, unknown>;
  return {
    fields,
    replace(query) {
      fields.query = query;
      const rest = isRecord(fields.extensions) ? withoutPersistedQuery(fields.extensions) : undefined;
      if (rest) fields.extensions = rest;
      else delete fields.extensions;
    },
  };
}

function getRequest(req: { url: string }): EdgeRequest | undefined {
  const [path, search = ''] = req.url.split(/\?(.*)/s, 2) as [string, string?];
  const params = new URLSearchParams(search);
  let extensions: unknown;
  try {
    extensions = params.has('extensions') ? JSON.parse(params.get('extensions')!) : undefined;
  } catch {
    return undefined; // Apollo answers malformed JSON in a search parameter
  }
  const fields = { query: params.get('query') ?? undefined, extensions };
  if (fields.query === undefined && extensions === undefined) return undefined; // the Sandbox page
  return {
    fields,
    replace(query) {
      params.set('query', query);
      const rest = isRecord(extensions) ? withoutPersistedQuery(extensions) : undefined;
      if (rest) params.set('extensions', JSON.stringify(rest));
      else params.delete('extensions');
      // Apollo's express integration reads the search string from req.url.
      req.url = `${path}?${params.toString()}`;
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function answerError(core: OperationCore, res: Response, error: GraphQLError): void {
  const { status, headers, body } = core.refusalResponse(error);
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.status(status).json(body);
}
