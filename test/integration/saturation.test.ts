/**
 * Paths, methods and saturation (issue 18), over real sockets against the simulators:
 * percent-encoded letters no longer dodge the deny checks and rate limits, methods an upstream
 * does not use are refused, one caller's flood leaves the others (and the token calls) their
 * connections, a refresh whose answer is lost is an alarm and never spends a refresh token
 * twice, and the gateway bounds the connections and answers it holds.
 */
import test from 'ava';
import { connect } from 'node:net';
import { jsonString } from '../../src/provider/steps/json-text.js';
import { signKeetaAppCall } from '../../src/provider/steps/sorted-json-body-sign.js';
import { rawRequest, type RawResponse } from '../helpers/http.js';
import { KEETA_APP_ID, KEETA_SECRET, assertNoRefreshReuse, importPair, keetaSetup } from '../helpers/keeta-setup.js';
import { keySecureSetup } from '../helpers/keysecure-setup.js';

const SHOP = '466663';
const KEETA_BODY = `{"shopId":${SHOP},"shopCategory":{"id":1,"name":"c"}}`;
const FLOOD_TOKEN = 'flood-caller-token-0123456789';
const QUIET_TOKEN = 'quiet-caller-token-0123456789';

function refusal(t: import('ava').ExecutionContext, res: RawResponse, status: number, code: string, what: string): { message: string } {
  t.is(res.status, status, `${what}: ${res.body}`);
  const body = res.json<{ error: { code: string; message: string; requestId: string } }>();
  t.is(body.error.code, code, what);
  t.truthy(body.error.requestId, what);
  return body.error;
}

test('percent-encoded letters are decoded before the deny checks: t%6fken, token.json and token. are FORBIDDEN_PATH; double encoding and overlong UTF-8 are BAD_PATH', async (t) => {
  const { sim, gw } = await keySecureSetup(t);
  const ks = (path: string, method = 'GET') => rawRequest(gw.proxyUrl, { method, path: `/keysecure-hk${path}` });
  for (const path of ['/open-api/v1/merchant/t%6fken', '/open-api/v1/merchant/%74oken', '/open-api/v1/merchant/token.json', '/open-api/v1/merchant/token.', '/open-api/v1/merchant/TOKEN/']) {
    refusal(t, await ks(path), 403, 'FORBIDDEN_PATH', path);
  }
  for (const path of ['/open-api/v1/merchant/t%256fken', '/open-api/v1/merchant/%c0%ae%c0%ae/token', '/open-api/v1/card/%e0%80%aelist']) {
    refusal(t, await ks(path), 400, 'BAD_PATH', path);
  }
  t.false(
    sim.control.counters().requests.some((r) => /token/i.test(r.path) && r.headers['access-token'] !== undefined),
    'no caller request reached the token endpoint',
  );
  // An encoded letter elsewhere is forwarded in its normalised form.
  sim.control.reset();
  const ok = await ks('/open-api/v1/card/%6cist', 'POST');
  t.is(ok.status, 200, ok.body);
  t.is(sim.control.counters().requests.at(-1)?.path, '/open-api/v1/card/list');
});

test('Keeta: t%6fken, token.json and token. do not slip past the /base/oauth/token rule', async (t) => {
  const { sim, gw, addMerchant } = await keetaSetup(t);
  await addMerchant('brand-1', [SHOP]);
  sim.control.reset();
  for (const path of ['/base/oauth/t%6fken', '/base/oauth/token.json', '/base/oauth/token.', '/base/oauth/Token']) {
    refusal(t, await rawRequest(gw.proxyUrl, { path: `/keeta${path}`, body: KEETA_BODY }), 403, 'FORBIDDEN_PATH', path);
  }
  t.is(sim.control.counters().requests.length, 0, 'nothing was sent to Keeta');
  assertNoRefreshReuse(t, sim);
});

test('/card/%61pply is held to apply\'s rate limit (1 of 8 through), and counted under its rule', async (t) => {
  const { sim, gw } = await keySecureSetup(t, {
    upstreamExtra: `    rateLimits:
      - name: apply
        paths: ["/open-api/v1/card/apply"]
        perSecond: 0.2
        maxWait: 10ms
`,
  });
  const paths = ['/open-api/v1/card/apply', '/open-api/v1/card/%61pply', '/open-api/v1/card/%61%70ply', '/open-api/v1/card/appl%79', '/open-api/v1/%63ard/apply', '/open-api/v1/card/%61pply', '/open-api/v1/card/ap%70ly', '/open-api/v1/card/%61ppl%79'];
  const answers = [];
  for (const p of paths) answers.push(await rawRequest(gw.proxyUrl, { path: `/keysecure-hk${p}`, body: '{}' }));
  const through = answers.filter((a) => a.status !== 429);
  t.is(through.length, 1, answers.map((a) => `${a.status} ${a.body.slice(0, 80)}`).join('\n'));
  for (const a of answers.slice(1)) refusal(t, a, 429, 'RATE_LIMITED', 'an encoded apply');
  t.is(await gw.metric('countersign_rate_limited_total', { upstream: 'keysecure-hk', rule: 'apply' }), 7);
  const applied = sim.control.counters().requests.filter((r) => r.path.includes('apply'));
  t.deepEqual(
    applied.map((r) => r.path),
    ['/open-api/v1/card/apply'],
  );
});

test('methods: TRACE and PROPFIND are METHOD_NOT_ALLOWED with Allow; Keeta takes POST only; methods: overrides the defaults', async (t) => {
  const { sim, gw } = await keySecureSetup(t);
  for (const method of ['TRACE', 'PROPFIND', 'PATCH', 'HEAD', 'OPTIONS']) {
    const res = await rawRequest(gw.proxyUrl, { method, path: '/keysecure-hk/open-api/v1/card/list' });
    t.is(res.status, 405, method);
    t.is(res.headers['allow'], 'GET, POST, PUT, DELETE', method);
    if (method !== 'HEAD') t.is(res.json<{ error: { code: string } }>().error.code, 'METHOD_NOT_ALLOWED', method);
  }
  t.false(
    sim.control.counters().requests.some((r) => !['GET', 'POST', 'PUT', 'DELETE'].includes(r.method)),
    'no refused method reached the upstream',
  );
  t.is((await rawRequest(gw.proxyUrl, { method: 'POST', path: '/keysecure-hk/open-api/v1/card/list', body: '{}' })).status, 200);

  const keeta = await keetaSetup(t, { upstreamExtra: '' });
  await keeta.addMerchant('brand-1', [SHOP]);
  for (const method of ['GET', 'PUT', 'DELETE', 'TRACE']) {
    const res = await rawRequest(keeta.gw.proxyUrl, { method, path: '/keeta/product/shopcategory/update', body: KEETA_BODY });
    refusal(t, res, 405, 'METHOD_NOT_ALLOWED', `keeta ${method}`);
    t.is(res.headers['allow'], 'POST');
  }

  const only = await keySecureSetup(t, { upstreamExtra: '    methods: [get]\n' });
  refusal(t, await rawRequest(only.gw.proxyUrl, { method: 'POST', path: '/keysecure-hk/open-api/v1/card/list', body: '{}' }), 405, 'METHOD_NOT_ALLOWED', 'POST with methods: [GET]');
  only.sim.control.reset();
  await rawRequest(only.gw.proxyUrl, { method: 'GET', path: '/keysecure-hk/open-api/v1/card/list' });
  t.deepEqual(
    only.sim.control.counters().requests.filter((r) => r.path.startsWith('/open-api/v1/card')).map((r) => r.method),
    ['GET'],
    'GET is forwarded',
  );
});

test.serial('a 300-request flood from one caller on a slowed upstream: another caller\'s three requests are served, an admin refresh answers 200, and the merchant refreshes again with no refresh token used twice', async (t) => {
  t.timeout(60_000);
  const { sim, gw, addMerchant } = await keetaSetup(t, {
    sim: { refreshSpacingMs: 1000 },
    upstreamExtra: `    timeout: 3s
    refreshSpacing: 1s
callers:
  - name: flood
    token: ${FLOOD_TOKEN}
    allow: ["keeta:*"]
  - name: quiet
    token: ${QUIET_TOKEN}
    allow: ["keeta:*"]
`,
  });
  await addMerchant('brand-1', [SHOP]);
  sim.control.setLatency(2000);
  const call = (token: string) =>
    rawRequest(gw.proxyUrl, { path: '/keeta/product/shopcategory/update', body: KEETA_BODY, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
  const flood = Array.from({ length: 300 }, () => call(FLOOD_TOKEN));
  await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  const timed = <T>(p: Promise<T>) => p.then((v) => (t.log(`answered after ${Date.now() - t0} ms`), v));
  const [quiet, refresh] = await Promise.all([
    Promise.all([timed(call(QUIET_TOKEN)), timed(call(QUIET_TOKEN)), timed(call(QUIET_TOKEN))]),
    timed(fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' }).then(async (r) => ({ status: r.status, text: await r.text() }))),
  ]);
  for (const q of quiet) {
    t.is(q.status, 200, q.body);
    t.is(q.json<{ code: number }>().code, 0, q.body);
  }
  // Each quiet request had 3 s for waiting and answering, and the upstream takes 2 s: none
  // waited a second for a connection. (Wall-clock time is only logged: the machine is shared.)
  t.is(refresh.status, 200, refresh.text);

  const flooded = await Promise.all(flood);
  const timedOut = flooded.filter((r) => r.status === 504);
  t.true(timedOut.length > 0, 'the flood itself is held back');
  t.true(
    timedOut.some((r) => /^no connection free within 3000 ms/.test(r.json<{ error: { message: string } }>().error.message)),
    'a request that never got a connection says so',
  );
  t.true((await gw.metric('countersign_connection_waits_total', { upstream: 'keeta', result: 'timed_out' })) > 0);

  // Afterwards: the merchant refreshes again, and no refresh token was ever sent twice.
  sim.control.setLatency(0);
  await new Promise((r) => setTimeout(r, 1100));
  const again = await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' });
  t.is(again.status, 200, await again.text());
  t.is((await call(QUIET_TOKEN)).json<{ code: number }>().code, 0, 'the newest pair serves');
  assertNoRefreshReuse(t, sim);
  t.is(sim.control.counters().requests.filter((r) => r.path.endsWith('/base/oauth/token')).length, 2);
});

test.serial('a caller\'s maxInFlight caps it on each upstream; a request that waited for a connection and never got one is UPSTREAM_TIMEOUT "no connection free within …" and was not sent', async (t) => {
  const { sim, gw } = await keySecureSetup(t, {
    upstreamExtra: `    timeout: 1s
callers:
  - name: capped
    token: ${FLOOD_TOKEN}
    allow: ["keysecure-hk:*"]
    maxInFlight: {keysecure-hk: 2}
`,
  });
  // The token first, so the capped calls below are the only business traffic.
  t.is((await fetch(`${gw.adminUrl}/admin/upstreams/keysecure-hk/refresh`, { method: 'POST' })).status, 200);
  sim.control.reset();
  sim.control.setLatency(1500);
  const call = () => rawRequest(gw.proxyUrl, { path: '/keysecure-hk/open-api/v1/card/list', body: '{}', headers: { authorization: `Bearer ${FLOOD_TOKEN}` } });
  const answers = await Promise.all([call(), call(), call(), call()]);
  const messages = answers.map((a) => refusal(t, a, 504, 'UPSTREAM_TIMEOUT', 'slow').message).sort();
  // Two were sent and got no answer in time; two never got a connection, and say so.
  t.regex(messages[0]!, /^no answer from http:\/\/127\.0\.0\.1:\d+ within 1000 ms$/);
  t.regex(messages[1]!, /^no answer from /);
  t.regex(messages[2]!, /^no connection free within 1000 ms to keysecure-hk \(\d+ of 128 in use, \d+ by this caller\); the request was not sent$/);
  t.regex(messages[3]!, /^no connection free within 1000 ms/);
  t.is(sim.control.counters().requests.length, 2, 'the timed-out ones were never sent');
  t.is(await gw.metric('countersign_connection_waits_total', { upstream: 'keysecure-hk', result: 'timed_out' }), 2);
  sim.control.setLatency(0);
});

test.serial('a refresh whose answer is lost after sending: state refresh_unknown, a metric and a log line naming the merchant; the refresh token is never sent again; a new pair makes the merchant refreshable', async (t) => {
  t.timeout(30_000);
  const { sim, gw, addMerchant } = await keetaSetup(t, { sim: { refreshSpacingMs: 0 }, upstreamExtra: '    tokenTimeout: 300ms\n    refreshSpacing: 1ms\n' });
  await addMerchant('brand-1', [SHOP]);
  sim.control.setLatency(1000);
  const refresh = () => fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' });
  const lost = await refresh();
  t.is(lost.status, 503, await lost.text());
  await new Promise((r) => setTimeout(r, 900)); // the simulator executed it and holds the answer back
  sim.control.setLatency(0);

  const tokens = (await (await fetch(`${gw.adminUrl}/admin/tokens`)).json()) as { upstreams: Array<{ merchants: Array<{ merchant: string; state: string; refreshUnknownAt?: string }> }> };
  const m = tokens.upstreams[0]!.merchants.find((x) => x.merchant === 'brand-1')!;
  t.is(m.state, 'refresh_unknown');
  t.truthy(m.refreshUnknownAt);
  t.is(await gw.metric('countersign_token_refresh_unknown_total', { upstream: 'keeta' }), 1);
  t.is(await gw.metric('countersign_tokens', { upstream: 'keeta', state: 'refresh_unknown' }), 1);
  const line = gw.logs.map((l) => JSON.parse(l) as { msg: string; merchant?: string; level?: unknown }).find((l) => l.msg.startsWith('token refresh sent but its answer was lost'));
  t.truthy(line, 'an alarm line');
  t.is(line!.merchant, 'brand-1');

  // Neither an admin refresh nor a request sends the (maybe spent) refresh token again.
  const second = await refresh();
  t.is(second.status, 503);
  t.regex(((await second.json()) as { error: { message: string } }).error.message, /answer lost.*connect the merchant again \(OAuth\) or import a new pair/);
  t.is(sim.control.counters().requests.filter((r) => r.path.endsWith('/base/oauth/token')).length, 1, 'one refresh was sent, once');
  assertNoRefreshReuse(t, sim);

  // A new pair (here: a code exchanged outside the gateway, then imported) clears the state.
  const code = sim.control.issueAuthCode('brand-1');
  const signed = signKeetaAppCall(`${sim.baseUrl}/base/oauth/token`, KEETA_SECRET, KEETA_APP_ID, Math.floor(Date.now() / 1000), [
    ['grantType', jsonString('authorization_code')],
    ['code', jsonString(code)],
  ]);
  const exchanged = (await (await fetch(`${sim.baseUrl}/base/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: signed.body })).json()) as Record<string, unknown>;
  const pair = ((exchanged['data'] as Record<string, unknown> | undefined) ?? exchanged) as { accessToken: string; refreshToken: string; expiresIn: number; issuedAtTime: number };
  gw.secrets.add(pair.accessToken);
  gw.secrets.add(pair.refreshToken);
  await importPair(gw.adminUrl, 'keeta', 'brand-1', pair, [SHOP]);
  await new Promise((r) => setTimeout(r, 20));
  const third = await refresh();
  t.is(third.status, 200, await third.text());
  assertNoRefreshReuse(t, sim);
});

test('limits.maxResponseBytes: a longer upstream answer is a clear 502 UPSTREAM_RESPONSE_TOO_LARGE', async (t) => {
  const { gw } = await keySecureSetup(t, {});
  const small = await keySecureSetup(t, { upstreamExtra: 'limits:\n  maxResponseBytes: 40\n' });
  t.is((await rawRequest(gw.proxyUrl, { path: '/keysecure-hk/open-api/v1/card/list', body: '{}' })).status, 200);
  const err = refusal(t, await rawRequest(small.gw.proxyUrl, { path: '/keysecure-hk/open-api/v1/card/list', body: '{}' }), 502, 'UPSTREAM_RESPONSE_TOO_LARGE', 'over the bound');
  t.regex(err.message, /larger than limits\.maxResponseBytes/);
  t.is(await small.gw.metric('countersign_requests_total', { upstream: 'keysecure-hk', class: 'upstream_http_error' }), 1);
});

test('limits.maxConnections: a connection beyond the bound is closed at once; the others keep working', async (t) => {
  const { gw } = await keySecureSetup(t, { upstreamExtra: 'limits:\n  maxConnections: 2\n' });
  const { port } = new URL(gw.proxyUrl);
  const open = () =>
    new Promise<import('node:net').Socket>((resolve, reject) => {
      const s = connect(Number(port), '127.0.0.1', () => resolve(s));
      s.on('error', reject);
    });
  const a = await open();
  const b = await open();
  const c = await open();
  const closed = await new Promise<boolean>((resolve) => {
    c.on('close', () => resolve(true));
    c.on('error', () => {});
    setTimeout(() => resolve(false), 2000);
  });
  t.true(closed, 'the third connection was closed by the gateway');
  t.false(a.destroyed);
  a.destroy();
  b.destroy();
  await new Promise((r) => setTimeout(r, 100));
  t.not((await rawRequest(gw.proxyUrl, { path: '/keysecure-hk/open-api/v1/card/list', body: '{}' })).status, 0);
});

test.serial('a flood on a shared rate rule fills only the flooding caller\'s share of the wait window: another caller is admitted, not refused', async (t) => {
  const { gw } = await keySecureSetup(t, {
    upstreamExtra: `    rateLimits:
      - name: cards
        paths: ["/open-api/v1/card/list"]
        perSecond: 5
        maxWait: 1s
callers:
  - name: flood
    token: ${FLOOD_TOKEN}
    allow: ["keysecure-hk:*"]
  - name: quiet
    token: ${QUIET_TOKEN}
    allow: ["keysecure-hk:*"]
`,
  });
  t.is((await fetch(`${gw.adminUrl}/admin/upstreams/keysecure-hk/refresh`, { method: 'POST' })).status, 200);
  const call = (token: string) => rawRequest(gw.proxyUrl, { path: '/keysecure-hk/open-api/v1/card/list', body: '{}', headers: { authorization: `Bearer ${token}` } });
  const flood = await Promise.all(Array.from({ length: 30 }, () => call(FLOOD_TOKEN)));
  const refused = flood.filter((r) => r.status === 429);
  t.true(refused.length >= 20, `the flood is refused beyond its half of the window (${refused.length} of 30)`);
  t.true(refused.some((r) => /caller "flood" already has its share \(2\) of that rate waiting/.test(r.json<{ error: { message: string } }>().error.message)));
  // The flood holds at most its share (2 of the window's 5 slots) waiting: the quiet caller's
  // two fit in the window, whatever the flood does meanwhile.
  const floodAgain = Promise.all(Array.from({ length: 10 }, () => call(FLOOD_TOKEN)));
  const quiet = await Promise.all([call(QUIET_TOKEN), call(QUIET_TOKEN)]);
  for (const q of quiet) t.is(q.status, 200, q.body);
  await floodAgain;
});
