import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { createPubSub } from '@graphql-yoga/subscription';
import type { Logger } from '../logging/logger';
import type { RedisClient } from '../redis/redis.connection';

/** What type-graphql's `buildSchema({ pubSub })` takes: publish by topic, subscribe as an async iterable. */
export interface GraphQLPubSub {
  publish(topic: string, ...args: unknown[]): void;
  subscribe(topic: string, id?: unknown): AsyncIterable<unknown>;
}

const FIRE_AND_FORGET = new Set(['publish', 'subscribe', 'unsubscribe']);

/**
 * The Redis event target calls publish/subscribe/unsubscribe without handling their promises: while Redis is down
 * those would be unhandled rejections (which end a Node process). Hand it a client whose calls log instead.
 */
function loggingFailures(client: RedisClient, logger: Logger): RedisClient {
  return new Proxy(client, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (typeof property === 'string' && FIRE_AND_FORGET.has(property)) {
        return (...args: unknown[]) =>
          (value as (...a: unknown[]) => Promise<unknown>).apply(target, args).catch((error: Error) => {
            logger.warn({ err: error.message, call: property }, 'graphql pub/sub: redis call failed');
          });
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

/**
 * GraphQL subscriptions' pub/sub. With Redis (one connection to publish, one in subscriber mode) an event published by
 * any process reaches the subscriptions served by every gateway; without it, an in-process event target. Topics are
 * declared by the modules that publish them. Publish each event once, from the process that owns the work.
 */
export function createGraphQLPubSub(redis?: {
  publish: RedisClient;
  subscribe: RedisClient;
  logger: Logger;
}): GraphQLPubSub {
  if (!redis) return createPubSub();
  const eventTarget = createRedisEventTarget({
    publishClient: loggingFailures(redis.publish, redis.logger),
    subscribeClient: loggingFailures(redis.subscribe, redis.logger),
  });
  return createPubSub({ eventTarget });
}
