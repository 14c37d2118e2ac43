import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Context,
  type Span,
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
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** The @opentelemetry/api tracer over whatever provider the SDK registered (see tracing.sdk.ts). */
export class OtelTracer implements Tracer {
  readonly enabled = true;
  private readonly tracer: ApiTracer;

  constructor(
    name: string,
    private readonly onShutdown: () => Promise<void>,
  ) {
    this.tracer = trace.getTracer(name);
  }

  /** The parent of a new span, or undefined when the active parent is not sampled (then no span is made). */
  private parentOf(options: SpanOptions): Context | undefined {
    if (options.parent) return propagation.extract(ROOT_CONTEXT, options.parent);
    const active = context.active();
    const span = trace.getSpan(active);
    return span && !span.isRecording() ? undefined : active;
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

function annotate(span: Span, attributes: SpanAttributes, name?: string): void {
  for (const [key, value] of Object.entries(attributes))
    if (value !== undefined) span.setAttribute(key, value);
  if (name) span.updateName(name);
}
