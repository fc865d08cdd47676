import test from 'ava';
import { createHmac } from 'node:crypto';
import { startGateway } from '../helpers/gateway.js';
import { startRecordingUpstream, type Recorded } from '../helpers/recording-upstream.js';
import { lazadaSignatureOk, taobaoSignatureOk, tiktokSignatureOk } from '../helpers/vendor-verifiers.js';

/**
 * Recipe upstreams over real sockets: the upstream checks every signature itself with the
 * vendor verifiers (test/helpers/vendor-verifiers.ts, written from the vendor docs, no code
 * shared with src/provider).
 */

const INT64 = '9223372036854775807';
const TRICKY = 'a&b=c d 你好+%';

async function importPair(adminUrl: string, upstream: string, merchant: string, pair: { accessToken: string; refreshToken: string; shopIds?: string[]; expiresIn?: number }) {
  const res = await fetch(`${adminUrl}/admin/upstreams/${upstream}/merchants/${merchant}/token`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ accessToken: pair.accessToken, refreshToken: pair.refreshToken, expiresIn: pair.expiresIn ?? 30 * 86400, issuedAtTime: Date.now() - 1000, ...(pair.shopIds && { shopIds: pair.shopIds }) }),
  });
  if (res.status !== 204 && res.status !== 200) throw new Error(`import ${upstream}/${merchant}: ${res.status} ${await res.text()}`);
}

test('lazada, tiktok-shop and taobao-top calls verify upstream; tricky values are encoded on the wire and signed raw; forged values are replaced', async (t) => {
  const up = await startRecordingUpstream();
  const verdicts: Array<{ url: string; ok: boolean }> = [];
  up.respond((req: Recorded) => {
    const ok = req.url.startsWith('/rest/')
      ? lazadaSignatureOk(req, 'lz-secret-0123456789', '/rest')
      : req.url.startsWith('/router/')
        ? taobaoSignatureOk(req, 'tb-secret-0123456789')
        : tiktokSignatureOk(req, 'tt-secret-0123456789');
    verdicts.push({ url: req.url, ok });
    if (req.url.startsWith('/router/')) return { body: ok ? '{"item_seller_get_response":{"item":{}}}' : '{"error_response":{"code":25,"msg":"Invalid signature"}}' };
    return { body: ok ? '{"code":"0","data":{}}' : '{"code":"IncompleteSignature"}' };
  });
  const gw = await startGateway(`
upstreams:
  lz:
    type: lazada
    baseUrl: ${up.url}/rest
    appKey: "100200"
    appSecret: lz-secret-0123456789
  tt:
    type: tiktok-shop
    baseUrl: ${up.url}
    appKey: tt-app
    appSecret: tt-secret-0123456789
  tb:
    type: taobao-top
    baseUrl: ${up.url}/router/rest
    appKey: "12345678"
    appSecret: tb-secret-0123456789
`);
  try {
    await importPair(gw.adminUrl, 'lz', 'seller-1', { accessToken: 'lz-access-token-1', refreshToken: 'lz-refresh-token-1', shopIds: ['5001'] });
    await importPair(gw.adminUrl, 'tt', 'shop-1', { accessToken: 'tt-access-token-1', refreshToken: 'tt-refresh-token-1' });
    await importPair(gw.adminUrl, 'tb', 'nick-1', { accessToken: 'tb-session-token-1', refreshToken: 'tb-refresh-token-1' });
    const q = `order_id=${INT64}&note=${encodeURIComponent(TRICKY)}&sign=forged&access_token=forged&app_key=forged`;

    // Lazada: the merchant comes from seller_id through the imported index.
    let res = await fetch(`${gw.proxyUrl}/lz/order/get?${q}&seller_id=5001`);
    t.is(res.status, 200, await res.clone().text());
    let got = new URL(up.requests.at(-1)!.url, 'http://x').searchParams;
    t.is(got.get('note'), TRICKY);
    t.is(got.get('order_id'), INT64);
    t.is(got.get('app_key'), '100200');
    t.is(got.get('access_token'), 'lz-access-token-1');
    t.is(got.getAll('sign').length, 1);
    t.not(got.get('sign'), 'forged');
    t.true(up.requests.at(-1)!.url.includes('note=a%26b%3Dc%20d%20%E4%BD%A0%E5%A5%BD%2B%25'));

    // TikTok: JSON body passes byte for byte (int64 digits kept) and is signed; token in its header, forged query token dropped.
    const body = `{"order_id":${INT64},"note":${JSON.stringify(TRICKY)}}`;
    res = await fetch(`${gw.proxyUrl}/tt/order/202309/orders/search?${q}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-countersign-merchant': 'shop-1', 'x-tts-access-token': 'forged' },
      body,
    });
    t.is(res.status, 200, await res.clone().text());
    const ttReq = up.requests.at(-1)!;
    got = new URL(ttReq.url, 'http://x').searchParams;
    t.is(ttReq.body, body);
    t.is(ttReq.headers['x-tts-access-token'], 'tt-access-token-1');
    t.is(got.get('access_token'), null);
    t.is(got.get('app_key'), 'tt-app');
    t.is(got.get('note'), TRICKY);

    // Taobao: session is the merchant token; a form body's fields are signed too.
    res = await fetch(`${gw.proxyUrl}/tb/?method=taobao.item.seller.get&session=forged&${q}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-countersign-merchant': 'nick-1' },
      body: `num_iid=${INT64}&title=${encodeURIComponent(TRICKY)}&sign=forged`,
    });
    t.is(res.status, 200, await res.clone().text());
    const tbReq = up.requests.at(-1)!;
    got = new URL(tbReq.url, 'http://x').searchParams;
    t.is(got.get('session'), 'tb-session-token-1');
    t.is(got.get('app_key'), '12345678');
    t.is(new URLSearchParams(tbReq.body).get('title'), TRICKY);
    t.is(new URLSearchParams(tbReq.body).get('num_iid'), INT64);
    t.is(new URLSearchParams(tbReq.body).get('sign'), null);

    t.deepEqual(verdicts.map((v) => v.ok), [true, true, true]);
    t.is(await gw.metric('countersign_requests_total', { upstream: 'lz', class: 'success' }), 1);
    t.is(await gw.metric('countersign_requests_total', { upstream: 'tb', class: 'success' }), 1);
  } finally {
    await gw.close();
    await up.close();
  }
});

/** A platform that exists only in this test. */
const MADE_UP = `
title: Partner X
app: [id, secret]
set:
  json:
    app_id: {app: id}
    ts: {time: ms}
  headers:
    x-px-token: {token: access}
sign:
  string:
    - method
    - {text: "\\n"}
    - path
    - {text: "\\n"}
    - params: {from: [json], join: "k=v&"}
  algorithm: hmac-sha1
  encoding: base64
  put: {header: X-PX-Signature}
tokens:
  model: merchant
  refreshBefore: 1h
  refreshToken: single-use
  request:
    method: POST
    path: /oauth/refresh
    in: json
    params:
      app_id: {app: id}
      refresh_token: {token: refresh}
    signed: true
  answer:
    code: status
    success: [ok]
    accessToken: result.token
    refreshToken: result.refresh
    expires: {field: result.expires_at_ms, unit: ms, is: absolute}
merchant:
  index: {json: seller_id}
answers:
  code: status
  success: [ok]
  classes:
    - {class: business_error, from: 4000, to: 4999}
    - {class: auth_error, codes: [token_bad]}
  tokenRejected: [token_bad]
`;

/** The made-up platform's verifier, from its "docs" above. */
function partnerXOk(req: Recorded, secret: string): boolean {
  const fields = JSON.parse(req.body) as Record<string, unknown>;
  const raw = req.body;
  // Values by their exact text: re-read numbers from the raw body so int64 digits are kept.
  const pairs = Object.keys(fields)
    .sort()
    .map((k) => {
      const m = new RegExp(`"${k}":(-?\\d+)(?=[,}])`).exec(raw);
      return `${k}=${m ? m[1] : typeof fields[k] === 'string' ? fields[k] : JSON.stringify(fields[k])}`;
    })
    .join('&');
  const path = new URL(req.url, 'http://x').pathname.replace(/^\/px/, '');
  const expected = createHmac('sha1', secret).update(`${req.method}\n${path}\n${pairs}`).digest('base64');
  return req.headers['x-px-signature'] === expected;
}

test('a made-up platform: HMAC-SHA1 base64 in a header, merchant by a body field, absolute-ms expiry, rotating refresh, token rejection with one retry, metrics by class', async (t) => {
  const up = await startRecordingUpstream();
  const secret = 'px-secret-abcdefghijkl';
  let current = { access: 'px-access-1', refresh: 'px-refresh-1', n: 1 };
  const spent = new Set<string>();
  let rejectNext = false;
  const bad: string[] = [];
  up.respond((req) => {
    if (!partnerXOk(req, secret)) {
      bad.push(req.url);
      return { status: 401, body: '{"status":"sig_bad"}' };
    }
    const body = JSON.parse(req.body) as Record<string, string>;
    if (req.url === '/px/oauth/refresh') {
      if (body.refresh_token !== current.refresh || spent.has(body.refresh_token)) return { body: '{"status":"refresh_bad"}' };
      spent.add(body.refresh_token);
      current = { access: `px-access-${current.n + 1}`, refresh: `px-refresh-${current.n + 1}`, n: current.n + 1 };
      return { body: JSON.stringify({ status: 'ok', result: { token: current.access, refresh: current.refresh, expires_at_ms: Date.now() + 7 * 86_400_000 } }) };
    }
    if (req.headers['x-px-token'] !== current.access || rejectNext) {
      rejectNext = false;
      return { body: '{"status":"token_bad"}' };
    }
    return { body: `{"status":"ok","echo":${req.body}}` };
  });
  const gw = await startGateway(`
upstreams:
  px:
    type: signed
    baseUrl: ${up.url}/px
    app: {id: "88", secret: ${secret}}
    recipe:
${MADE_UP.split('\n').map((l) => '      ' + l).join('\n')}
`);
  try {
    await importPair(gw.adminUrl, 'px', 'm1', { accessToken: 'px-access-1', refreshToken: 'px-refresh-1', shopIds: ['12345678901234567890'] });
    // Refresh through the admin API: the rotated pair is stored and used.
    const r = await fetch(`${gw.adminUrl}/admin/upstreams/px/merchants/m1/refresh`, { method: 'POST' });
    t.is(r.status, 200, await r.clone().text());
    t.is(current.access, 'px-access-2');
    t.is((await gw.app.store.get('px', 'm1'))?.refreshToken, 'px-refresh-2');
    const exp = (await gw.app.store.get('px', 'm1'))!.expiresAt;
    t.true(Math.abs(exp - (Date.now() + 7 * 86_400_000)) < 60_000, 'absolute ms expiry read as such');

    // The upstream refuses the token once: renew (rotating the refresh token), re-sign, retry.
    rejectNext = true;
    const call = await fetch(`${gw.proxyUrl}/px/orders/list`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"seller_id":12345678901234567890,"page":1,"app_id":"forged"}`,
    });
    const text = await call.text();
    t.is(call.status, 200, text);
    t.true(text.includes('"seller_id":12345678901234567890'), 'int64 digits kept');
    t.true(text.includes('"app_id":"88"'), 'the caller app_id is replaced');
    t.is(current.access, 'px-access-3');
    t.deepEqual(bad, []);
    t.is(await gw.metric('countersign_retries_total', { upstream: 'px', reason: 'token' }), 1);
    t.is(await gw.metric('countersign_requests_total', { upstream: 'px', class: 'success' }), 1);
    t.is(await gw.metric('countersign_token_refreshes_total', { upstream: 'px', trigger: 'rejected', result: 'success' }), 1);
    t.is(await gw.metric('countersign_upstream_codes_total', { upstream: 'px', code: 'token_bad' }), 1);

    // A business error by range is counted in its class.
    up.respond(() => ({ body: '{"status":4040}' }));
    await fetch(`${gw.proxyUrl}/px/orders/list`, { method: 'POST', headers: { 'x-countersign-merchant': 'm1' }, body: '{}' });
    t.is(await gw.metric('countersign_requests_total', { upstream: 'px', class: 'business_error' }), 1);
  } finally {
    await gw.close();
    await up.close();
  }
});

test('an app-token recipe: the token is obtained from the app credential, and a timestamp rejection corrects the clock from Date and retries once', async (t) => {
  const up = await startRecordingUpstream();
  const ahead = 3_600_000;
  let tokenCalls = 0;
  let rejected = 0;
  up.respond((req) => {
    const url = new URL(req.url, 'http://x');
    const upstreamNow = Date.now() + ahead;
    const date = new Date(upstreamNow).toUTCString();
    if (url.pathname === '/app/token') {
      tokenCalls++;
      if (url.searchParams.get('client') !== 'app-7' || url.searchParams.get('pass') !== 'app-pass-0123456789') return { body: '{"rc":"denied"}' };
      return { headers: { date }, body: JSON.stringify({ rc: '0', token: `app-token-${tokenCalls}`, ttl: 7200 }) };
    }
    const ts = Number(url.searchParams.get('t'));
    if (Math.abs(ts - upstreamNow / 1000) > 5) {
      rejected++;
      return { headers: { date }, body: '{"rc":"bad_time"}' };
    }
    return { headers: { date }, body: `{"rc":"0","auth":${JSON.stringify(req.headers['authorization-token'] ?? null)}}` };
  });
  const gw = await startGateway(`
upstreams:
  ap:
    type: signed
    baseUrl: ${up.url}/app
    app: {client: app-7, pass: app-pass-0123456789}
    recipe:
      app: [client, pass]
      secrets: [pass]
      set:
        query: {client: {app: client}, t: {time: s}}
        headers: {authorization-token: {token: access}}
      sign: {string: [secret, path, {params: {}}], algorithm: sha256, secret: pass, encoding: hex, put: {query: sig}}
      tokens:
        model: app
        refreshBefore: 5m
        request: {method: GET, path: /token, params: {client: {app: client}, pass: {app: pass}}}
        answer: {code: rc, success: ["0"], accessToken: token, expires: {field: ttl, unit: s, is: relative}}
      answers: {code: rc, success: ["0"], timestampRejected: [bad_time]}
`);
  try {
    const res = await fetch(`${gw.proxyUrl}/ap/items?q=1`);
    const text = await res.text();
    t.is(res.status, 200, text);
    t.is(JSON.parse(text).auth, 'app-token-1');
    t.is(tokenCalls, 1);
    t.is(rejected, 1, 'one rejection, then the corrected clock is used');
    t.is(await gw.metric('countersign_retries_total', { upstream: 'ap', reason: 'clock_skew' }), 1);
    t.is(await gw.metric('countersign_requests_total', { upstream: 'ap', class: 'success' }), 1);
    const offset = await gw.metric('countersign_clock_offset_seconds', { upstream: 'ap' });
    t.true(Math.abs(offset - ahead / 1000) < 5, `offset ${offset}`);
    // The token endpoint is the proxy's own.
    t.is((await fetch(`${gw.proxyUrl}/ap/token`)).status, 403);
  } finally {
    await gw.close();
    await up.close();
  }
});
