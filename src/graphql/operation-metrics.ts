import { BoundedLabel, type Metrics } from '../platform/metrics/metrics';

/** GraphQL operation and error metrics, shared by the HTTP (Apollo plugin) and WebSocket paths. */
export class OperationMetrics {
  private readonly names = new BoundedLabel(100);

  constructor(private readonly metrics: Metrics) {}

  /** Starts timing an operation; call the returned function when it has been answered. */
  start(operationType: string, operationName: string | null | undefined): () => void {
    const labels = { operation_type: operationType, operation_name: this.names.of(operationName) };
    const stopTimer = this.metrics.graphqlDuration.startTimer(labels);
    return () => {
      stopTimer();
      this.metrics.graphqlOperations.inc(labels);
    };
  }

  error(code: string): void {
    this.metrics.graphqlErrors.inc({ code });
  }

  subscriptionOpened(): void {
    this.metrics.activeSubscriptions.inc();
  }

  subscriptionClosed(): void {
    this.metrics.activeSubscriptions.dec();
  }
}
