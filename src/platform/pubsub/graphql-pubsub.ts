import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { createPubSub } from '@graphql-yoga/subscription';
import type { RedisClient } from '../redis/redis.connection';

/** What type-graphql's `buildSchema({ pubSub })` takes: publish by topic, subscribe as an async iterable. */
export interface GraphQLPubSub {
  publish(topic: string, ...args: unknown[]): void;
  subscribe(topic: string, id?: unknown): AsyncIterable<unknown>;
}

/**
 * GraphQL subscriptions' pub/sub. With Redis (one connection to publish, one in subscriber mode) an event published by
 * any process reaches the subscriptions served by every gateway; without it, an in-process event target. Topics are
 * declared by the modules that publish them. Publish each event once, from the process that owns the work.
 */
export function createGraphQLPubSub(redis?: { publish: RedisClient; subscribe: RedisClient }): GraphQLPubSub {
  if (!redis) return createPubSub();
  const eventTarget = createRedisEventTarget({
    publishClient: redis.publish,
    subscribeClient: redis.subscribe,
  });
  return createPubSub({ eventTarget });
}
