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
import type { Forwarder, UpstreamResponse } from './forwarder.js';
import type { UpstreamHandler, Verdict } from './upstream.js';

/** What the proxy takes from the config in force; a request reads it once and keeps it to its end. */
export interface ProxyConfig {
  handlers: ReadonlyMap<string, UpstreamHandler>;
  callers: CallerAuthenticator;
  maxBodyBytes: number;
  /** Upstreams with rate limits or a cooldown after "too frequent" (src/limits); others are absent. */
  rateLimits: ReadonlyMap<string, UpstreamRateLimits>;
}

export interface ProxyHandlerDeps {
  /** The proxy config in force now (replaced as a whole on config reload). */
  current: () => ProxyConfig;
  forwarder: Forwarder;
  metrics: Metrics;
  log: Logger;
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
  const { forwarder, metrics, log } = deps;
  const access = createAccessLog(log);

  return async function proxy(req, res) {
    const { handlers, callers, maxBodyBytes, rateLimits } = deps.current();
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

    try {
      const target = parseTargetPath(req.url ?? '/');
      path = target.path;
      handler = handlers.get(target.upstream);
      const identified = callers.identify(req.headers.authorization, req.socket);
      const caller = identified instanceof Promise ? await identified : identified;
      callerName = caller?.name;
      if (!handler) throw new GatewayError('UNKNOWN_UPSTREAM', `no upstream is named "${target.upstream.slice(0, 64)}"`);
      callers.authorize(caller, handler.name, target.path);
      recorded = metrics.forUpstream(handler.name);
      recorded.begin();
      try {
        const body = await readBody(req, maxBodyBytes);
        const exchange = handler.begin({
          requestId,
          method: req.method ?? 'GET',
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
        for (;;) {
          const admitted = limits?.admit(target.path);
          if (admitted) await admitted;
          const prepared = exchange.prepare();
          const upstreamReq = prepared instanceof Promise ? await prepared : prepared;
          const t0 = performance.now();
          try {
            answer = await forwarder.send(handler.origin, upstreamReq);
          } finally {
            recorded.attempt((performance.now() - t0) / 1000);
          }
          verdict = exchange.judge(answer);
          if (verdict.codeLabel !== undefined) recorded.code(verdict.codeLabel);
          if (verdict.class === 'rate_limited') limits?.slowDown();
          const reason = verdict.retry;
          if (reason !== undefined && (retriedFor & RETRY_BIT[reason]) === 0 && (await exchange.recover(reason, answer))) {
            retriedFor |= RETRY_BIT[reason];
            recorded.retry(reason);
            retried = retried === undefined ? reason : `${retried},${reason}`;
            continue;
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
      cls = gw.code === 'UPSTREAM_TIMEOUT' ? 'timeout' : gw.code === 'UPSTREAM_UNREACHABLE' ? 'network_error' : 'rejected';
      status = gw.status;
      errorCode = gw.code;
      sendError(res, gw, requestId);
    } finally {
      const seconds = (performance.now() - started) / 1000;
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
