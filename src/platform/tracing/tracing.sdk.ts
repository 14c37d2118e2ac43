import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  NodeTracerProvider,
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SamplingResult,
} from '@opentelemetry/sdk-trace-node';
import { trace } from '@opentelemetry/api';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { OtelTracer } from './otel.tracer';
import { DISABLED_TRACER, type Tracer } from './tracer.port';

export interface TracingSdkOptions {
  /** Off: no SDK, no instrumentation, the disabled tracer. */
  enabled: boolean;
  /** The OTLP/HTTP traces URL (`<OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces`). */
  tracesUrl?: string;
  /** Default `http/protobuf` (OTLP's default for HTTP). */
  protocol?: 'http/protobuf' | 'http/json';
  /** OTEL_TRACES_SAMPLER's name. Default `parentbased_always_on`. */
  sampler?: string;
  /** The *traceidratio samplers' ratio. Default 1. */
  ratio?: number;
  /** OTEL_SERVICE_NAME, or the process's default (`crm-gateway`, `crm-worker`). */
  serviceName: string;
}

/** The SDK's sampler of a span that has a parent (local or carried), by OTEL_TRACES_SAMPLER's name. */
function samplerOf(name: string | undefined, ratio: number): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** The share of new traces (a request or job with no parent) the named sampler keeps. */
export function rootRatioOf(name: string | undefined, ratio: number): number {
  switch (name) {
    case 'always_off':
    case 'parentbased_always_off':
      return 0;
    case 'traceidratio':
    case 'parentbased_traceidratio':
      return ratio;
    default:
      return 1;
  }
}

/**
 * Samples a span with a parent as the configured sampler does, and keeps every root: the tracer has decided a root's
 * sampling before it asks for the span (OtelTracer's `rootRatio`), so a request it leaves out costs no span, no ids
 * and no sampler call at all.
 */
class RootDecidedSampler implements Sampler {
  constructor(private readonly withParent: Sampler) {}

  shouldSample(...args: Parameters<Sampler['shouldSample']>): SamplingResult {
    const [parent] = args;
    if (!trace.getSpanContext(parent)) return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    return this.withParent.shouldSample(...args);
  }

  toString(): string {
    return `RootDecidedSampler{${this.withParent.toString()}}`;
  }
}

/**
 * Starts OpenTelemetry for this process: the tracer provider (W3C propagation, AsyncLocalStorage context), the OTLP
 * exporter behind a batch processor, and the instrumentations of outgoing http, pg and ioredis (incoming requests
 * are the gateway's own spans, see OtelTracer.serveHttp). Call it before those
 * modules are first required (the entry points import the bootstrap first): instrumentation patches them as they load.
 *
 * Recorded: SQL statement text (with its $n placeholders, never the bound values: enhancedDatabaseReporting stays
 * off) and Redis command names only. SQL and Redis calls outside any span (pool upkeep, BullMQ's polling) start no
 * trace.
 */
export function startTracingSdk(options: TracingSdkOptions): Tracer {
  if (!options.enabled || !options.tracesUrl) return DISABLED_TRACER;
  const exporter =
    options.protocol === 'http/json'
      ? new OtlpJsonExporter({ url: options.tracesUrl })
      : new OtlpProtobufExporter({ url: options.tracesUrl });
  const resource = resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }).merge(
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, which win over the default name.
    detectResources({ detectors: [envDetector] }),
  );
  const provider = new NodeTracerProvider({
    resource,
    sampler: new RootDecidedSampler(samplerOf(options.sampler, options.ratio ?? 1)),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  provider.register();
  const unregister = registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        // The gateway opens its requests' spans itself (Tracer.serveHttp), where an unsampled request can skip them.
        disableIncomingRequestInstrumentation: true,
        // Outgoing calls (OpenSearch, webhooks) are traced as part of a request or job, never on their own.
        requireParentforOutgoingSpans: true,
      }),
      new PgInstrumentation({
        enhancedDatabaseReporting: false,
        requireParentSpan: true,
        ignoreConnectSpans: true,
      }),
      new IORedisInstrumentation({
        requireParentSpan: true,
        // The command's name only: keys may hold ids and arguments hold values.
        dbStatementSerializer: (command) => command,
      }),
    ],
  });
  let stopped: Promise<void> | undefined;
  return new OtelTracer('crm-gateway', rootRatioOf(options.sampler, options.ratio ?? 1), () => {
    stopped ??= (async () => {
      unregister();
      await provider.shutdown();
    })();
    return stopped;
  });
}
