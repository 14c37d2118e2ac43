import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from '../logging/logger';
import type { RedisClient } from '../redis/redis.connection';

export type EventHandler = (message: string) => void;

/** Cross-process broadcast of string messages: Redis pub/sub when configured, in-process otherwise. */
export interface EventBus {
  readonly driver: 'redis' | 'memory';
  publish(channel: string, message: string): Promise<void>;
  /** Returns a function that removes this handler. */
  subscribe(channel: string, handler: EventHandler): Promise<() => Promise<void>>;
  /** Called after the subscription was lost and restored (messages in between are gone). */
  onReconnect(handler: () => void): void;
  /**
   * True while every subscription is known to be live. False from the moment the subscriber connection drops until
   * it is back and resubscribed: messages sent meanwhile may be lost, so whatever they would invalidate is suspect.
   */
  isListening(): boolean;
  /** Resolves true once `isListening()` holds, or false after `timeoutMs`. */
  whenListening(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

export class MemoryEventBus implements EventBus {
  readonly driver = 'memory' as const;
  private readonly emitter = new EventEmitter().setMaxListeners(0);

  async publish(channel: string, message: string): Promise<void> {
    this.emitter.emit(channel, message);
  }

  async subscribe(channel: string, handler: EventHandler): Promise<() => Promise<void>> {
    this.emitter.on(channel, handler);
    return async () => {
      this.emitter.off(channel, handler);
    };
  }

  onReconnect(): void {
    // In-process delivery cannot be interrupted.
  }

  isListening(): boolean {
    return true;
  }

  async whenListening(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}

const RECONNECTED = Symbol('reconnected') as unknown as string;

export interface RedisEventBusOptions {
  /**
   * How often this process sends itself a heartbeat through Redis. The subscription counts as live only while the
   * last one came back within three periods: that also catches what no connection event reports (a Redis Cluster
   * subscriber moving nodes, a half-open socket). Default 1000 ms.
   */
  heartbeatMs?: number;
}

/** Uses two connections, as Redis requires: one publishes, one is in subscriber mode. */
export class RedisEventBus implements EventBus {
  readonly driver = 'redis' as const;
  private readonly local = new EventEmitter().setMaxListeners(0);
  private readonly channelRefs = new Map<string, number>();
  private readonly heartbeatChannel = `crm:bus:heartbeat:${randomUUID()}`;
  private readonly heartbeatMs: number;
  private readonly heartbeat: NodeJS.Timeout;
  private resubscribeTimer?: NodeJS.Timeout;
  private connected: boolean;
  private lastEcho = 0;

  constructor(
    private readonly publisher: RedisClient,
    private readonly subscriber: RedisClient,
    private readonly logger: Logger,
    options: RedisEventBusOptions = {},
  ) {
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.heartbeatChannel) this.onEcho();
      else this.local.emit(channel, message);
    });
    this.connected = subscriber.status === 'ready';
    subscriber.on('close', () => {
      this.connected = false;
    });
    subscriber.on('ready', () => this.resubscribe());
    this.channelRefs.set(this.heartbeatChannel, 1);
    subscriber.subscribe(this.heartbeatChannel).then(
      () => this.beat(),
      () => {
        // Retried on the next 'ready'.
      },
    );
    this.heartbeat = setInterval(() => this.beat(), this.heartbeatMs);
    this.heartbeat.unref();
  }

  private beat(): void {
    this.publisher.publish(this.heartbeatChannel, '1').catch(() => {
      // A missing echo is the signal; nothing to log every second.
    });
  }

  async whenListening(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.isListening() && Date.now() < deadline) {
      this.beat();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.isListening();
  }

  /** ioredis resubscribes on its own but does not say when that is done: subscribe again (idempotent) and wait. */
  private resubscribe(): void {
    clearTimeout(this.resubscribeTimer);
    this.subscriber.subscribe(...this.channelRefs.keys()).then(
      () => {
        if (this.subscriber.status !== 'ready') return;
        this.connected = true;
        this.beat();
      },
      (error: Error) => {
        this.logger.warn({ err: error.message }, 'resubscribe failed; retrying');
        this.resubscribeTimer = setTimeout(() => this.resubscribe(), this.heartbeatMs);
        this.resubscribeTimer.unref();
      },
    );
  }

  private onEcho(): void {
    const wasListening = this.isListening();
    this.lastEcho = Date.now();
    // Heard ourselves again after a gap: messages in between may be lost, so listeners start afresh.
    if (!wasListening && this.connected) this.local.emit(RECONNECTED, '');
  }

  isListening(): boolean {
    return this.connected && Date.now() - this.lastEcho < 3 * this.heartbeatMs;
  }

  onReconnect(handler: () => void): void {
    this.local.on(RECONNECTED, handler);
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.publisher.publish(channel, message);
  }

  async subscribe(channel: string, handler: EventHandler): Promise<() => Promise<void>> {
    this.local.on(channel, handler);
    const refs = this.channelRefs.get(channel) ?? 0;
    this.channelRefs.set(channel, refs + 1);
    if (refs === 0) await this.subscriber.subscribe(channel);
    return async () => {
      this.local.off(channel, handler);
      const remaining = (this.channelRefs.get(channel) ?? 1) - 1;
      if (remaining > 0) {
        this.channelRefs.set(channel, remaining);
        return;
      }
      this.channelRefs.delete(channel);
      await this.subscriber.unsubscribe(channel).catch((error: Error) => {
        this.logger.warn({ channel, err: error.message }, 'unsubscribe failed');
      });
    };
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    clearTimeout(this.resubscribeTimer);
    this.local.removeAllListeners();
  }
}
