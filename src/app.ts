import type Koa from 'koa';
import KoaApp from 'koa';
import { Registry } from 'prom-client';
import { createAdminApp, type Readiness } from './admin/admin-app.js';
import { TokenAdmin, type AdminUpstream } from './admin/token-admin.js';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config/load.js';
import { createCallerAuthenticator } from './edge/callers.js';
import { createKeetaHandler } from './keeta/handler.js';
import { createKeetaTokenSource } from './keeta/token-source.js';
import { createKeySecureHandler } from './keysecure/handler.js';
import { createKeySecureTokenSource } from './keysecure/token-source.js';
import { UpstreamClock } from './keysecure/upstream-clock.js';
import { buildIngress, ingressUpstreams } from './ingress/build-ingress.js';
import type { IngressStore } from './ingress/state-store.js';
import { buildRateLimits, type RateLimitState } from './limits/rate-limits.js';
import { rateLimitStateFromConfig } from './limits/state-from-config.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createForwarder, type Forwarder } from './proxy/forwarder.js';
import { proxyHandler } from './proxy/proxy-handler.js';
import type { UpstreamHandler } from './proxy/upstream.js';
import { createStore } from './tokens/create-store.js';
import { monitorStore } from './tokens/monitored-store.js';
import { TokenCache } from './tokens/token-cache.js';
import { TokenService } from './tokens/token-service.js';
import type { TokenRecord, TokenStore } from './tokens/types.js';

export interface AppDeps {
  config: Config;
  /** Defaults to the store named by config. */
  store?: TokenStore;
  clock?: Clock;
  registry?: Registry;
  forwarder?: Forwarder;
  logger?: Logger;
  /** How often the background scheduler looks for tokens to renew; 0 turns it off (tests call tick()). */
  schedulerIntervalMs?: number;
  /** How often to retry opening an unreachable store at start. */
  storeRetryMs?: number;
  /** Shared ingress state (OAuth states, claimed codes, delivered message ids); defaults to the one the store config implies. */
  ingressStore?: IngressStore;
  /** Rate-limit budgets and cooldowns; defaults to Redis-shared ones with a redis store, else per process. */
  rateLimitState?: RateLimitState;
}

export interface UpstreamRuntime extends AdminUpstream {
  handler: UpstreamHandler;
  upstreamClock?: UpstreamClock;
}

export interface App {
  /** Koa app of the proxy listener. */
  readonly proxy: Koa;
  /** Koa app of the admin listener. */
  readonly admin: Koa;
  /** Koa app of the ingress listener (bound only when listen.ingress is set). */
  readonly ingress: Koa;
  readonly ingressStore: IngressStore;
  readonly metrics: Metrics;
  readonly registry: Registry;
  readonly store: TokenStore;
  readonly cache: TokenCache;
  readonly upstreams: ReadonlyMap<string, UpstreamRuntime>;
  /** Rate-limit budgets and cooldowns: rebuild the rules with buildRateLimits(config.upstreams, {state: this, ...}). */
  readonly rateLimitState: RateLimitState;
  readonly log: Logger;
  /** Open the store, warm the cache, subscribe to changes, start the schedulers. */
  start(): Promise<void>;
  readiness(): Readiness;
  /** Stop schedulers, mark not ready (for draining), close the store and upstream connections. */
  beginDrain(): void;
  close(): Promise<void>;
}

/**
 * Assemble Countersign from its parts. Never listens: server.ts does, and tests build as many
 * independent apps as they like, each with its own registry, store and clock.
 */
export function buildApp(deps: AppDeps): App {
  const { config } = deps;
  const clock = deps.clock ?? systemClock;
  const log = deps.logger ?? createLogger();
  const registry = deps.registry ?? new Registry();
  const inbound = ingressUpstreams(config);
  const metrics = createMetrics({
    registry,
    upstreams: Object.entries(config.upstreams).map(([name, u]) => ({ name, type: u.type })),
    now: () => clock.now(),
    ingressUpstreams: inbound.pushes,
    webhookUpstreams: inbound.webhooks,
    authorizationUpstreams: inbound.oauth,
  });
  const forwarder = deps.forwarder ?? createForwarder();
  const cache = new TokenCache();

  let storeUp = false;
  let opened = false;
  let draining = false;
  const setStoreUp = (up: boolean) => {
    if (up !== storeUp) log[up ? 'info' : 'warn']({ store: config.store.type }, up ? 'token store reachable' : 'token store unreachable');
    storeUp = up;
    metrics.storeUp.set({ store: baseStore.kind }, up ? 1 : 0);
  };
  // Operations report through monitorStore; the Redis store also reports connection loss itself.
  const baseStore: TokenStore = deps.store ?? createStore(config.store, { onStatus: (up) => setStoreUp(up) });
  metrics.storeUp.set({ store: baseStore.kind }, 0);
  const store = monitorStore(baseStore, setStoreUp);

  const upstreams = new Map<string, UpstreamRuntime>();
  for (const [name, cfg] of Object.entries(config.upstreams)) {
    const common = { upstream: name, store, cache, clock, metrics, log, refreshBeforeMs: cfg.refreshBefore };
    if (cfg.type === 'keeta') {
      const tokens = new TokenService({ ...common, source: createKeetaTokenSource(name, cfg, forwarder, clock), spacingMs: cfg.refreshSpacing });
      upstreams.set(name, { name, type: 'keeta', tokens, handler: createKeetaHandler({ name, cfg, tokens, cache, clock }) });
    } else {
      const upstreamClock = new UpstreamClock(clock, cfg.timestampMargin, (s) => metrics.clockOffset.set({ upstream: name }, s));
      const tokens = new TokenService({
        ...common,
        source: createKeySecureTokenSource(name, cfg, forwarder, clock, upstreamClock),
        spacingMs: 0,
      });
      upstreams.set(name, {
        name,
        type: 'keysecure',
        tokens,
        upstreamClock,
        handler: createKeySecureHandler({ name, cfg, tokens, upstreamClock, log }),
      });
    }
  }
  metrics.setTokenSnapshots(function* () {
    for (const u of upstreams.values()) yield* u.tokens.snapshots();
  });

  // Built once per process; the per-upstream rules can be rebuilt from a new config against it.
  const rateLimitState = deps.rateLimitState ?? rateLimitStateFromConfig(config, { clock, log, metrics });
  const rateLimits = buildRateLimits(config.upstreams, { state: rateLimitState, metrics, clock, log });

  const proxy = new KoaApp();
  proxy.silent = true;
  proxy.use(
    proxyHandler({
      handlers: new Map([...upstreams].map(([n, u]) => [n, u.handler])),
      forwarder,
      metrics,
      log,
      callers: createCallerAuthenticator(config.callers),
      maxBodyBytes: config.limits.maxBodyBytes,
      rateLimits,
    }),
  );

  const readiness = (): Readiness => ({
    ready: opened && !draining,
    status: draining ? 'draining' : opened ? 'ready' : 'starting',
    store: storeUp ? 'ok' : 'unavailable',
  });

  const ingress = buildIngress({
    config,
    tokenStore: store,
    cache,
    tokens: new Map([...upstreams].map(([n, u]) => [n, u.tokens])),
    forwarder,
    clock,
    metrics,
    log,
    ...(deps.ingressStore && { store: deps.ingressStore }),
  });

  const admin = createAdminApp({
    registry,
    tokenAdmin: new TokenAdmin(upstreams, store, cache, clock),
    readiness,
    adminToken: config.admin.token,
    log,
    createAuthorization: (u) => ingress.createAuthorization(u),
  });

  const warm = async () => {
    for (const rec of await store.list()) if (upstreams.has(rec.upstream)) cache.set(rec);
  };
  /**
   * After a reconnect: take every change missed meanwhile, and write back any pair this process
   * holds that is newer than the store's (a Redis that came back from an older snapshot), so
   * the newest refresh token survives this process. A merchant deleted elsewhere while this
   * replica was cut off may come back; deleting it again is safer than losing a token.
   */
  const resync = async () => {
    const stored = new Map<string, TokenRecord>();
    for (const rec of await store.list()) {
      if (!upstreams.has(rec.upstream)) continue;
      stored.set(TokenCache.key(rec.upstream, rec.merchant), rec);
      cache.set(rec);
    }
    for (const rec of cache.records()) {
      const s = stored.get(TokenCache.key(rec.upstream, rec.merchant));
      if (!s || s.issuedAt < rec.issuedAt) {
        await store.put(rec);
        log.warn({ upstream: rec.upstream }, 'the store had lost a newer pair held by this instance; it was written back');
      }
    }
  };
  let unsubscribe: (() => void) | undefined;
  let retryTimer: NodeJS.Timeout | undefined;

  const openOnce = async () => {
    await store.open();
    await warm();
    unsubscribe = store.subscribe({
      changed(upstream, merchant) {
        if (!upstreams.has(upstream)) return;
        store.get(upstream, merchant).then(
          (rec) => (rec ? cache.set(rec) : cache.delete(upstream, merchant)),
          () => {},
        );
      },
      resync() {
        resync().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'resync with the token store failed'));
      },
    });
    opened = true;
    const interval = deps.schedulerIntervalMs ?? 30_000;
    if (interval > 0) for (const u of upstreams.values()) u.tokens.startScheduler(interval);
    log.info({ store: store.kind, tokens: cache.size }, 'token store open');
  };

  return {
    proxy,
    admin,
    ingress: ingress.app,
    ingressStore: ingress.store,
    metrics,
    registry,
    store,
    cache,
    upstreams,
    rateLimitState,
    log,
    readiness,
    async start() {
      await rateLimitState.open();
      try {
        await openOnce();
      } catch (err) {
        // A corrupt file is the operator's to fix; a Redis that is not up yet will be.
        if (store.kind !== 'redis') throw err;
        log.warn({ store: store.kind, err: (err as Error).message }, 'token store unreachable at start; retrying');
        const retry = () => {
          retryTimer = setTimeout(() => {
            openOnce().catch(() => retry());
          }, deps.storeRetryMs ?? 2000);
          retryTimer.unref();
        };
        retry();
      }
    },
    beginDrain() {
      draining = true;
      for (const u of upstreams.values()) u.tokens.stopScheduler();
    },
    async close() {
      draining = true;
      if (retryTimer) clearTimeout(retryTimer);
      unsubscribe?.();
      // Renewals under way finish and pending writes get a last try before their
      // connections close: a renewed pair must not die with the process.
      await Promise.all([...upstreams.values()].map((u) => u.tokens.close()));
      await forwarder.close();
      await ingress.close();
      await rateLimitState.close();
      await store.close();
    },
  };
}
