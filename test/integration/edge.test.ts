import test from 'ava';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/http.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';

const APP_SECRET = 'edge-app-secret-9f3b1c';
const CALLER_TOKEN = 'caller-token-order-service-7d2e';
const OTHER_TOKEN = 'caller-token-billing-service-1a5c';
const APP_LEVEL = '/base/callback/url/set';

function keetaConfig(baseUrl: string, extra = '') {
  return `
store:
  type: memory
limits:
  maxBodyBytes: 1024
upstreams:
  keeta:
    type: keeta
    baseUrl: ${baseUrl}/api/open
    appId: 123
    appSecret: ${APP_SECRET}
    timeout: 5s
  keeta-quick:
    type: keeta
    baseUrl: ${baseUrl}/api/open
    appId: 123
    appSecret: ${APP_SECRET}
    timeout: 300ms
  ks:
    type: keysecure
    baseUrl: ${baseUrl}
    apiKey: ks-edge-api-key-1234
${extra}`;
}

async function withGateway(t: any, extra = '', upstreamUrl?: string): Promise<{ gw: TestGateway; up: RecordingUpstream }> {
  const up = await startRecordingUpstream();
  const gw = await startGateway(keetaConfig(upstreamUrl ?? up.url, extra));
  t.teardown(async () => {
    await gw.close();
    await up.close();
  });
  return { gw, up };
}

function assertRefusal(t: any, res: { status: number; json(): any; headers: any }, status: number, code: string) {
  t.is(res.status, status);
  const body = res.json();
  t.is(body.error.code, code);
  t.is(typeof body.error.message, 'string');
  t.true(body.error.message.length > 0);
  t.is(typeof body.error.requestId, 'string');
  t.is(body.error.requestId, res.headers['x-request-id']);
}

test('health and metrics live on the admin listener only; /healthz on the proxy listener is UNKNOWN_UPSTREAM', async (t) => {
  const { gw } = await withGateway(t);
  const health = await fetch(`${gw.adminUrl}/healthz`);
  t.is(health.status, 200);
  t.deepEqual(await health.json(), { status: 'ok' });
  const ready = await fetch(`${gw.adminUrl}/readyz`);
  t.is(ready.status, 200);
  t.like(await ready.json(), { status: 'ready', store: 'ok' });
  const metrics = await fetch(`${gw.adminUrl}/metrics`);
  t.is(metrics.status, 200);
  t.regex(await metrics.text(), /countersign_requests_total/);

  for (const path of ['/healthz', '/metrics', '/readyz']) {
    const res = await rawRequest(gw.proxyUrl, { method: 'GET', path });
    assertRefusal(t, res, 404, 'UNKNOWN_UPSTREAM');
  }
});

test('path escapes are refused with BAD_PATH and never reach the upstream', async (t) => {
  const { gw, up } = await withGateway(t);
  const attempts = [
    '/keeta/../admin/tokens',
    '/keeta/base/../../etc/passwd',
    '/keeta/%2e%2e/x',
    '/keeta/%2E%2e/x',
    '/keeta/.%2e/x',
    '/keeta/./base',
    '/keeta//evil.example/x',
    '/keeta/base%2f..%2fx',
    '/keeta/a\\..\\b',
    '/keeta/a%5c..%5cb',
    '/../keeta/base',
    '/keeta/x%00y',
    '/keeta/order/..;/base/oauth/token',
    '/keeta/order;jsessionid=1/get',
    '/keeta/order/%3b/get',
  ];
  // Through a KeySecure upstream too: its paths pass through as sent, so only the edge stands
  // between an escape attempt and the upstream.
  const all = [...attempts, ...attempts.filter((p) => p.startsWith('/keeta/')).map((p) => p.replace('/keeta/', '/ks/'))];
  for (const path of all) {
    const res = await rawRequest(gw.proxyUrl, { path, headers: { 'content-type': 'application/json' }, body: '{}' });
    t.is(res.status, 400, path);
    t.is(res.json().error.code, 'BAD_PATH', path);
  }
  t.is(up.requests.length, 0);
});

test('a ";" path parameter is BAD_PATH on a KeySecure upstream: "/card/..;/cardholder/apply" never reaches it', async (t) => {
  const { gw, up } = await withGateway(t);
  for (const path of ['/ks/open-api/v1/card/..;/cardholder/apply', '/ks/open-api/v1/card;x=1/list', '/ks/open-api/v1/card/%3B/list']) {
    const res = await rawRequest(gw.proxyUrl, { path, headers: { 'content-type': 'application/json' }, body: '{}' });
    t.is(res.status, 400, path);
    t.is(res.json().error.code, 'BAD_PATH', path);
    t.regex(res.json().error.message, /;/, path);
  }
  t.is(up.requests.length, 0);
});

test('a query string on a Keeta call is BAD_PATH: it would reach Keeta unsigned', async (t) => {
  const { gw, up } = await withGateway(t);
  for (const query of ['?sig=forged&accessToken=stolen', '?x=1', '?']) {
    const res = await rawRequest(gw.proxyUrl, { path: `/keeta${APP_LEVEL}${query}`, headers: { 'content-type': 'application/json' }, body: '{}' });
    t.is(res.status, 400, query);
    t.is(res.json().error.code, 'BAD_PATH', query);
  }
  t.is(up.requests.length, 0);
  // Without the query the same call goes through.
  t.is((await rawRequest(gw.proxyUrl, { path: `/keeta${APP_LEVEL}`, headers: { 'content-type': 'application/json' }, body: '{}' })).status, 200);
});

test('an absolute-form target or a Host header never changes the destination', async (t) => {
  const { gw, up } = await withGateway(t);
  const hits: string[] = [];
  const other = createServer((req, res) => {
    hits.push(req.url ?? '');
    res.end('{"code":0}');
  });
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => other.close(() => r())));
  const otherBase = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;

  // Absolute-form aimed at the second server: only the path counts, and "/x" names no upstream.
  const r1 = await rawRequest(gw.proxyUrl, { path: `${otherBase}/x`, headers: { 'content-type': 'application/json' }, body: '{}' });
  assertRefusal(t, r1, 404, 'UNKNOWN_UPSTREAM');
  // Absolute-form with a valid upstream path: goes to the configured baseUrl, not to the named host.
  const r2 = await rawRequest(gw.proxyUrl, { path: `${otherBase}/keeta${APP_LEVEL}`, headers: { 'content-type': 'application/json' }, body: '{"url":"https://x"}' });
  t.is(r2.status, 200);
  // Host header naming the second server: ignored.
  const r3 = await rawRequest(gw.proxyUrl, { path: `/keeta${APP_LEVEL}`, headers: { host: new URL(otherBase).host, 'content-type': 'application/json' }, body: '{}' });
  t.is(r3.status, 200);

  t.deepEqual(hits, []);
  t.is(up.requests.length, 2);
  for (const r of up.requests) {
    t.is(r.url, `/api/open${APP_LEVEL}`);
    t.is(r.headers.host, new URL(up.url).host);
  }
});

test('BAD_JSON for bodies that are not a JSON object', async (t) => {
  const { gw, up } = await withGateway(t);
  for (const body of ['{', '[1,2]', '"text"', '', '{"a":1,}', '{"a":1,"a":2}', '{"a":01}']) {
    const res = await rawRequest(gw.proxyUrl, { path: `/keeta${APP_LEVEL}`, headers: { 'content-type': 'application/json' }, body });
    assertRefusal(t, res, 400, 'BAD_JSON');
    // One plain statement of the fault, not "not valid JSON: Invalid JSON: …".
    t.notRegex(res.json().error.message, /invalid json|json: invalid/i, body);
    t.notRegex(res.json().error.message, /not valid JSON[^]*JSON/, body);
  }
  const invalidUtf8 = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]);
  assertRefusal(t, await rawRequest(gw.proxyUrl, { path: `/keeta${APP_LEVEL}`, body: invalidUtf8 }), 400, 'BAD_JSON');
  t.is(up.requests.length, 0);
});

test('BODY_TOO_LARGE over limits.maxBodyBytes, declared or streamed', async (t) => {
  const { gw, up } = await withGateway(t);
  const big = JSON.stringify({ pad: 'x'.repeat(2000) });
  assertRefusal(t, await rawRequest(gw.proxyUrl, { path: `/keeta${APP_LEVEL}`, body: big }), 413, 'BODY_TOO_LARGE');
  assertRefusal(t, await rawRequest(gw.proxyUrl, { path: `/keeta${APP_LEVEL}`, body: big, chunked: true }), 413, 'BODY_TOO_LARGE');
  const fits = JSON.stringify({ pad: 'x'.repeat(900) });
  t.is((await rawRequest(gw.proxyUrl, { path: `/keeta${APP_LEVEL}`, body: fits })).status, 200);
  t.is(up.requests.length, 1);
});

test('callers: no or unknown bearer token is CALLER_UNAUTHENTICATED; outside the allow list is CALLER_FORBIDDEN', async (t) => {
  const callers = `callers:
  - name: order-service
    token: ${CALLER_TOKEN}
    allow: ["keeta:/order/*"]
  - name: admin-tools
    token: ${OTHER_TOKEN}
    allow: ["keeta:${APP_LEVEL}"]
`;
  const { gw, up } = await withGateway(t, callers);
  const path = `/keeta${APP_LEVEL}`;
  const none = await rawRequest(gw.proxyUrl, { path, body: '{}' });
  assertRefusal(t, none, 401, 'CALLER_UNAUTHENTICATED');
  t.regex(String(none.headers['www-authenticate']), /^Bearer/);
  assertRefusal(t, await rawRequest(gw.proxyUrl, { path, body: '{}', headers: { authorization: 'Bearer not-a-caller-token-at-all' } }), 401, 'CALLER_UNAUTHENTICATED');
  assertRefusal(t, await rawRequest(gw.proxyUrl, { path, body: '{}', headers: { authorization: `Basic ${CALLER_TOKEN}` } }), 401, 'CALLER_UNAUTHENTICATED');
  const forbidden = await rawRequest(gw.proxyUrl, { path, body: '{}', headers: { authorization: `Bearer ${CALLER_TOKEN}` } });
  assertRefusal(t, forbidden, 403, 'CALLER_FORBIDDEN');
  t.false(forbidden.body.includes(CALLER_TOKEN));
  const ok = await rawRequest(gw.proxyUrl, { path, body: '{}', headers: { authorization: `Bearer ${OTHER_TOKEN}` } });
  t.is(ok.status, 200);
  t.is(up.requests.length, 1);
  t.is(up.requests[0]!.headers.authorization, undefined, "the caller's Authorization is never forwarded");
});

test('UPSTREAM_UNREACHABLE when the connection fails', async (t) => {
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const { gw } = await withGateway(t, '', `http://127.0.0.1:${port}`);
  const res = await rawRequest(gw.proxyUrl, { path: `/keeta${APP_LEVEL}`, body: '{}' });
  assertRefusal(t, res, 502, 'UPSTREAM_UNREACHABLE');
  t.is(await gw.metric('countersign_requests_total', { upstream: 'keeta', class: 'network_error' }), 1);
});

test('UPSTREAM_TIMEOUT when the upstream does not answer within its timeout', async (t) => {
  const { gw, up } = await withGateway(t);
  up.respond(() => ({ delayMs: 1500 }));
  const res = await rawRequest(gw.proxyUrl, { path: `/keeta-quick${APP_LEVEL}`, body: '{}' });
  assertRefusal(t, res, 504, 'UPSTREAM_TIMEOUT');
  t.is(await gw.metric('countersign_requests_total', { upstream: 'keeta-quick', class: 'timeout' }), 1);
});

test("the upstream's status, headers and body come back unchanged, with X-Request-Id", async (t) => {
  const { gw, up } = await withGateway(t);
  const answer = '{"code":0,"message":"ok","data":{"orderViewId":1234567890123456789,"note":"開心 \\u00e9"}}';
  up.respond(() => ({ status: 201, headers: { 'x-upstream-trace': 'abc', 'cache-control': 'no-store', connection: 'x-hop', 'x-hop': 'secret' }, body: answer }));
  const mine = await rawRequest(gw.proxyUrl, { path: `/keeta${APP_LEVEL}`, body: '{}', headers: { 'x-request-id': 'req-123' } });
  t.is(mine.status, 201);
  t.is(mine.body, answer);
  t.is(mine.headers['x-upstream-trace'], 'abc');
  t.is(mine.headers['cache-control'], 'no-store');
  t.is(mine.headers['x-hop'], undefined, 'headers listed in Connection are hop-by-hop');
  t.is(mine.headers['x-request-id'], 'req-123');
  const fresh = await rawRequest(gw.proxyUrl, { path: `/keeta${APP_LEVEL}`, body: '{}' });
  t.regex(String(fresh.headers['x-request-id']), /^[0-9a-f-]{36}$/);
});

test('never forwarded: Authorization, X-Countersign-*, cookies, hop-by-hop headers', async (t) => {
  const { gw, up } = await withGateway(t);
  await rawRequest(gw.proxyUrl, {
    path: `/keeta${APP_LEVEL}`,
    body: '{}',
    headers: {
      authorization: 'Bearer whatever-the-caller-had',
      'x-countersign-merchant': 'm1',
      'x-countersign-debug': '1',
      cookie: 'session=1',
      connection: 'keep-alive, x-drop-me',
      'x-drop-me': '1',
      te: 'trailers',
      'proxy-authorization': 'Basic abc',
      'accept-encoding': 'gzip, br',
      'x-kept': 'yes',
    },
  });
  const h = up.requests[0]!.headers;
  // accept-encoding: the proxy reads every answer's code, so it asks for identity encoding.
  for (const name of ['authorization', 'x-countersign-merchant', 'x-countersign-debug', 'cookie', 'x-drop-me', 'te', 'proxy-authorization', 'accept-encoding']) {
    t.is(h[name], undefined, name);
  }
  t.is(h['x-kept'], 'yes');
});

test('configured secrets and caller tokens never appear in the logs', async (t) => {
  const callers = `callers:
  - name: svc
    token: ${CALLER_TOKEN}
    allow: ["keeta:*"]
`;
  const { gw } = await withGateway(t, callers);
  await rawRequest(gw.proxyUrl, { path: `/keeta${APP_LEVEL}`, body: '{"sig":"x"}', headers: { authorization: `Bearer ${CALLER_TOKEN}` } });
  await rawRequest(gw.proxyUrl, { path: `/keeta${APP_LEVEL}`, body: '{}', headers: { authorization: `Bearer ${OTHER_TOKEN}` } });
  await rawRequest(gw.proxyUrl, { path: '/keeta/order/get', body: '{"shopId":1}', headers: { authorization: `Bearer ${CALLER_TOKEN}` } });
  const logs = gw.logText();
  t.true(gw.logs.length >= 3, 'one line per request');
  for (const secret of [APP_SECRET, CALLER_TOKEN, OTHER_TOKEN]) t.false(logs.includes(secret), `log leaks ${secret.slice(0, 8)}…`);
  const line = JSON.parse(gw.logs.find((l) => l.includes('"msg":"request"'))!);
  t.like(line, { upstream: 'keeta', class: 'success', status: 200, caller: 'svc' });
  t.is(typeof line.requestId, 'string');
  t.is(typeof line.durationMs, 'number');
});

test('the upstream timeout is one deadline for the whole answer, not an idle timer', async (t) => {
  const trickle = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"code":0,"pad":"');
    let n = 0;
    const timer = setInterval(() => {
      if (++n > 20 || res.destroyed) {
        clearInterval(timer);
        if (!res.destroyed) res.end('"}');
        return;
      }
      res.write('x');
    }, 100); // a byte every 100 ms: never idle for the 300 ms timeout, done only after 2 s
  });
  await new Promise<void>((r) => trickle.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    trickle.closeAllConnections();
    return new Promise<void>((r) => trickle.close(() => r()));
  });
  const { gw } = await withGateway(t, '', `http://127.0.0.1:${(trickle.address() as AddressInfo).port}`);
  const res = await rawRequest(gw.proxyUrl, { path: `/keeta-quick${APP_LEVEL}`, body: '{}' });
  assertRefusal(t, res, 504, 'UPSTREAM_TIMEOUT');
});

test('a caller that hangs up mid-body is logged quietly, not as an internal error', async (t) => {
  const { gw, up } = await withGateway(t);
  const { connect } = await import('node:net');
  const u = new URL(gw.proxyUrl);
  await new Promise<void>((resolve) => {
    const sock = connect(Number(u.port), u.hostname, () => {
      sock.write(`POST /keeta${APP_LEVEL} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":`);
      setTimeout(() => {
        sock.destroy();
        resolve();
      }, 50);
    });
  });
  for (let i = 0; i < 50 && !gw.logText().includes('CLIENT_CLOSED'); i++) await new Promise((r) => setTimeout(r, 20));
  t.regex(gw.logText(), /"error":"CLIENT_CLOSED"/);
  t.false(gw.logText().includes('unexpected error'));
  t.is(up.requests.length, 0);
});

test('refusals before the upstream is looked up still count for it when the first segment names one', async (t) => {
  const { gw } = await withGateway(t);
  await rawRequest(gw.proxyUrl, { path: '/keeta/../x', body: '{}' });
  await rawRequest(gw.proxyUrl, { path: '/keeta//x', body: '{}' });
  await rawRequest(gw.proxyUrl, { path: '/nosuch/../x', body: '{}' });
  t.is(await gw.metric('countersign_requests_total', { upstream: 'keeta', class: 'rejected' }), 2);
  t.false((await gw.app.registry.metrics()).includes('nosuch'), 'unknown names never become labels');
});

test('the admin token guards /admin/* only, and never appears in a log line', async (t) => {
  const ADMIN = 'admin-token-edge-5b7e9c1d';
  const { gw } = await withGateway(t, `admin:\n  token: ${ADMIN}\n`);
  const none = await fetch(`${gw.adminUrl}/admin/tokens`);
  t.is(none.status, 401);
  t.is(((await none.json()) as any).error.code, 'ADMIN_UNAUTHENTICATED');
  t.regex(String(none.headers.get('www-authenticate')), /^Bearer/);
  const wrong = await fetch(`${gw.adminUrl}/admin/tokens`, { headers: { authorization: 'Bearer not-the-admin-token' } });
  t.is(wrong.status, 401);
  const refresh = await fetch(`${gw.adminUrl}/admin/upstreams/ks/refresh`, { method: 'POST' });
  t.is(refresh.status, 401, 'every admin route, not just the listing');
  const right = await fetch(`${gw.adminUrl}/admin/tokens`, { headers: { authorization: `Bearer ${ADMIN}` } });
  t.is(right.status, 200);
  for (const open of ['/healthz', '/readyz', '/metrics']) t.is((await fetch(`${gw.adminUrl}${open}`)).status, 200, open);
  t.false(gw.logText().includes(ADMIN));
});
