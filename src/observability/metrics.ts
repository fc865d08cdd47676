import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HotHistogram } from './metrics-histogram.js';
import { RequestMetricsRecorders } from './metrics-hot-path.js';

/**
 * Every metric family Countersign exports (README "Metrics, dashboard, alerts"). One instance per app, on the
 * app's own Registry, so tests can build many apps side by side.
 *
 * Labels are bounded: upstream names come from config, classes/codes/reasons/triggers from
 * fixed lists. Never a merchant, shop, token, order id or raw path.
 */

/** docs/protocols.md 4.4 */
export const CLASSES = [
  'success',
  'partial_failure',
  'signature_error',
  'business_error',
  'server_error',
  'unknown_error',
  'auth_error',
  'timestamp_error',
  'ip_not_allowed',
  'rate_limited',
  'upstream_http_error',
  'network_error',
  'timeout',
  'rejected',
] as const;
export type RequestClass = (typeof CLASSES)[number];

/** Classes every upstream can end in, whatever its protocol. */
const COMMON_CLASSES = ['success', 'upstream_http_error', 'network_error', 'timeout', 'rejected'] as const;

/** The classes an upstream of each type can produce (docs/protocols.md 4.4): only these get series. */
export const CLASSES_BY_TYPE: Readonly<Record<'keeta' | 'keysecure', readonly RequestClass[]>> = {
  keeta: [...COMMON_CLASSES, 'partial_failure', 'signature_error', 'business_error', 'server_error', 'unknown_error'],
  keysecure: [...COMMON_CLASSES, 'auth_error', 'timestamp_error', 'ip_not_allowed', 'rate_limited', 'server_error', 'business_error', 'unknown_error'],
};

/** An upstream as the metrics see it: a name alone (every class) or a name and its type. */
export type MetricsUpstream = string | { name: string; type: 'keeta' | 'keysecure' } | { name: string; type: string; classes: readonly RequestClass[] };

export type RetryReason = 'token' | 'clock_skew';
export type RefreshTrigger = 'proactive' | 'on_demand' | 'rejected' | 'admin';
export type RefreshResult = 'success' | 'failure';
/** `refresh_unknown`: a refresh was sent and its answer lost; the refresh token may be spent (README "Tokens"). */
export type TokenState = 'valid' | 'expiring' | 'expired' | 'refresh_failed' | 'refresh_unknown' | 'revoked';
export const TOKEN_STATES: readonly TokenState[] = ['valid', 'expiring', 'expired', 'refresh_failed', 'refresh_unknown', 'revoked'];

export const METRIC_NAMES = [
  'countersign_requests_total',
  'countersign_upstream_codes_total',
  'countersign_request_duration_seconds',
  'countersign_upstream_duration_seconds',
  'countersign_retries_total',
  'countersign_token_refreshes_total',
  'countersign_token_seconds_to_expiry',
  'countersign_tokens',
  'countersign_clock_offset_seconds',
  'countersign_inflight_requests',
  'countersign_store_up',
  'countersign_inbound_total',
  'countersign_inbound_delivery_seconds',
  'countersign_webhook_recipe_matches_total',
  'countersign_authorizations_total',
  'countersign_rate_limit_waits_total',
  'countersign_rate_limited_total',
  'countersign_rate_limit_wait_seconds',
  'countersign_rate_limit_local_decisions_total',
  'countersign_rate_limit_cooldowns_total',
  'countersign_config_reloads_total',
  'countersign_config_last_reload_successful',
  'countersign_config_last_reload_success_timestamp_seconds',
  'countersign_connection_waits_total',
  'countersign_token_refresh_unknown_total',
] as const;

/** Results of one inbound push (README "Ingress: merchant connection, webhooks, callbacks"). */
export const INBOUND_RESULTS = ['delivered', 'duplicate', 'bad_signature', 'unverified', 'forbidden_source', 'stale', 'bad_request', 'delivery_failed'] as const;
export type InboundResult = (typeof INBOUND_RESULTS)[number];
export type AuthorizationVia = 'redirect' | 'event';
export const AUTHORIZATION_RESULTS = ['connected', 'already_connected', 'bad_state', 'refused', 'failed'] as const;
export type AuthorizationResult = (typeof AUTHORIZATION_RESULTS)[number];

/** Buckets for deliveries to internal targets: 0.7 and 0.8 s bracket KeySecure's Auth deadline. */
const DELIVERY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.7, 0.8, 1, 2.5, 5, 10];

/** One token as the scrape-time gauges see it. */
export interface TokenSnapshot {
  upstream: string;
  state: TokenState;
  expiresAt: number;
}

export interface MetricsOptions {
  registry?: Registry;
  /**
   * Upstreams from config: series are pre-created at zero so dashboards and rates work from the
   * start. With a type, only the classes that type can produce are created.
   */
  upstreams?: readonly MetricsUpstream[];
  /** Called at scrape time for the token gauges. */
  tokenSnapshots?: () => Iterable<TokenSnapshot>;
  /** Milliseconds since the epoch, for seconds-to-expiry. */
  now?: () => number;
  collectDefaults?: boolean;
  /** Upstreams with webhooks or callbacks configured: their inbound series start at zero. */
  ingressUpstreams?: readonly string[];
  /** Keeta upstreams with webhooks configured. */
  webhookUpstreams?: readonly string[];
  /** Keeta upstreams with oauth configured. */
  authorizationUpstreams?: readonly string[];
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function createMetrics(options: MetricsOptions = {}) {
  const registry = options.registry ?? new Registry();
  const registers = [registry];
  const now = options.now ?? Date.now;
  const upstreams = (options.upstreams ?? []).map((u) => (typeof u === 'string' ? { name: u, classes: CLASSES } : 'classes' in u ? { name: u.name, classes: u.classes } : { name: u.name, classes: CLASSES_BY_TYPE[u.type] }));
  let tokenSnapshots = options.tokenSnapshots ?? (() => []);
  // The proxy's per-request counts (metrics-hot-path.ts), handed to these families at scrape time.
  const recorders = new RequestMetricsRecorders<RequestClass, RetryReason>();

  const requests = new Counter({
    name: 'countersign_requests_total',
    help: 'Callers\' requests by upstream and final outcome class (one per request, whatever retries happened inside).',
    labelNames: ['upstream', 'class'] as const,
    registers,
    collect() {
      recorders.flushClasses(this);
    },
  });
  const upstreamCodes = new Counter({
    name: 'countersign_upstream_codes_total',
    help: 'Upstream answers by documented error code (else "other").',
    labelNames: ['upstream', 'code'] as const,
    registers,
    collect() {
      recorders.flushCodes(this);
    },
  });
  // The two histograms every proxied request observes: HotHistogram (same export, no per-call label work).
  const requestDuration = new HotHistogram({
    name: 'countersign_request_duration_seconds',
    help: 'Time from receiving a caller\'s request to the end of its response, by final class.',
    labelNames: ['upstream', 'class'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const upstreamDuration = new HotHistogram({
    name: 'countersign_upstream_duration_seconds',
    help: 'Time for one upstream attempt, from sending to response headers.',
    labelNames: ['upstream'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const retries = new Counter({
    name: 'countersign_retries_total',
    help: 'Transparent retries after the upstream said it did not execute the request.',
    labelNames: ['upstream', 'reason'] as const,
    registers,
  });
  const tokenRefreshes = new Counter({
    name: 'countersign_token_refreshes_total',
    help: 'Token fetches and refreshes made by the proxy itself.',
    labelNames: ['upstream', 'trigger', 'result'] as const,
    registers,
  });
  new Gauge({
    name: 'countersign_token_seconds_to_expiry',
    help: 'Seconds until the soonest-expiring token of the upstream expires (negative when expired).',
    labelNames: ['upstream'] as const,
    registers,
    collect() {
      this.reset();
      const soonest = new Map<string, number>();
      for (const s of tokenSnapshots()) {
        const prev = soonest.get(s.upstream);
        if (prev === undefined || s.expiresAt < prev) soonest.set(s.upstream, s.expiresAt);
      }
      const t = now();
      for (const [upstream, expiresAt] of soonest) this.set({ upstream }, (expiresAt - t) / 1000);
    },
  });
  new Gauge({
    name: 'countersign_tokens',
    help: 'Tokens known to the proxy, by state.',
    labelNames: ['upstream', 'state'] as const,
    registers,
    collect() {
      this.reset();
      const counts = new Map<string, Map<TokenState, number>>();
      for (const u of upstreams) counts.set(u.name, new Map());
      for (const s of tokenSnapshots()) {
        let byState = counts.get(s.upstream);
        if (!byState) counts.set(s.upstream, (byState = new Map()));
        byState.set(s.state, (byState.get(s.state) ?? 0) + 1);
      }
      for (const [upstream, byState] of counts) {
        for (const state of TOKEN_STATES) this.set({ upstream, state }, byState.get(state) ?? 0);
      }
    },
  });
  const clockOffset = new Gauge({
    name: 'countersign_clock_offset_seconds',
    help: 'Learned offset of the upstream\'s clock from ours (positive: upstream ahead).',
    labelNames: ['upstream'] as const,
    registers,
  });
  const inflight = new Gauge({
    name: 'countersign_inflight_requests',
    help: 'Callers\' requests being served now.',
    labelNames: ['upstream'] as const,
    registers,
    collect() {
      recorders.setInflight(this);
    },
  });
  const storeUp = new Gauge({
    name: 'countersign_store_up',
    help: '1 when the last token store operation succeeded, else 0.',
    labelNames: ['store'] as const,
    registers,
  });

  const inbound = new Counter({
    name: 'countersign_inbound_total',
    help: 'Pushes received on the ingress listener (webhooks, callbacks) by upstream, event and result.',
    labelNames: ['upstream', 'event', 'result'] as const,
    registers,
  });
  const inboundDelivery = new Histogram({
    name: 'countersign_inbound_delivery_seconds',
    help: 'Time to deliver one push to its internal target(s), until their answer.',
    labelNames: ['upstream', 'event'] as const,
    buckets: DELIVERY_BUCKETS,
    registers,
  });
  const recipeMatches = new Counter({
    name: 'countersign_webhook_recipe_matches_total',
    help: 'Keeta webhooks by the candidate signature recipe that matched ("none" when none did).',
    labelNames: ['upstream', 'recipe'] as const,
    registers,
  });
  const authorizations = new Counter({
    name: 'countersign_authorizations_total',
    help: 'Merchant authorization codes received, by path (redirect or Event 1) and result.',
    labelNames: ['upstream', 'via', 'result'] as const,
    registers,
  });

  for (const upstream of options.ingressUpstreams ?? []) {
    // The series alerts and dashboards compare against exist from the start.
    for (const result of INBOUND_RESULTS) inbound.inc({ upstream, event: 'other', result }, 0);
    inboundDelivery.zero({ upstream, event: 'other' });
  }
  for (const upstream of options.authorizationUpstreams ?? []) {
    for (const via of ['redirect', 'event'] as const) for (const result of AUTHORIZATION_RESULTS) authorizations.inc({ upstream, via, result }, 0);
  }
  for (const upstream of options.webhookUpstreams ?? []) recipeMatches.inc({ upstream, recipe: 'none' }, 0);

  // Rate limits (src/limits). `rule` is a configured rule name or `cooldown`: bounded by config.
  const rateLimitWaits = new Counter({
    name: 'countersign_rate_limit_waits_total',
    help: 'Requests held back by a rate limit before being sent (they were sent after the wait).',
    labelNames: ['upstream', 'rule'] as const,
    registers,
  });
  const rateLimited = new Counter({
    name: 'countersign_rate_limited_total',
    help: 'Requests refused with RATE_LIMITED: the rate was used up and the wait would exceed maxWait.',
    labelNames: ['upstream', 'rule'] as const,
    registers,
  });
  const rateLimitWaitSeconds = new Histogram({
    name: 'countersign_rate_limit_wait_seconds',
    help: 'Time each admitted request under a rate limit waited for its slot (0 when none).',
    labelNames: ['upstream', 'rule'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
    registers,
  });
  const rateLimitLocalDecisions = new Counter({
    name: 'countersign_rate_limit_local_decisions_total',
    help: 'Rate-limit decisions taken by this replica alone because Redis could not be reached.',
    labelNames: ['upstream'] as const,
    registers,
  });
  const rateLimitCooldowns = new Counter({
    name: 'countersign_rate_limit_cooldowns_total',
    help: 'Rate-limit answers from the upstream (KeySecure 1009) that started or extended a cooldown.',
    labelNames: ['upstream'] as const,
    registers,
  });
  const configReloads = new Counter({
    name: 'countersign_config_reloads_total',
    help: 'Config reloads (SIGHUP or a changed config/secret file), by result.',
    labelNames: ['result'] as const,
    registers,
  });
  const configLastReloadSuccessful = new Gauge({
    name: 'countersign_config_last_reload_successful',
    help: '1 when the last config load or reload succeeded, 0 when it was refused (the previous config stays in force).',
    registers,
  });
  const configLastReloadSuccess = new Gauge({
    name: 'countersign_config_last_reload_success_timestamp_seconds',
    help: 'Unix time of the last successful config load or reload (set at start).',
    registers,
  });
  for (const result of ['success', 'failure'] as const) configReloads.inc({ result }, 0);

  const storeDegraded = new Counter({
    name: 'countersign_store_degraded_total',
    help: 'Token renewals while the token store could not be reached: renewed_without_lock (a token obtainable from nothing, e.g. KeySecure) or kept_current_token (a single-use refresh token, e.g. Keeta, is never spent without the lock).',
    labelNames: ['upstream', 'action'] as const,
    registers,
  });

  const connectionWaits = new Counter({
    name: 'countersign_connection_waits_total',
    help: 'Requests that found no connection slot free for their caller and waited: served (got one) or timed_out (answered UPSTREAM_TIMEOUT, never sent).',
    labelNames: ['upstream', 'result'] as const,
    registers,
  });
  const tokenRefreshUnknown = new Counter({
    name: 'countersign_token_refresh_unknown_total',
    help: 'Refreshes sent with a single-use refresh token whose answer was lost: the token may be spent, the merchant is in state refresh_unknown.',
    labelNames: ['upstream'] as const,
    registers,
  });

  for (const { name: upstream, classes } of upstreams) {
    for (const result of ['served', 'timed_out'] as const) connectionWaits.inc({ upstream, result }, 0);
    tokenRefreshUnknown.inc({ upstream }, 0);
    inflight.set({ upstream }, 0);
    clockOffset.set({ upstream }, 0);
    // Every bounded series exists from the start, so rate() and increase() see the first event.
    for (const reason of ['token', 'clock_skew'] as const) retries.inc({ upstream, reason }, 0);
    for (const cls of classes) requests.inc({ upstream, class: cls }, 0);
    for (const trigger of ['proactive', 'on_demand', 'rejected', 'admin'] as const) {
      for (const result of ['success', 'failure'] as const) tokenRefreshes.inc({ upstream, trigger, result }, 0);
    }
  }

  if (options.collectDefaults ?? true) collectDefaultMetrics({ register: registry });
  recorders.bind({ requests, upstreamCodes, requestDuration, upstreamDuration, retries });

  return {
    registry,
    /** What one proxied request records, for one upstream (the proxy's hot path). */
    forUpstream: (upstream: string) => recorders.forUpstream(upstream),
    requests,
    upstreamCodes,
    requestDuration,
    upstreamDuration,
    retries,
    tokenRefreshes,
    clockOffset,
    inflight,
    storeUp,
    inbound,
    inboundDelivery,
    recipeMatches,
    authorizations,
    rateLimitWaits,
    rateLimited,
    rateLimitWaitSeconds,
    rateLimitLocalDecisions,
    rateLimitCooldowns,
    /** Every series of these rules exists from the start, so rate() and increase() see the first event. */
    registerRateLimitRules(upstream: string, rules: readonly string[], localFallback: boolean) {
      for (const rule of rules) {
        rateLimitWaits.inc({ upstream, rule }, 0);
        rateLimited.inc({ upstream, rule }, 0);
        rateLimitWaitSeconds.zero({ upstream, rule });
      }
      if (localFallback) rateLimitLocalDecisions.inc({ upstream }, 0);
    },
    configReloads,
    configLastReloadSuccessful,
    configLastReloadSuccess,
    storeDegraded,
    connectionWaits,
    tokenRefreshUnknown,
    /** Late binding for the token gauges: the token managers are built after the metrics. */
    setTokenSnapshots(fn: () => Iterable<TokenSnapshot>) {
      tokenSnapshots = fn;
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
