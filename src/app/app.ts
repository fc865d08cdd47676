import type Koa from 'koa';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Registry } from 'prom-client';
import { createAdminApp, type Readiness } from '../admin/admin-app.js';
import { TokenAdmin, type AdminUpstream } from '../admin/token-admin.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Config } from '../config/load.js';
import { createCallerAuthenticator } from '../edge/callers.js';
import { createKeetaHandler } from '../provider/builtin/keeta-handler.js';
import { createKeetaTokenSource } from '../provider/builtin/keeta-token-source.js';
import { keySecureRecipe } from '../provider/builtin/keysecure.js';
import { UpstreamClock } from '../provider/steps/upstream-clock.js';
import { KubernetesAuth } from '../edge/kubernetes-auth.js';
import { upstreamTransports } from '../proxy/upstream-transport.js';
import { buildIngress, ingressUpstreams } from '../ingress/build-ingress.js';
import type { IngressStore } from '../ingress/state-store.js';
import { buildRateLimits, type RateLimitState } from '../limits/rate-limits.js';
import { rateLimitStateFromConfig } from '../limits/state-from-config.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { createMetrics, type Metrics } from '../observability/metrics.js';
import { createForwarder, type Forwarder } from '../proxy/forwarder.js';
import { proxyHandler } from '../proxy/proxy-handler.js';
import type { UpstreamHandler } from '../proxy/upstream.js';
import { StoreLifecycle } from '../tokens/store-lifecycle.js';
import { TokenCache } from '../tokens/token-cache.js';
import { TokenService } from '../tokens/token-service.js';
import type { TokenStore } from '../tokens/types.js';
import { callerShares, connectionsOf, tokenTimeoutOf, upstreamMethods } from '../proxy/traffic-config.js';
import { FairShare } from '../proxy/fair-share.js';
import { warmUpHotPath } from './warm-up.js';
import { isRecipeUpstream, type KeetaUpstreamConfig, type KeySecureUpstreamConfig, type RecipeUpstreamConfig } from '../config/schema.js';
import { answerJudge } from '../provider/classes.js';
import { createRecipeHandler } from '../provider/recipe-handler.js';
import { createRecipeTokenSource } from '../provider/recipe-token-source.js';
import { LiveConfig } from '../reload/live-config.js';
import { createTracing } from '../observability/tracing.js';

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
  /** Requests sent through a throwaway copy of the pipeline at start, before readiness (warm-up.ts); 0 or absent: none. */
  warmUpRequests?: number;
  /** Upper bound on the warm-up's duration (default 0.5 s). */
  warmUpMaxMs?: number;
  /** Least time between two re-reads of the service-account JWKS on an unknown key (default 30 s). */
  jwksMinRereadMs?: number;
}

/** What lives as long as the process for one upstream: its tokens survive every reload. */
export interface UpstreamRuntime extends AdminUpstream {
  upstreamClock?: UpstreamClock;
}

/** What the proxy listener serves: `createServer(app.proxy.callback())`, as for the Koa listeners. */
export interface ProxyListener {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
}

export interface App {
  /** The proxy listener's request handler (node:http directly: one route, no middleware). */
  readonly proxy: ProxyListener;
  /** Koa app of the admin listener. */
  readonly admin: Koa;
  /** Koa app of the ingress listener (bound only when listen.ingress is set). */
  readonly ingress: Koa;
  readonly ingressStore: IngressStore;
  readonly metrics: Metrics;
  readonly registry: Registry;
  readonly store: TokenStore;
  /** Opening, warming, following and resyncing the store: kept when parts are rebuilt. */
  readonly storeLifecycle: StoreLifecycle;
  readonly cache: TokenCache;
  readonly upstreams: ReadonlyMap<string, UpstreamRuntime>;
  /** Rate-limit budgets and cooldowns: rebuild the rules with buildRateLimits(config.upstreams, {state: this, ...}). */
  readonly rateLimitState: RateLimitState;
  /** The config in force and everything built from it; `live.apply()` is how a reload lands. */
  readonly live: LiveConfig;
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
    upstreams: Object.entries(config.upstreams).map(([name, u]) => (isRecipeUpstream(u) ? { name, type: u.type, classes: answerJudge(u.recipe).classes } : { name, type: u.type })),
    now: () => clock.now(),
    ingressUpstreams: inbound.pushes,
    webhookUpstreams: inbound.webhooks,
    authorizationUpstreams: inbound.oauth,
  });
  const forwarder = deps.forwarder ?? createForwarder({ transports: upstreamTransports(config.upstreams) });
  const kubernetesAuth = new KubernetesAuth({ clock, log, ...(deps.jwksMinRereadMs !== undefined && { jwksMinRereadMs: deps.jwksMinRereadMs }) });
  // Only when configured: without it nothing on the request path touches OpenTelemetry.
  const tracing = config.tracing ? createTracing(config.tracing) : undefined;
  const cache = new TokenCache();
  const live = new LiveConfig(config);
  metrics.configLastReloadSuccessful.set(1);
  metrics.configLastReloadSuccess.set(clock.now() / 1000);

  let draining = false;
  // Token services (and the KeySecure clock) are built once and kept across reloads; their
  // token sources read the upstream's config in force at each call. Handlers are rebuilt per
  // config: a request keeps the handler, and so the config, it started with.
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
    encryption: config.store.type === 'memory' ? undefined : config.store.encryption,
  });
  const store = storeLifecycle.store;
  // Key files are reloaded with the config: add a key, reload, `store rekey`, remove the old one.
  live.onApplied((c) => storeLifecycle.updateKeys(c.store.type === 'memory' ? undefined : c.store.encryption));

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
      // one token call (a wait for a token connection, then at most `tokenTimeout` from
      // sending) even when Redis cannot be reached to renew it.
      waitMs: cfg.timeout,
      lockLeaseMs: Math.max(5000, 2 * (tokenTimeoutOf(cfg) ?? cfg.timeout) + 2000),
    };
    if (cfg.type === 'keeta') {
      const current = () => live.current.upstreams[name] as KeetaUpstreamConfig;
      const tokens = new TokenService({ ...common, source: createKeetaTokenSource(name, current, forwarder, clock), spacingMs: cfg.refreshSpacing });
      upstreams.set(name, { name, type: 'keeta', tokens });
    } else if (isRecipeUpstream(cfg)) {
      const current = () => live.current.upstreams[name] as RecipeUpstreamConfig;
      const upstreamClock = new UpstreamClock(clock, cfg.recipe.timestampMargin, (s) => metrics.clockOffset.set({ upstream: name }, s));
      const model = cfg.recipe.tokens.model;
      const tokens = new TokenService({
        ...common,
        source: createRecipeTokenSource(name, current, forwarder, clock, upstreamClock),
        spacingMs: cfg.recipe.tokens.refreshSpacing,
      });
      upstreams.set(name, { name, type: cfg.type, tokens, upstreamClock, tokenModel: model });
    } else {
      const current = () => live.current.upstreams[name] as KeySecureUpstreamConfig;
      const upstreamClock = new UpstreamClock(clock, cfg.timestampMargin, (s) => metrics.clockOffset.set({ upstream: name }, s));
      live.onApplied(() => upstreamClock.setMargin(current().timestampMargin));
      const tokens = new TokenService({
        ...common,
        source: createRecipeTokenSource(name, () => keySecureRecipe(current()), forwarder, clock, upstreamClock),
        spacingMs: 0,
      });
      upstreams.set(name, { name, type: 'keysecure', tokens, upstreamClock });
    }
  }
  const buildHandler = (name: string, cfg: Config['upstreams'][string]): UpstreamHandler => {
    const u = upstreams.get(name)!;
    if (isRecipeUpstream(cfg)) {
      return createRecipeHandler({ name, cfg, tokens: cfg.recipe.tokens.model === 'none' ? undefined : u.tokens, cache, clock, upstreamClock: u.upstreamClock!, judge: answerJudge(cfg.recipe) });
    }
    if (cfg.type === 'keeta') return createKeetaHandler({ name, cfg, tokens: u.tokens, cache, clock });
    const run = keySecureRecipe(cfg);
    return createRecipeHandler({ name, cfg: run, tokens: u.tokens, cache, clock, upstreamClock: u.upstreamClock!, judge: answerJudge(run.recipe), log });
  };
  // Rate-limit budgets and cooldowns live as long as the process (shared through Redis with a
  // redis store); the per-upstream rules are rebuilt against them from each config.
  const rateLimitState = deps.rateLimitState ?? rateLimitStateFromConfig(config, { clock, log, metrics });
  // Connection slots live as long as the process (their size is restart-only); each config
  // sets the callers' weights and caps.
  const shares = new Map([...upstreams.keys()].map((n) => [n, new FairShare(connectionsOf(config.upstreams[n]!), undefined, n)]));
  /** The proxy's view of the config, read once per request. */
  const proxyConfig = live.derive((cfg) => ({
    methods: upstreamMethods(cfg),
    shares: callerShares(shares, cfg),
    maxResponseBytes: cfg.limits.maxResponseBytes,
    handlers: new Map([...upstreams.keys()].map((n) => [n, buildHandler(n, cfg.upstreams[n]!)])),
    callers: createCallerAuthenticator(cfg.callers, { serviceAccounts: kubernetesAuth.verifierFor(cfg.auth?.kubernetes) }),
    maxBodyBytes: cfg.limits.maxBodyBytes,
    // Only the upstreams running since start: an upstream added by a reload waits for a restart.
    rateLimits: buildRateLimits(Object.fromEntries([...upstreams.keys()].map((n) => [n, cfg.upstreams[n]!])), { state: rateLimitState, metrics, clock, log }),
  }));
  const adminToken = live.derive((cfg) => cfg.admin.token);
  metrics.setTokenSnapshots(function* () {
    for (const u of upstreams.values()) yield* u.tokens.snapshots();
  });

  const handleProxyRequest = proxyHandler({
    current: () => proxyConfig.current,
    forwarder,
    metrics,
    log,
    ...(tracing && { tracing }),
  });
  const proxy: ProxyListener = {
    callback: () => (req, res) => {
      handleProxyRequest(req, res).catch((err: unknown) => {
        // The handler answers every fault itself; this is the last line of defence.
        log.error({ err: err instanceof Error ? { name: err.name, message: err.message } : String(err) }, 'proxy handler failed');
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    },
  };

  const readiness = (): Readiness => ({
    ready: storeLifecycle.opened && !draining,
    status: draining ? 'draining' : storeLifecycle.opened ? 'ready' : 'starting',
    store: storeLifecycle.up ? 'ok' : 'unavailable',
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
    ...(tracing && { tracing }),
  });

  const admin = createAdminApp({
    registry,
    tokenAdmin: new TokenAdmin(upstreams, store, cache, clock, storeLifecycle.ledger),
    readiness,
    adminToken: () => adminToken.current,
    log,
    createAuthorization: (u) => ingress.createAuthorization(u),
    startedAt: clock.now(),
  });

  return {
    proxy,
    admin,
    ingress: ingress.app,
    ingressStore: ingress.store,
    metrics,
    registry,
    store,
    storeLifecycle,
    cache,
    upstreams,
    rateLimitState,
    live,
    log,
    readiness,
    async start() {
      await rateLimitState.open();
      if (deps.warmUpRequests) {
        try {
          log.info({ ...(await warmUpHotPath(buildApp, deps.warmUpRequests, deps.warmUpMaxMs)) }, 'hot path warmed');
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'hot path warm-up failed; starting cold');
        }
      }
      await storeLifecycle.start();
    },
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
      await kubernetesAuth.close();
      await ingress.close();
      await rateLimitState.close();
      await storeLifecycle.closeStore();
      await tracing?.shutdown().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'could not export the last spans'));
    },
  };
}
