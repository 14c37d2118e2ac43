// The tracer port and what the app uses of it. The SDK (tracing.sdk.ts) is imported by the entry points' bootstrap
// only, so nothing else loads OpenTelemetry's SDK and instrumentations.
export { activeTraceCarrier as traceHeaders } from './otel.tracer';
export { TRACE_CONTEXT_KEY, tracedQueue } from './traced.queue';
export * from './tracer.port';
