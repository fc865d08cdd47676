import { createRedisClient } from '../tokens/redis-connection.js';
import type Koa from 'koa';
import type { Clock } from '../core/clock.js';
import type { Config } from '../config/load.js';
import { GatewayError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Forwarder } from '../proxy/forwarder.js';
import type { TokenCache } from '../tokens/token-cache.js';
import type { TokenService } from '../tokens/token-service.js';
import type { TokenStore } from '../tokens/types.js';
import { KeetaAuthorizations, type AuthorizationLink } from './authorizations.js';
import { createDeliverer } from './delivery.js';
import { createIngressApp, type IngressUpstream } from './ingress-app.js';
import { KeetaMerchants } from './keeta-merchants.js';
import { KeetaWebhooks } from './keeta-webhooks.js';
import { KeySecureCallbacks } from './keysecure-callbacks.js';
import { MemoryIngressStore, RedisIngressStore, type IngressStore } from './state-store.js';
import type { Tracing } from '../observability/tracing.js';

export interface Ingress {
  /** Koa app of the ingress listener. */
  readonly app: Koa;
  readonly store: IngressStore;
  /** POST /admin/upstreams/{u}/authorizations */
  createAuthorization(upstream: string): Promise<AuthorizationLink>;
  close(): Promise<void>;
}

/** Upstream names with something configured on the ingress side, by kind (for the metrics' zero series). */
export function ingressUpstreams(config: Config): { pushes: string[]; webhooks: string[]; oauth: string[] } {
  const entries = Object.entries(config.upstreams);
  return {
    pushes: entries.filter(([, u]) => (u.type === 'keeta' ? u.webhooks : u.type === 'keysecure' ? u.callbacks : undefined) !== undefined).map(([n]) => n),
    webhooks: entries.filter(([, u]) => u.type === 'keeta' && u.webhooks !== undefined).map(([n]) => n),
    oauth: entries.filter(([, u]) => u.type === 'keeta' && u.oauth !== undefined).map(([n]) => n),
  };
}

/**
 * Assemble the ingress side from config and the app's parts. The shared state lives where the
 * tokens live: a Redis token store gets a RedisIngressStore on its own client (same URL and key
 * prefix); a memory or file store (one process) gets an in-process one. `store` overrides it.
 */
export function buildIngress(deps: {
  config: Config;
  tokenStore: TokenStore;
  cache: TokenCache;
  tokens: ReadonlyMap<string, TokenService>;
  forwarder: Forwarder;
  clock: Clock;
  metrics: Metrics;
  log: Logger;
  store?: IngressStore;
  /** When tracing is configured: each push is a server span and each delivery a client span. */
  tracing?: Tracing;
}): Ingress {
  const { config, tokenStore, cache, forwarder, clock, metrics, log } = deps;
  const anyIngress = Object.values(config.upstreams).some((u) => (u.type === 'keeta' ? u.oauth ?? u.webhooks : u.type === 'keysecure' ? u.callbacks : undefined) !== undefined);
  // Without anything configured on the ingress side there is nothing to share: no Redis client.
  const store = deps.store ?? (anyIngress ? defaultStore(config, clock, log) : new MemoryIngressStore(clock));
  const deliverer = deps.tracing ? deps.tracing.deliverer(createDeliverer()) : createDeliverer();
  const upstreams = new Map<string, IngressUpstream>();
  const authorizations = new Map<string, KeetaAuthorizations>();

  for (const [name, cfg] of Object.entries(config.upstreams)) {
    if (cfg.type === 'keeta') {
      const tokens = deps.tokens.get(name);
      if (!tokens) continue;
      const merchants = new KeetaMerchants({ upstream: name, cfg, forwarder, clock, store: tokenStore, cache, tokens, log });
      const entry: IngressUpstream = { type: 'keeta' };
      if (cfg.oauth) {
        entry.authorizations = new KeetaAuthorizations({ upstream: name, appId: cfg.appId, oauth: cfg.oauth, merchants, store, clock, metrics, log });
        authorizations.set(name, entry.authorizations);
      }
      if (cfg.webhooks) {
        entry.webhooks = new KeetaWebhooks({ upstream: name, cfg: cfg.webhooks, appSecret: cfg.appSecret, merchants, cache, store, deliverer, clock, metrics, log });
      }
      upstreams.set(name, entry);
    } else if (cfg.type === 'keysecure') {
      const entry: IngressUpstream = { type: 'keysecure' };
      if (cfg.callbacks) {
        entry.callbacks = new KeySecureCallbacks({ upstream: name, cfg: cfg.callbacks, secret: cfg.callbacks.secret ?? cfg.apiSecret, store, deliverer, clock, metrics, log });
      }
      upstreams.set(name, entry);
    }
  }

  return {
    app: createIngressApp({ upstreams, maxBodyBytes: config.limits.maxBodyBytes, log, ...(deps.tracing && { traced: deps.tracing.ingressMiddleware() }) }),
    store,
    async createAuthorization(upstream) {
      const u = config.upstreams[upstream];
      if (!u) throw new GatewayError('NOT_FOUND', `no upstream "${upstream}"`);
      const a = authorizations.get(upstream);
      if (!a) {
        throw new GatewayError('BAD_REQUEST', u.type === 'keeta' ? `${upstream} has no oauth config (authorizeUrl, redirectUri)` : `${upstream} is a ${u.type} upstream; merchant authorization is Keeta's`);
      }
      try {
        return await a.createLink();
      } catch (err) {
        if (err instanceof GatewayError) throw err;
        throw new GatewayError('STORE_UNAVAILABLE', 'the authorization state cannot be saved: the store cannot be reached', { cause: err });
      }
    },
    async close() {
      for (const u of upstreams.values()) u.webhooks?.close();
      await deliverer.close();
      await store.close();
    },
  };
}

function defaultStore(config: Config, clock: Clock, log: Logger): IngressStore {
  const s = config.store;
  if (s.type !== 'redis') return new MemoryIngressStore(clock);
  // Connects on its first command: nothing is touched before the gateway serves.
  const client = createRedisClient(s, 'ingress', { keyPrefix: s.keyPrefix, queueWhileConnecting: true });
  let reported = false;
  client.on('error', (err: Error) => {
    if (!reported) log.warn({ err: err.message }, 'ingress state store (redis) unreachable');
    reported = true;
  });
  client.on('ready', () => {
    reported = false;
  });
  return new RedisIngressStore(client, { ownsClient: true });
}
