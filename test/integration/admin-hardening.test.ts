/**
 * The admin listener and the gateway's start, from outside: nothing under /admin answers
 * without the token (OPTIONS included); imports refuse bytes that are not UTF-8 and absurd
 * sizes in SPEC's format; and before the token store is open, requests and imports are told
 * the gateway is starting (503 STARTING, Retry-After), not that the store is unreachable.
 */
import test from 'ava';
import { Registry } from 'prom-client';
import { buildApp } from '../../src/app/app.js';
import { parseConfig } from '../../src/config/load.js';
import { listenApp } from '../../src/app/server.js';
import { MemoryStore } from '../../src/tokens/memory-store.js';
import { startGateway } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/http.js';
import { captureLogs } from '../helpers/log-capture.js';

const ADMIN_TOKEN = 'admin-token-for-hardening-5f2a9c';
const UPSTREAMS = `upstreams:
  keeta:
    type: keeta
    baseUrl: http://127.0.0.1:9/api/open
    appId: 1
    appSecret: hardening-app-secret-77
  keysecure-hk:
    type: keysecure
    baseUrl: http://127.0.0.1:9
    apiKey: hardening-api-key-31
`;
const PAIR = (over: Record<string, unknown> = {}) => JSON.stringify({ accessToken: 'a'.repeat(32), refreshToken: 'r'.repeat(32), expiresIn: 7776000, issuedAtTime: Date.now(), ...over });

test('OPTIONS (and any method) under /admin needs the admin token', async (t) => {
  const gw = await startGateway(`admin:\n  token: ${ADMIN_TOKEN}\n${UPSTREAMS}`);
  t.teardown(() => gw.close());
  for (const path of ['/admin/tokens', '/admin/upstreams/keeta/merchants/m/token', '/admin/nothing-here', '/admin']) {
    const r = await rawRequest(gw.adminUrl, { method: 'OPTIONS', path });
    t.is(r.status, 401, path);
    t.is(r.json().error.code, 'ADMIN_UNAUTHENTICATED', path);
    t.falsy(r.headers['allow'], `${path}: no Allow list without the token`);
  }
  const authed = await rawRequest(gw.adminUrl, { method: 'OPTIONS', path: '/admin/tokens', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  t.is(authed.status, 200);
  // Health and metrics stay open.
  t.is((await rawRequest(gw.adminUrl, { method: 'GET', path: '/healthz' })).status, 200);
});

test('an import with bytes that are not UTF-8, or absurd sizes, is refused in SPEC format and nothing is stored', async (t) => {
  const gw = await startGateway(UPSTREAMS);
  t.teardown(() => gw.close());
  const put = (body: Buffer | string) =>
    rawRequest(gw.adminUrl, { method: 'PUT', path: '/admin/upstreams/keeta/merchants/m1/token', headers: { 'content-type': 'application/json' }, body });
  // A token with one byte that is no UTF-8: it must not become another token with U+FFFD in it.
  const good = Buffer.from(PAIR());
  const broken = Buffer.concat([good.subarray(0, 20), Buffer.from([0xff]), good.subarray(21)]);
  const r1 = await put(broken);
  t.is(r1.status, 400);
  t.deepEqual([r1.json().error.code, r1.json().error.message], ['BAD_JSON', 'the body is not valid UTF-8']);
  t.truthy(r1.json().error.requestId);
  const huge = 'x'.repeat(1024 * 1024 - 200);
  const r2 = await put(PAIR({ accessToken: huge }));
  t.is(r2.status, 400);
  t.is(r2.json().error.code, 'BAD_REQUEST');
  t.regex(r2.json().error.message, /^accessToken: at most 1024 characters/);
  t.false(r2.body.includes('xxxxxxxx'), 'the token is not echoed');
  const r3 = await put(PAIR({ refreshToken: 'has a space' }));
  t.is(r3.status, 400);
  t.regex(r3.json().error.message, /^refreshToken: no spaces, line breaks or control characters/);
  const r4 = await put(PAIR({ accessToken: 'token-with-a-line-break\n' }));
  t.is(r4.status, 400);
  const shops = await rawRequest(gw.adminUrl, { method: 'PUT', path: '/admin/upstreams/keeta/merchants/m1/shops', headers: { 'content-type': 'application/json' }, body: Buffer.from([0x7b, 0xc3, 0x28, 0x7d]) });
  t.is(shops.status, 400);
  t.is(shops.json().error.code, 'BAD_JSON');
  const list = (await (await fetch(`${gw.adminUrl}/admin/tokens`)).json()) as { upstreams: Array<{ merchants: unknown[] }> };
  t.deepEqual(list.upstreams.map((u) => u.merchants.length), [0, 0]);
  // A sane pair goes in.
  t.is((await put(PAIR())).status, 204);
});

test('before the token store is open, requests and imports answer 503 STARTING with Retry-After; then they work', async (t) => {
  let release!: () => void;
  const opened = new Promise<void>((r) => (release = r));
  class SlowToOpen extends MemoryStore {
    override async open(): Promise<void> {
      await opened;
      return super.open();
    }
  }
  const config = parseConfig(`listen:\n  proxy: 127.0.0.1:0\n  admin: 127.0.0.1:0\n${UPSTREAMS}`, { env: {} });
  const { log } = captureLogs();
  const app = buildApp({ config, store: new SlowToOpen(), registry: new Registry(), logger: log, schedulerIntervalMs: 0 });
  // As `serve` does: bound first, then started.
  const listening = await listenApp(app, config.listen);
  const starting = app.start();
  t.teardown(async () => {
    release();
    await starting.catch(() => {});
    await listening.shutdown(1000);
  });

  for (const req of [
    { url: listening.proxyUrl, method: 'POST', path: '/keeta/order/get', headers: { 'content-type': 'application/json', 'x-countersign-merchant': 'm1' }, body: '{"orderViewId":1}' },
    { url: listening.proxyUrl, method: 'GET', path: '/keysecure-hk/open-api/v1/card/list' },
    { url: listening.adminUrl, method: 'PUT', path: '/admin/upstreams/keeta/merchants/m1/token', headers: { 'content-type': 'application/json' }, body: PAIR() },
    { url: listening.adminUrl, method: 'DELETE', path: '/admin/upstreams/keeta/merchants/m1' },
  ]) {
    const r = await rawRequest(req.url, req);
    t.is(r.status, 503, `${req.method} ${req.path}`);
    t.is(r.json().error.code, 'STARTING', `${req.method} ${req.path}`);
    t.regex(r.json().error.message, /starting/);
    t.is(r.headers['retry-after'], '2');
  }
  const ready = await rawRequest(listening.adminUrl, { method: 'GET', path: '/readyz' });
  t.is(ready.status, 503);

  release();
  await starting;
  const imported = await rawRequest(listening.adminUrl, { method: 'PUT', path: '/admin/upstreams/keeta/merchants/m1/token', headers: { 'content-type': 'application/json' }, body: PAIR() });
  t.is(imported.status, 204, imported.body);
  t.is((await rawRequest(listening.adminUrl, { method: 'GET', path: '/readyz' })).status, 200);
});
