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

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}

const RECONNECTED = Symbol('reconnected') as unknown as string;

/** Uses two connections, as Redis requires: one publishes, one is in subscriber mode. */
export class RedisEventBus implements EventBus {
  readonly driver = 'redis' as const;
  private readonly local = new EventEmitter().setMaxListeners(0);
  private readonly channelRefs = new Map<string, number>();
  private listening: boolean;

  constructor(
    private readonly publisher: RedisClient,
    private readonly subscriber: RedisClient,
    private readonly logger: Logger,
  ) {
    subscriber.on('message', (channel: string, message: string) => this.local.emit(channel, message));
    this.listening = subscriber.status === 'ready';
    let connectedOnce = this.listening;
    subscriber.on('close', () => {
      this.listening = false;
    });
    subscriber.on('ready', () => {
      // ioredis resubscribes on its own but does not say when that is done: subscribe again (idempotent) and trust
      // the connection once Redis has confirmed every channel.
      const channels = [...this.channelRefs.keys()];
      const resubscribed = channels.length > 0 ? subscriber.subscribe(...channels) : Promise.resolve();
      resubscribed.then(
        () => {
          if (subscriber.status !== 'ready') return;
          this.listening = true;
          if (connectedOnce) this.local.emit(RECONNECTED, '');
          connectedOnce = true;
        },
        (error: Error) =>
          this.logger.warn({ err: error.message }, 'resubscribe failed; will retry on reconnect'),
      );
    });
  }

  isListening(): boolean {
    return this.listening;
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
    this.local.removeAllListeners();
  }
}
