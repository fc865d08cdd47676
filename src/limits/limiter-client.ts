import { Redis } from 'ioredis';
import type { StoreConfig } from '../config/schema.js';

/**
 * The Redis connection of the shared rate limiter, from the store's settings. Its own
 * connection, tuned for a hot-path decision: no offline queue and no command retries (a call
 * while Redis is away fails at once and the limiter decides locally), a bounded command
 * timeout (a stalled Redis costs a limited request at most this long; not shorter, because a
 * busy event loop can see a timely reply late), and reconnection in the background.
 */
export function createLimiterRedisClient(store: Extract<StoreConfig, { type: 'redis' }>, opts: { commandTimeoutMs?: number } = {}): Redis {
  const client = new Redis(store.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: 2000,
    commandTimeout: opts.commandTimeoutMs ?? 2000,
    retryStrategy: (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 6), 2000),
  });
  // Connection errors show in the limiter's own log line and metric; without a listener
  // ioredis would print each one.
  client.on('error', () => {});
  return client;
}
