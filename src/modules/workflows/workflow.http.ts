import type { FieldViolation } from '../../platform/errors/app-error';
import { traceHeaders } from '../../platform/tracing';
import { PermanentStepError, type ActionContext, type ActionSettings } from './workflow-action.contract';

// The HTTP side of the http.request and notify.webhook actions: the allow-list, and calls that respect it.

/** Is `url` under one of the allow-listed prefixes (same origin, path under the prefix's path)? */
export function urlAllowed(url: string, allowList: readonly string[]): boolean {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return false;
  }
  if (!['http:', 'https:'].includes(target.protocol) || target.username || target.password) return false;
  // Encoded separators and dots survive URL normalisation, and servers behind the prefix may decode them.
  if (/%(2f|5c|2e)/i.test(target.pathname)) return false;
  return allowList.some((entry) => {
    try {
      const allowed = new URL(entry);
      // Whole path segments: a prefix `/api` allows `/api` and `/api/...`, not `/api-internal`.
      const prefix = allowed.pathname.endsWith('/') ? allowed.pathname : `${allowed.pathname}/`;
      return (
        allowed.origin === target.origin &&
        (target.pathname === allowed.pathname || target.pathname.startsWith(prefix))
      );
    } catch {
      return false;
    }
  });
}

export function checkUrl(
  config: Record<string, unknown>,
  settings: ActionSettings,
  field: string,
  violations: FieldViolation[],
) {
  if (!urlAllowed(String(config.url), settings.httpAllowList))
    violations.push({
      field: `${field}.url`,
      rule: `must start with an allow-listed prefix (WORKFLOW_HTTP_ALLOWLIST: ${settings.httpAllowList.join(', ') || 'empty'})`,
    });
}

const MAX_RESPONSE_BYTES = 1024 * 1024;

/** The response body as text, refusing (and stopping the download of) anything over 1 MB. */
async function readCapped(response: Response, url: string): Promise<string> {
  const tooLarge = () => new PermanentStepError(`${url} answered more than ${MAX_RESPONSE_BYTES} bytes`);
  if (Number(response.headers.get('content-length') ?? 0) > MAX_RESPONSE_BYTES) {
    await response.body?.cancel();
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  if (!response.body) return '';
  // Leaving the loop early cancels the stream (the rest is never downloaded).
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.byteLength;
    if (bytes > MAX_RESPONSE_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function callAllowed(
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
  context: ActionContext,
): Promise<{ status: number; body: unknown }> {
  if (!urlAllowed(url, context.settings.httpAllowList))
    throw new PermanentStepError(`${url} is not on the allow-list`);
  const signal = AbortSignal.any([context.signal, AbortSignal.timeout(context.timeoutMs)]);
  // No redirects: a redirect could leave the allow-list.
  // The step's trace goes along (W3C traceparent), so the called service's spans join it.
  const headers = { ...init.headers, ...traceHeaders() };
  const response = await fetch(url, { ...init, headers, signal, redirect: 'error' });
  const raw = await readCapped(response, url);
  let body: unknown = raw;
  if ((response.headers.get('content-type') ?? '').includes('json')) {
    try {
      body = JSON.parse(raw);
    } catch {
      body = raw;
    }
  }
  if (response.status >= 500 || response.status === 429)
    throw new Error(`${url} answered ${response.status}`);
  if (response.status >= 400)
    throw new PermanentStepError(`${url} answered ${response.status}: ${raw.slice(0, 200)}`);
  return { status: response.status, body };
}
