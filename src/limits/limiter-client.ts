import type { StoreConfig } from '../config/schema.js';
import { createRedisClient, type RedisClient } from '../tokens/redis-connection.js';

/**
 * The Redis connection of the shared rate limiter, from the store's settings (URL, Sentinel or
 * Cluster, TLS, password): its own connection, tuned for a hot-path decision. No offline queue
 * and no command retries (a call while Redis is away fails at once and the limiter decides
 * locally), a bounded command timeout (a stalled Redis costs a limited request at most this
 * long; not shorter, because a busy event loop can see a timely reply late), and reconnection
 * in the background. Connected by the limiter's open(), not before.
 */
export function createLimiterRedisClient(store: Extract<StoreConfig, { type: 'redis' }>, opts: { commandTimeoutMs?: number } = {}): RedisClient {
  const client = createRedisClient(store, 'ratelimit', { commandTimeoutMs: opts.commandTimeoutMs ?? 2000 });
  // Connection errors show in the limiter's own log line and metric; without a listener
  // ioredis would print each one.
  client.on('error', () => {});
  return client;
}
