import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  context,
  createContextKey,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Context,
  type Span,
  type SpanContext,
  type Tracer as ApiTracer,
} from '@opentelemetry/api';
import type {
  OpenSpan,
  SpanAttributes,
  SpanOptions,
  TraceCarrier,
  TraceLogFields,
  Tracer,
} from './tracer.port';
import { NOOP_SPAN } from './tracer.port';

const KINDS = {
  internal: SpanKind.INTERNAL,
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  consumer: SpanKind.CONSUMER,
} as const;

function fail(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/**
 * Set instead of a span on an unsampled request's context: nothing under it starts a span (instrumented SQL and
 * Redis calls see no parent and skip all their work), and its jobs carry the trace as not sampled.
 */
const UNSAMPLED = createContextKey('crm unsampled request');

/** Probes and the metrics scrape are not worth a trace each. */
const UNTRACED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);
/** Paths a span may be named after (others hold ids: `/exports/:id/download`), the route's own name otherwise. */
const NAMED_PATHS = new Set(['/graphql']);

/** Runs `fn` with `span` active in `parent`, ending the span when `fn` is done unless `keepOpen`. */
function runIn<T>(span: Span, parent: Context, fn: () => T, keepOpen = false): T {
  return context.with(trace.setSpan(parent, span), () => {
    let result: T;
    try {
      result = fn();
    } catch (error) {
      fail(span, error);
      if (!keepOpen) span.end();
      throw error;
    }
    if (keepOpen) return result;
    if (!isPromiseLike(result)) {
      span.end();
      return result;
    }
    return result.then(
      (value) => {
        span.end();
        return value;
      },
      (error: unknown) => {
        fail(span, error);
        span.end();
        throw error;
      },
    ) as T;
  });
}

/** The trace context of the active span as W3C headers (the SDK registers the propagator; unregistered: `{}`). */
export function activeTraceCarrier(): TraceCarrier {
  const carrier: TraceCarrier = {};
  const active = context.active();
  const unsampled = active.getValue(UNSAMPLED) as SpanContext | undefined;
  propagation.inject(unsampled ? trace.setSpanContext(ROOT_CONTEXT, unsampled) : active, carrier);
  return carrier;
}

/** The @opentelemetry/api tracer over whatever provider the SDK registered (see tracing.sdk.ts). */
export class OtelTracer implements Tracer {
  readonly enabled = true;
  private readonly tracer: ApiTracer;

  /**
   * @param rootRatio The share of new traces to keep (the sampler's root ratio). The tracer decides a root itself,
   * before any span exists, and the SDK's sampler (tracing.sdk.ts) keeps every root it is asked for: a request left
   * out then costs no span, no ids and no sampler call.
   */
  constructor(
    name: string,
    private readonly rootRatio: number,
    private readonly onShutdown: () => Promise<void>,
  ) {
    this.tracer = trace.getTracer(name);
  }

  private keepsRoot(): boolean {
    return this.rootRatio >= 1 || (this.rootRatio > 0 && Math.random() < this.rootRatio);
  }

  /** The parent of a new span, or undefined when the active parent is not sampled (then no span is made). */
  private parentOf(options: SpanOptions): Context | undefined {
    if (options.parent) {
      const carried = propagation.extract(ROOT_CONTEXT, options.parent);
      // A carrier without a trace (a job queued outside any) starts one, sampled as any root is.
      return trace.getSpanContext(carried) || this.keepsRoot() ? carried : undefined;
    }
    const active = context.active();
    if (active.getValue(UNSAMPLED)) return undefined;
    const span = trace.getSpan(active);
    // Only work begun for a caller starts a trace: anything else outside a recording span is not traced.
    if (!span)
      return (options.kind === 'server' || options.kind === 'consumer') && this.keepsRoot()
        ? active
        : undefined;
    return span.isRecording() ? active : undefined;
  }

  private start(name: string, options: SpanOptions, parent: Context): Span {
    return this.tracer.startSpan(
      name,
      { kind: KINDS[options.kind ?? 'internal'], attributes: options.attributes },
      parent,
    );
  }

  inSpan<T>(name: string, options: SpanOptions, fn: () => T): T {
    const parent = this.parentOf(options);
    if (!parent) return fn();
    return runIn(this.start(name, options, parent), parent, fn);
  }

  serveHttp(req: IncomingMessage, res: ServerResponse, handle: () => void): void {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (UNTRACED_PATHS.has(path)) return handle();
    const parent =
      req.headers.traceparent !== undefined ? propagation.extract(ROOT_CONTEXT, req.headers) : ROOT_CONTEXT;
    const carried = trace.getSpanContext(parent) !== undefined;
    // A request that starts a trace and is not sampled runs with no context at all, the cheapest path: nothing under
    // it has a parent to make a span under (its jobs are sampled as traces of their own).
    if (!carried && !this.keepsRoot()) return handle();
    const method = req.method ?? 'GET';
    const span = this.tracer.startSpan(
      NAMED_PATHS.has(path) ? `${method} ${path}` : method,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': path } },
      parent,
    );
    if (!span.isRecording()) {
      // A caller that said "not sampled" has that honoured down to the jobs it queues.
      return handleIn(parent.setValue(UNSAMPLED, span.spanContext()), req, res, handle);
    }
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      span.setAttribute('http.response.status_code', res.statusCode);
      if (!res.writableFinished) span.setAttribute('crm.http.aborted', true);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    handleIn(trace.setSpan(parent, span), req, res, handle);
  }

  startSpan(name: string, options: SpanOptions = {}): OpenSpan {
    const parent = this.parentOf(options);
    if (!parent) return NOOP_SPAN;
    const span = this.start(name, options, parent);
    let ended = false;
    return {
      run: (fn) => runIn(span, parent, fn, true),
      annotate: (attributes, newName) => annotate(span, attributes, newName),
      end: () => {
        if (ended) return;
        ended = true;
        span.end();
      },
    };
  }

  annotateActive(attributes: SpanAttributes, name?: string): void {
    const span = trace.getActiveSpan();
    if (span?.isRecording()) annotate(span, attributes, name);
  }

  carrier(): TraceCarrier {
    return activeTraceCarrier();
  }

  logFields(): TraceLogFields {
    const ids = trace.getActiveSpan()?.spanContext();
    if (!ids || !(ids.traceFlags & TraceFlags.SAMPLED)) return {};
    return { trace_id: ids.traceId, span_id: ids.spanId };
  }

  shutdown(): Promise<void> {
    return this.onShutdown();
  }
}

/**
 * Runs a request's handler in `ctx`, with the request's and response's event listeners bound to it too: the body's
 * `data`/`end` callbacks run in the socket's async context otherwise, and what they start would lose the span.
 */
function handleIn(ctx: Context, req: IncomingMessage, res: ServerResponse, handle: () => void): void {
  context.bind(ctx, req);
  context.bind(ctx, res);
  context.with(ctx, handle);
}

function annotate(span: Span, attributes: SpanAttributes, name?: string): void {
  for (const [key, value] of Object.entries(attributes))
    if (value !== undefined) span.setAttribute(key, value);
  if (name) span.updateName(name);
}
