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
import { createLogger, type Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createForwarder, type Forwarder } from './proxy/forwarder.js';
import { proxyHandler } from './proxy/proxy-handler.js';
import type { UpstreamHandler } from './proxy/upstream.js';
import { StoreLifecycle } from './tokens/store-lifecycle.js';
import { TokenCache } from './tokens/token-cache.js';
import { TokenService } from './tokens/token-service.js';
import type { TokenStore } from './tokens/types.js';

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
  readonly metrics: Metrics;
  readonly registry: Registry;
  readonly store: TokenStore;
  /** Opening, warming, following and resyncing the store: kept when parts are rebuilt. */
  readonly storeLifecycle: StoreLifecycle;
  readonly cache: TokenCache;
  readonly upstreams: ReadonlyMap<string, UpstreamRuntime>;
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
  const metrics = createMetrics({
    registry,
    upstreams: Object.entries(config.upstreams).map(([name, u]) => ({ name, type: u.type })),
    now: () => clock.now(),
  });
  const forwarder = deps.forwarder ?? createForwarder();
  const cache = new TokenCache();

  let draining = false;
  const upstreams = new Map<string, UpstreamRuntime>();
  const storeLifecycle = new StoreLifecycle({
    config: config.store,
    ...(deps.store && { store: deps.store }),
    cache,
    metrics,
    log,
    knows: (upstream) => upstreams.has(upstream),
    onOpen: () => {
      const interval = deps.schedulerIntervalMs ?? 30_000;
      if (interval > 0) for (const u of upstreams.values()) u.tokens.startScheduler(interval);
    },
    ...(deps.storeRetryMs !== undefined && { retryMs: deps.storeRetryMs }),
  });
  const store = storeLifecycle.store;

  for (const [name, cfg] of Object.entries(config.upstreams)) {
    const common = {
      upstream: name,
      store,
      cache,
      clock,
      metrics,
      log,
      refreshBeforeMs: cfg.refreshBefore,
      // A caller waits for a renewal at most the upstream's timeout; the lock's lease outlives
      // one token call (at most `timeout`) even when Redis cannot be reached to renew it.
      waitMs: cfg.timeout,
      lockLeaseMs: Math.max(5000, cfg.timeout + 2000),
    };
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
    }),
  );

  const readiness = (): Readiness => ({
    ready: storeLifecycle.opened && !draining,
    status: draining ? 'draining' : storeLifecycle.opened ? 'ready' : 'starting',
    store: storeLifecycle.up ? 'ok' : 'unavailable',
  });

  const admin = createAdminApp({
    registry,
    tokenAdmin: new TokenAdmin(upstreams, store, cache, clock),
    readiness,
    adminToken: config.admin.token,
    log,
  });

  return {
    proxy,
    admin,
    metrics,
    registry,
    store,
    storeLifecycle,
    cache,
    upstreams,
    log,
    readiness,
    start: () => storeLifecycle.start(),
    beginDrain() {
      draining = true;
      for (const u of upstreams.values()) u.tokens.stopScheduler();
    },
    async close() {
      draining = true;
      storeLifecycle.stop();
      // Renewals under way finish and pending writes get a last try before their
      // connections close: a renewed pair must not die with the process.
      await Promise.all([...upstreams.values()].map((u) => u.tokens.close()));
      await forwarder.close();
      await storeLifecycle.closeStore();
    },
  };
}
