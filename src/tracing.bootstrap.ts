import { basename } from 'node:path';
import { loadTracingSettings } from './config/tracing.settings';
import { DISABLED_TRACER, type Tracer } from './platform/tracing';
import type * as TracingSdk from './platform/tracing/tracing.sdk';

/**
 * The entry points (main.ts, worker.ts) import this module first: OpenTelemetry's instrumentation patches http,
 * pg and ioredis as they are first required, so the SDK must be running before the app's modules load.
 * Tracing settings that do not parse start nothing here; loadConfig then refuses to start, naming the variable.
 */
function startProcessTracing(): Tracer {
  const settings = loadTracingSettings();
  if (!settings?.enabled) return DISABLED_TRACER;
  // Loaded only when tracing is on: off, not one module of the SDK or its instrumentations is read.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startTracingSdk } = require('./platform/tracing/tracing.sdk') as typeof TracingSdk;
  // Which entry point is running (dist/src/worker.js or main.js): each is its own service unless OTEL_SERVICE_NAME says.
  const entry = basename(require.main?.filename ?? '', '.js');
  return startTracingSdk({
    enabled: true,
    tracesUrl: settings.tracesUrl,
    protocol: settings.protocol,
    sampler: settings.sampler,
    ratio: settings.ratio,
    serviceName: settings.serviceName ?? (entry === 'worker' ? 'crm-worker' : 'crm-gateway'),
  });
}

export const processTracer: Tracer = startProcessTracing();
