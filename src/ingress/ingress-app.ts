import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import Koa from 'koa';
import { pageSecurityHeaders } from '../edge/page-headers.js';
import { readBody } from '../edge/read-body.js';
import { isGatewayError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import { gatewayErrorAnswer, keetaAnswer, keysecureAnswer } from './answers.js';
import type { KeetaAuthorizations } from './authorizations.js';
import type { KeetaWebhooks } from './keeta-webhooks.js';
import type { KeySecureCallbacks } from './keysecure-callbacks.js';
import { connectedPage, notConnectedPage, PAGE_STYLE } from './pages.js';

/** What the ingress serves for one upstream; absent parts answer 404. */
export interface IngressUpstream {
  type: 'keeta' | 'keysecure';
  authorizations?: KeetaAuthorizations;
  webhooks?: KeetaWebhooks;
  callbacks?: KeySecureCallbacks;
}

/**
 * The ingress listener (README "Ingress: merchant connection, webhooks, callbacks"): the only one meant to face the internet, so it serves
 * only the OAuth redirect, the upstreams' pushes and a health check. Errors answer in the
 * upstream's own format where it has one.
 */
export function createIngressApp(deps: { upstreams: ReadonlyMap<string, IngressUpstream>; maxBodyBytes: number; log: Logger; traced?: Koa.Middleware }): Koa {
  const { upstreams, maxBodyBytes, log } = deps;
  const app = new Koa();
  app.silent = true;
  const router = new Router();
  // Tracing (when configured) wraps everything, so a push's span covers its answer.
  if (deps.traced) app.use(deps.traced);

  app.use(async function ingressErrors(ctx, next) {
    const requestId = randomUUID();
    // Every answer: never sniffed into another type. HTML pages get the full set (htmlPage).
    ctx.set('X-Content-Type-Options', 'nosniff');
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) gatewayErrorAnswer(ctx, 404, 'NOT_FOUND', `no ingress route ${ctx.method} ${ctx.path.slice(0, 100)}`, requestId);
    } catch (err) {
      if (!isGatewayError(err)) log.error({ requestId, err: (err as Error).message }, 'ingress request failed');
      const status = isGatewayError(err) ? err.status : 500;
      const message = isGatewayError(err) ? err.message : 'internal error';
      const type = upstreams.get(String(ctx.params?.['u'] ?? ''))?.type ?? typeFromPath(ctx.path);
      if (type === 'keeta') keetaAnswer(ctx, status, message);
      else if (type === 'keysecure') keysecureAnswer(ctx, status, status, message);
      else gatewayErrorAnswer(ctx, status, isGatewayError(err) ? err.code : 'INTERNAL', message, requestId);
    }
  });

  const typeFromPath = (path: string) => upstreams.get(/^\/(?:hooks|oauth)\/([^/]+)/.exec(path)?.[1] ?? '')?.type;

  const upstreamOr404 = (ctx: Koa.Context, name: string): IngressUpstream | undefined => {
    const u = upstreams.get(name);
    if (!u) gatewayErrorAnswer(ctx, 404, 'UNKNOWN_UPSTREAM', `no upstream is named "${name.slice(0, 64)}"`, randomUUID());
    return u;
  };

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/oauth/:u/callback', async (ctx) => {
    const u = upstreamOr404(ctx, ctx.params.u!);
    if (!u) return;
    htmlPage(ctx);
    if (!u.authorizations) {
      ctx.status = 404;
      ctx.body = notConnectedPage('This gateway does not connect merchants of this upstream.');
      return;
    }
    const declined = single(ctx.query['error']);
    const outcome = declined !== undefined && single(ctx.query['code']) === undefined
      ? u.authorizations.declined()
      : await u.authorizations.complete(single(ctx.query['code']), single(ctx.query['state']), 'redirect');
    if (outcome.result === 'connected' || (outcome.result === 'already_connected' && outcome.brandName !== undefined)) {
      ctx.status = 200;
      ctx.body = connectedPage(outcome.brandName ?? '', outcome.shopCount ?? 0, outcome.result === 'already_connected');
    } else {
      ctx.status = outcome.result === 'failed' ? 502 : outcome.result === 'already_connected' ? 202 : 400;
      ctx.body = notConnectedPage(outcome.reason ?? 'The merchant could not be connected.');
    }
  });

  router.get('/hooks/:u', async (ctx) => {
    const u = upstreamOr404(ctx, ctx.params.u!);
    if (!u) return;
    if (u.type !== 'keeta' || !u.authorizations) {
      if (u.type === 'keysecure') return keysecureAnswer(ctx, 405, 405, 'callbacks are POSTed');
      return keetaAnswer(ctx, 404, 'this gateway does not receive authorization codes for this upstream (configure oauth)');
    }
    if (u.webhooks && !u.webhooks.sourceAllowed(ctx.req.socket.remoteAddress ?? '', single(ctx.get('x-forwarded-for') || undefined))) {
      return keetaAnswer(ctx, 403, 'source address not allowed');
    }
    const outcome = await u.authorizations.complete(single(ctx.query['code']), single(ctx.query['state']), 'event');
    if (outcome.result === 'connected' || outcome.result === 'already_connected') return keetaAnswer(ctx, 200);
    // A bad state or a refused code will not get better on a retry: say so, but not as a server failure.
    keetaAnswer(ctx, outcome.result === 'failed' ? 502 : 400, outcome.reason);
  });

  router.post('/hooks/:u', async (ctx) => {
    const u = upstreamOr404(ctx, ctx.params.u!);
    if (!u) return;
    if (u.type === 'keeta') {
      if (!u.webhooks) return keetaAnswer(ctx, 404, 'this gateway does not receive webhooks for this upstream (configure webhooks)');
      const body = await readBody(ctx.req, maxBodyBytes);
      const answer = await u.webhooks.handle({ peerIp: ctx.req.socket.remoteAddress ?? '', forwardedFor: ctx.get('x-forwarded-for') || undefined, body });
      return keetaAnswer(ctx, answer.status, answer.message);
    }
    if (!u.callbacks) return keysecureAnswer(ctx, 404, 404, 'this gateway does not receive callbacks for this upstream (configure callbacks)');
    const body = await readBody(ctx.req, maxBodyBytes);
    const h = (name: string) => ctx.get(name) || undefined;
    const answer = await u.callbacks.handle({ headers: { timestamp: h('timestamp'), signature: h('signature'), 'sign-version': h('sign-version') }, body });
    keysecureAnswer(ctx, answer.status, answer.code, answer.message);
  });

  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** An HTML answer: its type, never cached, and the pages' security headers. */
function htmlPage(ctx: Koa.Context): void {
  ctx.type = 'text/html; charset=utf-8';
  ctx.set('Cache-Control', 'no-store');
  ctx.set(PAGE_HEADERS);
}

const PAGE_HEADERS = pageSecurityHeaders({ styles: [PAGE_STYLE] });
