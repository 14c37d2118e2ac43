import type { IncomingMessage, ServerResponse } from 'node:http';

/** Span attribute values: what OTLP carries (undefined attributes are dropped). */
export type SpanAttributes = Record<string, string | number | boolean | undefined>;

/** A trace context in W3C Trace Context form (`traceparent`, and `tracestate` when set): headers or job data. */
export type TraceCarrier = Record<string, string>;

/** What a log line carries of the active span: nothing when the request is not traced. */
export type TraceLogFields = { trace_id: string; span_id: string } | Record<string, never>;

export interface SpanOptions {
  /**
   * `server`: work begun for a caller (an operation); `consumer`: a queued job; `client`: a call out; `internal`:
   * anything else. Default `internal`.
   */
  kind?: 'internal' | 'server' | 'client' | 'consumer';
  /** Attributes known at the start. Default none. */
  attributes?: SpanAttributes;
  /**
   * The parent: a carried trace context (a job's) instead of the active span. Default the active span, and then a
   * span whose parent is not sampled is not made at all (its children would not be recorded either); without an
   * active span only a `server` or `consumer` span starts a trace, any other is not made.
   */
  parent?: TraceCarrier;
}

/** A span whose start and end are separate callbacks (a WebSocket operation): the caller ends it. */
export interface OpenSpan {
  /** Runs `fn` with this span active, so what `fn` starts (SQL, Redis, spans) is its child. */
  run<T>(fn: () => T): T;
  /** Adds attributes and, when given, renames it. */
  annotate(attributes: SpanAttributes, name?: string): void;
  /** Ends it (once; later calls do nothing). */
  end(): void;
}

/**
 * Traces: OpenTelemetry when an OTLP endpoint is configured, or a disabled tracer that only calls through. A driver
 * must:
 * - make the span of `inSpan`/`OpenSpan.run` the active one for all the async work `fn` starts (instrumented SQL,
 *   Redis and HTTP calls become its children), and end it when `fn` returns or its promise settles, marking it failed
 *   when `fn` throws or rejects, and return what `fn` returns unchanged;
 * - never record a value a caller supplied (bound SQL parameters, Redis values, GraphQL variables);
 * - cost next to nothing for requests that are not sampled, and nothing at all when disabled.
 */
export interface Tracer {
  readonly enabled: boolean;
  /** Runs `fn` inside a new span (see SpanOptions for its parent). */
  inSpan<T>(name: string, options: SpanOptions, fn: () => T): T;
  /**
   * Handles one HTTP request inside its server span (the caller's `traceparent`, or a trace of its own), ended when
   * the response is done. A request that is not sampled runs with no span at all, so nothing under it (SQL, Redis,
   * resolvers) makes one, and what it queues carries its unsampled `traceparent`.
   */
  serveHttp(req: IncomingMessage, res: ServerResponse, handle: () => void): void;
  /** Starts a span the caller ends; its parent is the active span, or none (a new trace). */
  startSpan(name: string, options?: SpanOptions): OpenSpan;
  /** Adds attributes to the active span and, when given, renames it. Nothing without one. */
  annotateActive(attributes: SpanAttributes, name?: string): void;
  /** The active trace context to carry into a job or a request; `{}` when nothing is traced. */
  carrier(): TraceCarrier;
  /** The active span's ids for a log line (a pino mixin); `{}` when it is not sampled. */
  logFields(): TraceLogFields;
  /** Exports what is buffered and stops. Idempotent. */
  shutdown(): Promise<void>;
}

/** An OpenSpan that does nothing: the disabled tracer's, and an unsampled parent's. */
export const NOOP_SPAN: OpenSpan = {
  run: (fn) => fn(),
  annotate: () => {},
  end: () => {},
};

/** Tracing off: every call goes straight through. */
export const DISABLED_TRACER: Tracer = {
  enabled: false,
  inSpan: (_name, _options, fn) => fn(),
  serveHttp: (_req, _res, handle) => handle(),
  startSpan: () => NOOP_SPAN,
  annotateActive: () => {},
  carrier: () => ({}),
  logFields: () => ({}),
  shutdown: async () => {},
};
