import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { forwardableResponseHeaders } from '../edge/headers.js';
import type { CallerAuthenticator } from '../edge/callers.js';
import { requestIdFrom } from '../edge/ids.js';
import { readBody } from '../edge/read-body.js';
import { leadingSegment, parseTargetPath } from '../edge/target-path.js';
import { GatewayError, isGatewayError } from '../core/errors.js';
import type { UpstreamRateLimits } from '../limits/rate-limits.js';
import { createAccessLog } from '../observability/access-log.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics, RequestClass, RetryReason } from '../observability/metrics.js';
import type { UpstreamRequestMetrics } from '../observability/metrics-hot-path.js';
import type { FairShare } from './fair-share.js';
import type { Tracing } from '../observability/tracing.js';
import type { Forwarder, UpstreamResponse } from './forwarder.js';
import type { UpstreamHandler, Verdict } from './upstream.js';

/** What the proxy takes from the config in force; a request reads it once and keeps it to its end. */
export interface ProxyConfig {
  handlers: ReadonlyMap<string, UpstreamHandler>;
  callers: CallerAuthenticator;
  maxBodyBytes: number;
  /** Upstreams with rate limits or a cooldown after "too frequent" (src/limits); others are absent. */
  rateLimits: ReadonlyMap<string, UpstreamRateLimits>;
  /** The methods each upstream is called with; any other is METHOD_NOT_ALLOWED. */
  methods: ReadonlyMap<string, ReadonlySet<string>>;
  /** Each upstream's connection slots, shared fairly among callers (fair-share.ts). */
  shares: ReadonlyMap<string, FairShare>;
  /** Largest upstream answer held for one request (limits.maxResponseBytes). */
  maxResponseBytes: number;
}

export interface ProxyHandlerDeps {
  /** The proxy config in force now (replaced as a whole on config reload). */
  current: () => ProxyConfig;
  forwarder: Forwarder;
  metrics: Metrics;
  log: Logger;
  /** Set only when tracing is configured: without it the handler does no tracing work. */
  tracing?: Tracing;
}

/** Each recoverable fault is retried once at most, so a request sees at most two retries. */
const RETRY_BIT: Record<RetryReason, number> = { token: 1, clock_skew: 2 };

/**
 * The proxy listener's only route, `/{upstream}/{path}`, as one node:http request handler. In order:
 * request id, target path, caller authentication, upstream lookup, allow list, body, the
 * upstream handler's exchange (before each attempt the upstream's rate limits; one transparent
 * retry per recoverable fault: a token rejection and a timestamp rejection are each recovered
 * once, never twice), the answer passed back unchanged. Every request ends in exactly one
 * class, one access-log line, and (for a known upstream) one count.
 *
 * It is served by node:http directly, not through Koa (which serves the admin and ingress
 * listeners and their routes): the proxy listener has one route and no middleware, and Koa's
 * per-request context and finished-listeners cost about a tenth of a signed call's CPU
 * (README "Performance"). It answers every fault itself; app.ts still guards its promise.
 */
export function proxyHandler(deps: ProxyHandlerDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { forwarder, metrics, log, tracing } = deps;
  const access = createAccessLog(log);

  return async function proxy(req, res) {
    const { handlers, callers, maxBodyBytes, rateLimits, methods, shares, maxResponseBytes } = deps.current();
    const started = performance.now();
    const requestId = requestIdFrom(req.headers['x-request-id']);
    let handler: UpstreamHandler | undefined;
    let recorded: UpstreamRequestMetrics | undefined;
    let cls: RequestClass = 'rejected';
    let status = 500;
    let callerName: string | undefined;
    let retried: string | undefined;
    let errorCode: string | undefined;
    let path = '';
    const traced = tracing?.startRequest(req);

    try {
      const target = parseTargetPath(req.url ?? '/');
      path = target.path;
      handler = handlers.get(target.upstream);
      const identified = callers.identify(req.headers.authorization, req.socket);
      const caller = identified instanceof Promise ? await identified : identified;
      callerName = caller?.name;
      if (!handler) throw new GatewayError('UNKNOWN_UPSTREAM', `no upstream is named "${target.upstream.slice(0, 64)}"`);
      traced?.route(handler.name, target.path);
      const method = req.method ?? 'GET';
      const allowed = methods.get(handler.name);
      if (allowed && !allowed.has(method)) throw methodNotAllowed(handler.name, method, allowed);
      callers.authorize(caller, handler.name, target.path);
      const share = shares.get(handler.name);
      const slot = share?.slotOf(callerName);
      recorded = metrics.forUpstream(handler.name);
      recorded.begin();
      try {
        const body = await readBody(req, maxBodyBytes);
        const exchange = handler.begin({
          requestId,
          method,
          path: target.path,
          query: target.query,
          headers: req.headers,
          body,
        });
        if (exchange.merchant !== undefined) callers.authorizeMerchant(caller, handler.name, exchange.merchant);
        const limits = rateLimits.get(handler.name);
        let answer: UpstreamResponse;
        let verdict: Verdict;
        let retriedFor = 0;
        let resends = 0;
        let resendReason: string | undefined;
        for (;;) {
          const admitted = limits?.admit(target.path, slot);
          if (admitted) await admitted;
          const prepared = exchange.prepare();
          // A promise: the token was not at hand and the request waits for it (a renewal, a store read).
          const upstreamReq = prepared instanceof Promise ? await (traced ? traced.wait('countersign.token.wait', prepared) : prepared) : prepared;
          upstreamReq.maxResponseBytes = maxResponseBytes;
          let waitedMs = 0;
          const timeoutMs = upstreamReq.timeoutMs;
          if (share) {
            // A connection slot for this attempt, within the caller's fair share; a wait for one
            // comes out of the attempt's timeout.
            const wait = share.acquire(slot!, timeoutMs);
            if (wait) {
              const w0 = performance.now();
              try {
                await wait;
              } catch (err) {
                metrics.connectionWaits.inc({ upstream: handler.name, result: 'timed_out' });
                throw err;
              }
              waitedMs = Math.round(performance.now() - w0);
              // A slot with almost no time left is not worth sending on: the upstream would do
              // the work and the answer would be late anyway.
              if (timeoutMs - waitedMs < Math.max(50, timeoutMs / 10)) {
                share.release(slot!);
                metrics.connectionWaits.inc({ upstream: handler.name, result: 'timed_out' });
                throw share.noConnection(slot!, timeoutMs);
              }
              metrics.connectionWaits.inc({ upstream: handler.name, result: 'served' });
              upstreamReq.timeoutMs = timeoutMs - waitedMs;
            }
          }
          const span = traced?.attempt(handler.origin, upstreamReq, resends, resendReason);
          const t0 = performance.now();
          try {
            answer = await forwarder.send(handler.origin, span ? span.request : upstreamReq);
          } catch (err) {
            span?.fail(isGatewayError(err) ? err.code : 'INTERNAL', isGatewayError(err) && err.code === 'UPSTREAM_TIMEOUT' ? 'timeout' : 'network_error');
            if (waitedMs > 0 && isGatewayError(err) && err.code === 'UPSTREAM_TIMEOUT') {
              throw new GatewayError('UPSTREAM_TIMEOUT', `no answer from ${handler.origin} within ${timeoutMs} ms, ${waitedMs} ms of it spent waiting for a connection`, { cause: err });
            }
            throw err;
          } finally {
            share?.release(slot!);
            recorded.attempt((performance.now() - t0) / 1000);
          }
          verdict = exchange.judge(answer);
          span?.end(answer.status, verdict.class);
          if (verdict.codeLabel !== undefined) recorded.code(verdict.codeLabel);
          if (verdict.class === 'rate_limited') limits?.slowDown();
          const reason = verdict.retry;
          if (reason !== undefined && (retriedFor & RETRY_BIT[reason]) === 0) {
            const recovering = exchange.recover(reason, answer);
            const recovered = await (traced ? traced.wait(reason === 'token' ? 'countersign.token.renewal' : 'countersign.clock.correction', recovering, { 'countersign.retry.reason': reason }) : recovering);
            if (recovered) {
              retriedFor |= RETRY_BIT[reason];
              recorded.retry(reason);
              traced?.retry(reason);
              resends++;
              resendReason = reason;
              retried = retried === undefined ? reason : `${retried},${reason}`;
              continue;
            }
          }
          break;
        }
        cls = verdict.class;
        status = answer.status;
        const headers = forwardableResponseHeaders(answer.headers);
        headers['x-request-id'] = requestId;
        headers['content-length'] = answer.body.length;
        res.writeHead(answer.status, headers);
        res.end(answer.body);
      } finally {
        recorded.end();
      }
    } catch (err) {
      // A refusal before the upstream was looked up (BAD_PATH) still counts for it, when it is one.
      handler ??= handlers.get(leadingSegment(req.url ?? '/'));
      const gw = toGatewayError(err, log, requestId);
      cls = gw.code === 'UPSTREAM_TIMEOUT' ? 'timeout' : gw.code === 'UPSTREAM_UNREACHABLE' ? 'network_error' : gw.code === 'UPSTREAM_RESPONSE_TOO_LARGE' ? 'upstream_http_error' : 'rejected';
      status = gw.status;
      errorCode = gw.code;
      sendError(res, gw, requestId);
    } finally {
      const seconds = (performance.now() - started) / 1000;
      traced?.end(status, cls, errorCode);
      if (handler) (recorded ?? metrics.forUpstream(handler.name)).finish(cls, seconds);
      access({
        requestId,
        upstream: handler?.name,
        method: req.method,
        path,
        status,
        class: cls,
        durationMs: Math.round(seconds * 10_000) / 10,
        caller: callerName,
        retried,
        error: errorCode,
      });
    }
  };
}

function methodNotAllowed(upstream: string, method: string, allowed: ReadonlySet<string>): GatewayError {
  const list = [...allowed].join(', ');
  return new GatewayError('METHOD_NOT_ALLOWED', `${upstream} is not called with ${method.slice(0, 16)}; allowed: ${list}`, { headers: { Allow: list } });
}

function toGatewayError(err: unknown, log: Logger, requestId: string): GatewayError {
  if (isGatewayError(err)) return err;
  log.error({ requestId, err: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err) }, 'unexpected error');
  return new GatewayError('INTERNAL', 'internal error; see the proxy log for this requestId');
}

/** The SPEC's refusal format. */
export function sendError(res: ServerResponse, err: GatewayError, requestId: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(err.toJSON(requestId));
  res.writeHead(err.status, {
    ...err.headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId,
  });
  res.end(body);
}
