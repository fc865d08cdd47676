import { createHash, timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import Koa from 'koa';
import type { Registry } from 'prom-client';
import { requestIdFrom } from '../edge/ids.js';
import { readBody } from '../edge/read-body.js';
import { GatewayError, isGatewayError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import { readActivity } from './activity.js';
import { addConsoleRoutes } from './console-routes.js';
import { refuseCrossSite } from './cross-site.js';
import type { TokenAdmin } from './token-admin.js';

export interface Readiness {
  ready: boolean;
  status: 'starting' | 'ready' | 'draining';
  store: 'ok' | 'unavailable';
}

export interface AdminAppDeps {
  registry: Registry;
  tokenAdmin: TokenAdmin;
  readiness: () => Readiness;
  /** The admin token in force (it may change on config reload). When set, /admin/* requires `Authorization: Bearer <token>`. */
  adminToken: () => string | undefined;
  log: Logger;
  /** POST /admin/upstreams/{u}/authorizations: a merchant authorization link (Keeta). */
  createAuthorization?: (upstream: string) => Promise<{ url: string; state: string; expiresAt: string }>;
  /** When the counts of GET /admin/activity began (default: when this app was built). */
  startedAt?: number;
}

const ADMIN_BODY_LIMIT = 1024 * 1024;

/**
 * The admin listener: /healthz, /readyz, /metrics and the token admin API. Separate from the
 * proxy listener so no proxied path can shadow these.
 */
export function createAdminApp(deps: AdminAppDeps): Koa {
  const { registry, tokenAdmin, readiness, adminToken, log } = deps;
  const app = new Koa();
  app.silent = true;
  const router = new Router();
  const digestOf = (token: string) => createHash('sha256').update(token).digest();

  app.use(async function adminErrors(ctx, next) {
    const requestId = requestIdFrom(ctx.req.headers['x-request-id']);
    ctx.set('X-Request-Id', requestId);
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new GatewayError('NOT_FOUND', `no admin route ${ctx.method} ${ctx.path}`);
    } catch (err) {
      const gw = isGatewayError(err) ? err : new GatewayError('INTERNAL', 'internal error; see the proxy log for this requestId');
      if (!isGatewayError(err)) log.error({ requestId, err: (err as Error).message }, 'admin request failed');
      ctx.status = gw.status;
      ctx.set(gw.headers);
      ctx.body = gw.toJSON(requestId);
    }
    if (ctx.path.startsWith('/admin/')) {
      log.info({ requestId, method: ctx.method, path: ctx.path, status: ctx.status }, 'admin');
    }
  });

  // Every request under /admin, whatever its method (OPTIONS included) and whether or not a
  // route matches: nothing under /admin answers without the token, not even its Allow list.
  app.use(async function adminAuth(ctx, next) {
    if (ctx.path !== '/admin' && !ctx.path.startsWith('/admin/')) return next();
    refuseCrossSite(ctx);
    const token = adminToken();
    if (token) {
      const tokenDigest = digestOf(token);
      const m = /^Bearer[ ]+(\S+)\s*$/i.exec(ctx.get('authorization'));
      const presented = createHash('sha256').update(m?.[1] ?? '').digest();
      if (!m || !timingSafeEqual(presented, tokenDigest)) {
        throw new GatewayError('ADMIN_UNAUTHENTICATED', 'send Authorization: Bearer <admin token>', {
          headers: { 'WWW-Authenticate': 'Bearer realm="countersign-admin"' },
        });
      }
    }
    await next();
  });

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', (ctx) => {
    const r = readiness();
    ctx.status = r.ready ? 200 : 503;
    ctx.body = { status: r.status, store: r.store };
  });

  router.get('/metrics', async (ctx) => {
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });

  addConsoleRoutes(router);

  const body = (ctx: Koa.Context) => readBody(ctx.req, ADMIN_BODY_LIMIT);

  router.get('/admin/tokens', (ctx) => {
    ctx.body = tokenAdmin.list();
  });
  const startedAt = deps.startedAt ?? Date.now();
  router.get('/admin/activity', async (ctx) => {
    ctx.body = await readActivity(registry, tokenAdmin.list().upstreams.map((u) => u.name), startedAt);
  });
  router.put('/admin/upstreams/:u/merchants/:m/token', async (ctx) => {
    const { expiresAt, expired } = await tokenAdmin.importPair(ctx.params.u!, ctx.params.m!, await body(ctx));
    if (expired) {
      // Keeta's refresh token expires with its access token: this pair cannot be renewed.
      const warning = `the imported pair expired at ${new Date(expiresAt).toISOString()}, and its refresh token with it: the merchant must authorize again`;
      log.warn({ upstream: ctx.params.u, merchant: ctx.params.m, expiresAt: new Date(expiresAt).toISOString() }, warning);
      ctx.set('Warning', `299 countersign "${warning}"`);
    }
    ctx.status = 204;
  });
  router.put('/admin/upstreams/:u/merchants/:m/shops', async (ctx) => {
    await tokenAdmin.replaceShops(ctx.params.u!, ctx.params.m!, await body(ctx));
    ctx.status = 204;
  });
  router.post('/admin/upstreams/:u/merchants/:m/refresh', async (ctx) => {
    ctx.body = await tokenAdmin.refresh(ctx.params.u!, ctx.params.m!);
  });
  router.delete('/admin/upstreams/:u/merchants/:m', async (ctx) => {
    await tokenAdmin.forget(ctx.params.u!, ctx.params.m!);
    ctx.status = 204;
  });
  router.post('/admin/upstreams/:u/authorizations', async (ctx) => {
    if (!deps.createAuthorization) throw new GatewayError('NOT_FOUND', 'merchant authorization is not configured');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await deps.createAuthorization(ctx.params.u!);
  });
  router.post('/admin/upstreams/:u/refresh', async (ctx) => {
    ctx.body = await tokenAdmin.refresh(ctx.params.u!);
  });

  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
