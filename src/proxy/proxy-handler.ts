import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Middleware } from 'koa';
import { forwardableResponseHeaders } from '../edge/headers.js';
import type { CallerAuthenticator } from '../edge/callers.js';
import { requestIdFrom } from '../edge/ids.js';
import { readBody } from '../edge/read-body.js';
import { leadingSegment, parseTargetPath } from '../edge/target-path.js';
import { GatewayError, isGatewayError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics, RequestClass } from '../metrics.js';
import type { Forwarder, UpstreamResponse } from './forwarder.js';
import type { UpstreamHandler, Verdict } from './upstream.js';

export interface ProxyHandlerDeps {
  handlers: ReadonlyMap<string, UpstreamHandler>;
  forwarder: Forwarder;
  metrics: Metrics;
  log: Logger;
  callers: CallerAuthenticator;
  maxBodyBytes: number;
}

/**
 * The proxy listener's only route, `/{upstream}/{path}`, as one Koa middleware. In order:
 * request id, target path, caller authentication, upstream lookup, allow list, body, the
 * upstream handler's exchange (one transparent retry at most), the answer passed back
 * unchanged. Every request ends in exactly one class, one access-log line, and (for a known
 * upstream) one count.
 */
export function proxyHandler(deps: ProxyHandlerDeps): Middleware {
  const { handlers, forwarder, metrics, log, callers, maxBodyBytes } = deps;

  return async function proxy(ctx) {
    ctx.respond = false;
    const started = performance.now();
    const requestId = requestIdFrom(ctx.req.headers['x-request-id']);
    let handler: UpstreamHandler | undefined;
    let cls: RequestClass = 'rejected';
    let status = 500;
    let callerName: string | undefined;
    let retried: string | undefined;
    let errorCode: string | undefined;
    let path = '';

    try {
      const target = parseTargetPath(ctx.req.url ?? '/');
      path = target.path;
      handler = handlers.get(target.upstream);
      const caller = callers.authenticate(ctx.req.headers.authorization);
      callerName = caller?.name;
      if (!handler) throw new GatewayError('UNKNOWN_UPSTREAM', `no upstream is named "${target.upstream.slice(0, 64)}"`);
      callers.authorize(caller, handler.name, target.path);
      metrics.inflight.inc({ upstream: handler.name });
      try {
        const body = await readBody(ctx.req, maxBodyBytes);
        const exchange = handler.begin({
          requestId,
          method: ctx.req.method ?? 'GET',
          path: target.path,
          query: target.query,
          headers: ctx.req.headers,
          body,
        });
        let res: UpstreamResponse;
        let verdict: Verdict;
        for (let attempt = 1; ; attempt++) {
          const upstreamReq = await exchange.prepare();
          const t0 = performance.now();
          try {
            res = await forwarder.send(handler.origin, upstreamReq);
          } finally {
            metrics.upstreamDuration.observe({ upstream: handler.name }, (performance.now() - t0) / 1000);
          }
          verdict = exchange.judge(res);
          if (verdict.codeLabel !== undefined) metrics.upstreamCodes.inc({ upstream: handler.name, code: verdict.codeLabel });
          if (attempt === 1 && verdict.retry && (await exchange.recover(verdict.retry, res))) {
            metrics.retries.inc({ upstream: handler.name, reason: verdict.retry });
            retried = verdict.retry;
            continue;
          }
          break;
        }
        cls = verdict.class;
        status = res.status;
        const headers = forwardableResponseHeaders(res.headers);
        headers['x-request-id'] = requestId;
        headers['content-length'] = res.body.length;
        ctx.res.writeHead(res.status, headers);
        ctx.res.end(res.body);
      } finally {
        metrics.inflight.dec({ upstream: handler.name });
      }
    } catch (err) {
      // A refusal before the upstream was looked up (BAD_PATH) still counts for it, when it is one.
      handler ??= handlers.get(leadingSegment(ctx.req.url ?? '/'));
      const gw = toGatewayError(err, log, requestId);
      cls = gw.code === 'UPSTREAM_TIMEOUT' ? 'timeout' : gw.code === 'UPSTREAM_UNREACHABLE' ? 'network_error' : 'rejected';
      status = gw.status;
      errorCode = gw.code;
      sendError(ctx.res, gw, requestId);
    } finally {
      const seconds = (performance.now() - started) / 1000;
      if (handler) {
        metrics.requests.inc({ upstream: handler.name, class: cls });
        metrics.requestDuration.observe({ upstream: handler.name, class: cls }, seconds);
      }
      log.info(
        {
          requestId,
          upstream: handler?.name,
          method: ctx.req.method,
          path,
          status,
          class: cls,
          durationMs: Math.round(seconds * 10_000) / 10,
          ...(callerName && { caller: callerName }),
          ...(retried && { retried }),
          ...(errorCode && { error: errorCode }),
        },
        'request',
      );
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
