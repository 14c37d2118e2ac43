/**
 * The bench's load generator, run as its own process so it never shares an event loop (or a core's time slice)
 * with the server it measures: reads one autocannon run's options as JSON from argv, prints the result as JSON.
 */
import autocannon from 'autocannon';

export interface LoadRequest {
  url: string;
  connections: number;
  durationSeconds: number;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  /** A response whose body differs counts as a mismatch (an error). */
  expectBody?: string;
}

export interface LoadReport {
  requests: number;
  durationSeconds: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

if (require.main === module) {
  const options = JSON.parse(process.argv[2] ?? '{}') as LoadRequest;
  void autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationSeconds,
    method: options.method,
    headers: options.headers,
    body: options.body,
    expectBody: options.expectBody,
  }).then((result) => {
    const report: LoadReport = {
      requests: result.requests.total,
      durationSeconds: result.duration,
      requestsPerSecond: result.requests.total / result.duration,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      errors: result.errors + result.timeouts + result.non2xx + (result.mismatches ?? 0),
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  });
}
