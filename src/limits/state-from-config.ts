import type { Clock } from '../core/clock.js';
import type { ParsedConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { createLimiterRedisClient } from './limiter-client.js';
import { LocalLimiter } from './local-limiter.js';
import { createRateLimitState, type RateLimitState } from './rate-limits.js';
import { SharedLimiter } from './shared-limiter.js';

/** Whether any upstream of this config limits anything (rules, or a cooldown after 1009). */
export function hasRateLimits(config: Pick<ParsedConfig, 'upstreams'>): boolean {
  return Object.values(config.upstreams).some((u) => u.rateLimits.length > 0 || (u.type === 'keysecure' && u.onRateLimited.cooldown > 0));
}

/**
 * The process's rate-limit state: budgets shared through Redis when the store is Redis (keys
 * under its keyPrefix), else per process. Redis is connected only when something is limited.
 */
export function rateLimitStateFromConfig(config: Pick<ParsedConfig, 'store' | 'upstreams'>, deps: { clock: Clock; log: Logger; metrics: Metrics }): RateLimitState {
  const local = new LocalLimiter(deps.clock);
  if (config.store.type !== 'redis' || !hasRateLimits(config)) return createRateLimitState(local);
  const limiter = new SharedLimiter({
    client: createLimiterRedisClient(config.store),
    fallback: local,
    clock: deps.clock,
    log: deps.log,
    onLocalDecision: (upstream) => deps.metrics.rateLimitLocalDecisions.inc({ upstream }),
    secrets: [passwordOf(config.store.url), config.store.password ?? '', config.store.sentinelPassword ?? ''],
  });
  return createRateLimitState(limiter, { keyPrefix: config.store.keyPrefix, shared: true });
}

function passwordOf(url: string | undefined): string {
  if (url === undefined) return '';
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return '';
  }
}
