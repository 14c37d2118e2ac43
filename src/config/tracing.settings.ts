import { z } from 'zod';
import { booleanFlag, optionalUrl } from './settings';

/*
 * OpenTelemetry's own variables (the names every OTel SDK reads), validated here like the rest. They are read twice:
 * by the tracing bootstrap, before anything instrumented loads (it starts the SDK only when they parse), and by
 * loadConfig, which fails at boot naming a bad one. The OTLP exporter reads OTEL_EXPORTER_OTLP_HEADERS and
 * OTEL_EXPORTER_OTLP_TIMEOUT, and the resource OTEL_RESOURCE_ATTRIBUTES, by themselves.
 */

export const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type SamplerName = (typeof SAMPLERS)[number];

const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
const otlpProtocol = z
  .enum(OTLP_PROTOCOLS, {
    message: 'must be http/protobuf or http/json (this gateway exports over OTLP/HTTP)',
  })
  .optional();

export const tracingVariables = {
  /** Unset: tracing is off (no SDK starts). Traces go to `<endpoint>/v1/traces`. */
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalUrl(/^(http|https):\/\//),
  /** The traces URL itself, used as given (overrides OTEL_EXPORTER_OTLP_ENDPOINT). */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optionalUrl(/^(http|https):\/\//),
  OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol,
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol,
  OTEL_EXPORTER_OTLP_HEADERS: z.string().optional(),
  OTEL_EXPORTER_OTLP_TIMEOUT: z.coerce.number().int().positive().optional(),
  OTEL_TRACES_SAMPLER: z
    .enum(SAMPLERS, { message: `must be one of ${SAMPLERS.join(', ')}` })
    .default('parentbased_always_on'),
  /** The ratio of the *traceidratio samplers, 0 to 1. Default 1. */
  OTEL_TRACES_SAMPLER_ARG: z
    .string()
    .optional()
    .refine((value) => value === undefined || value === '' || isRatio(Number(value)), {
      message: 'must be a number from 0 to 1 (the fraction of traces sampled)',
    }),
  /** Default `crm-gateway` for the gateway, `crm-worker` for the worker. */
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
  OTEL_RESOURCE_ATTRIBUTES: z.string().optional(),
  /** `true` keeps tracing off even with an endpoint set. */
  OTEL_SDK_DISABLED: booleanFlag(false),
};

function isRatio(value: number): boolean {
  return Number.isFinite(value) && value >= 0 && value <= 1;
}

export interface TracingSettings {
  /** Whether the SDK starts: an endpoint is set and OTEL_SDK_DISABLED is not. */
  readonly enabled: boolean;
  /** Where spans are POSTed (OTLP/HTTP). */
  readonly tracesUrl?: string;
  readonly protocol: 'http/protobuf' | 'http/json';
  readonly sampler: SamplerName;
  /** The sampling ratio of the *traceidratio samplers. */
  readonly ratio: number;
  readonly serviceName?: string;
}

type TracingEnv = z.infer<z.ZodObject<typeof tracingVariables>>;

export function readTracingSettings(e: TracingEnv): TracingSettings {
  const endpoint = e.OTEL_EXPORTER_OTLP_ENDPOINT?.replace(/\/+$/, '');
  const tracesUrl = e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (endpoint ? `${endpoint}/v1/traces` : undefined);
  const arg = e.OTEL_TRACES_SAMPLER_ARG;
  return {
    enabled: tracesUrl !== undefined && !e.OTEL_SDK_DISABLED,
    tracesUrl,
    // The OTLP specification's default for OTLP/HTTP.
    protocol: e.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? e.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf',
    sampler: e.OTEL_TRACES_SAMPLER,
    ratio: arg === undefined || arg === '' ? 1 : Number(arg),
    serviceName: e.OTEL_SERVICE_NAME,
  };
}

/**
 * The tracing settings alone, for the bootstrap that runs before the rest of the config can load; `undefined` when
 * they do not parse (loadConfig then refuses to start, naming the variable).
 */
export function loadTracingSettings(env: NodeJS.ProcessEnv = process.env): TracingSettings | undefined {
  const parsed = z.object(tracingVariables).safeParse(env);
  return parsed.success ? readTracingSettings(parsed.data) : undefined;
}
