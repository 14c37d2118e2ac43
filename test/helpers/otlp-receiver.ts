import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';

/**
 * The part of OTLP's trace protocol a test reads (opentelemetry-proto: collector/trace/v1/trace_service.proto,
 * trace/v1/trace.proto, common/v1/common.proto, resource/v1/resource.proto), field numbers as published. Fields
 * left out are skipped by the decoder, as protobuf allows.
 */
const OTLP_TRACE_PROTO = `
syntax = "proto3";
package otlp;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; }
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  string name = 5;
  int32 kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  Status status = 15;
}
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
`;

const ExportTraceServiceRequest = protobuf
  .parse(OTLP_TRACE_PROTO, { keepCase: false })
  .root.lookupType('otlp.ExportTraceServiceRequest');

/** One received span, the same whichever encoding carried it. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP's SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  attributes: Record<string, unknown>;
  /** The resource's service.name. */
  service: string;
  /** `protobuf` or `json`: how it arrived. */
  encoding: 'protobuf' | 'json';
}

type AnyValue = Record<string, unknown> | undefined;
type KeyValue = { key: string; value?: AnyValue };

function valueOf(value: AnyValue): unknown {
  if (!value) return undefined;
  for (const key of ['stringValue', 'boolValue', 'doubleValue'] as const) if (key in value) return value[key];
  if ('intValue' in value) return Number(value.intValue);
  if ('arrayValue' in value)
    return ((value.arrayValue as { values?: AnyValue[] }).values ?? []).map((item) => valueOf(item));
  return undefined;
}

function attributesOf(list: KeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map(({ key, value }) => [key, valueOf(value)]));
}

/** Ids as hex: protobuf carries bytes, OTLP/JSON hex strings. */
function hexOf(id: unknown): string {
  if (!id) return '';
  return typeof id === 'string' ? id.toLowerCase() : Buffer.from(id as Uint8Array).toString('hex');
}

interface ExportRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: Array<{
      spans?: Array<{
        traceId?: unknown;
        spanId?: unknown;
        parentSpanId?: unknown;
        name?: string;
        kind?: number;
        attributes?: KeyValue[];
      }>;
    }>;
  }>;
}

/**
 * A real OTLP/HTTP traces endpoint on loopback: `POST /v1/traces` in protobuf (`application/x-protobuf`) or JSON
 * (`application/json`), answered as a collector does (200 with an empty ExportTraceServiceResponse). Every span
 * received is kept, and every request counted.
 */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  requests = 0;
  private server!: Server;
  url = '';

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          res.writeHead(404).end();
          return;
        }
        this.requests += 1;
        const body = Buffer.concat(chunks);
        const json = (req.headers['content-type'] ?? '').includes('json');
        try {
          const request = json
            ? (JSON.parse(body.toString('utf8')) as ExportRequest)
            : (ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(body), {
                longs: String,
                bytes: Buffer,
              }) as ExportRequest);
          this.collect(request, json ? 'json' : 'protobuf');
        } catch (error) {
          res.writeHead(400, { 'content-type': 'text/plain' }).end(String(error));
          return;
        }
        if (json) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(Buffer.alloc(0));
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  private collect(request: ExportRequest, encoding: ReceivedSpan['encoding']): void {
    for (const resourceSpans of request.resourceSpans ?? []) {
      const name = attributesOf(resourceSpans.resource?.attributes)['service.name'];
      const service = typeof name === 'string' ? name : '';
      for (const scopeSpans of resourceSpans.scopeSpans ?? [])
        for (const span of scopeSpans.spans ?? [])
          this.spans.push({
            traceId: hexOf(span.traceId),
            spanId: hexOf(span.spanId),
            parentSpanId: hexOf(span.parentSpanId),
            name: span.name ?? '',
            kind: Number(span.kind ?? 0),
            attributes: attributesOf(span.attributes),
            service,
            encoding,
          });
    }
  }

  trace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((span) => span.traceId === traceId);
  }

  /** Resolves once `check` holds of the spans received, polling; rejects after `timeoutMs` saying what arrived. */
  async waitFor<T>(check: (spans: ReceivedSpan[]) => T | undefined | false, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = check(this.spans);
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(
          `spans never arrived; received ${this.spans.length}: ${this.spans.map((s) => `${s.service}/${s.name}`).join(', ')}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
