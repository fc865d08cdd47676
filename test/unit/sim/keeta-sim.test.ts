import test, { type ExecutionContext } from 'ava';
import { KEETA_SIM_CODES, startKeetaSim, type KeetaSim, type KeetaSimOptions } from '../../../src/sim/index.js';
import { APP_ID, APP_SECRET, type CallOptions, control, keetaCall } from './keeta-client.js';

const BIG_SHOP = '9007199254740993'; // 2^53 + 1: not representable as a JS number
const SHOP_A = '466663';
const SHOP_B = '777';

async function startSim(t: ExecutionContext, extra: Partial<KeetaSimOptions> = {}): Promise<KeetaSim> {
  const sim = await startKeetaSim({ appId: APP_ID, appSecret: APP_SECRET, ...extra });
  t.teardown(() => sim.close());
  return sim;
}

function rootOf(sim: KeetaSim): string {
  return sim.baseUrl.slice(0, -'/api/open'.length);
}

/** Simulated now in Unix seconds (what a correct client stamps). */
function nowSec(sim: KeetaSim): number {
  return Math.floor(sim.control.clock().now / 1000);
}

async function call(sim: KeetaSim, path: string, opts: CallOptions = {}) {
  return keetaCall(sim.baseUrl, path, { timestamp: nowSec(sim), ...opts });
}

function setup(sim: KeetaSim) {
  const a = sim.control.addMerchant({ merchantId: 'brand-a', shopIds: [SHOP_A, BIG_SHOP] });
  const b = sim.control.addMerchant({ merchantId: 'brand-b', shopIds: [SHOP_B] });
  return { a, b };
}

// ---------------------------------------------------------------------------------------
// Every documented fault, with its documented code.

interface FaultCase {
  name: string;
  path: string;
  code: number;
  prepare?: (sim: KeetaSim) => void;
  opts: (ctx: { sim: KeetaSim; token: string; refresh: string }) => CallOptions;
}

const ORDER = `{"orderViewId":756823555555859,"shopId":${SHOP_A}}`;
const C = KEETA_SIM_CODES;

const FAULTS: FaultCase[] = [
  { name: 'missing sig', path: '/order/get', code: C.SIG_INVALID, opts: ({ token }) => ({ body: ORDER, accessToken: token, sig: null }) },
  { name: 'sig is not a string', path: '/order/get', code: C.SIG_INVALID, opts: ({ token }) => ({ body: ORDER, accessToken: token, tamper: (s) => s.replace(/"sig":"[0-9a-f]+"/, '"sig":12') }) },
  { name: 'signed with the wrong secret', path: '/order/get', code: C.SIG_INVALID, opts: ({ token }) => ({ body: ORDER, accessToken: token, secret: 'wrong' }) },
  { name: 'sig in upper-case hex', path: '/order/get', code: C.SIG_INVALID, opts: ({ token }) => ({ body: ORDER, accessToken: token, tamper: (s) => s.replace(/"sig":"([0-9a-f]+)"/, (_m, h: string) => `"sig":"${h.toUpperCase()}"`) }) },
  { name: 'signed for another URL (production host)', path: '/order/get', code: C.SIG_INVALID, opts: ({ token }) => ({ body: ORDER, accessToken: token, signUrl: 'https://open.mykeeta.com/api/open/order/get' }) },
  { name: 'body changed after signing', path: '/order/get', code: C.SIG_INVALID, opts: ({ token }) => ({ body: ORDER, accessToken: token, tamper: (s) => s.replace('756823555555859', '756823555555858') }) },
  { name: 'nested key order changed after signing', path: '/product/shopcategory/update', code: C.SIG_INVALID, opts: ({ token }) => ({ body: `{"shopId":${SHOP_A},"shopCategory":{"id":1,"name":"n"}}`, accessToken: token, tamper: (s) => s.replace('{"id":1,"name":"n"}', '{"name":"n","id":1}') }) },
  { name: 'number reformatted after signing (12.50 -> 12.5)', path: '/order/get', code: C.SIG_INVALID, opts: ({ token }) => ({ body: `{"orderViewId":1,"shopId":${SHOP_A},"tip":12.50}`, accessToken: token, tamper: (s) => s.replace('12.50', '12.5') }) },
  { name: 'missing appId', path: '/order/get', code: C.APP_ID_INVALID, opts: ({ token }) => ({ body: ORDER, accessToken: token, appId: null }) },
  { name: 'wrong appId', path: '/order/get', code: C.APP_ID_INVALID, opts: ({ token }) => ({ body: ORDER, accessToken: token, appId: '123' }) },
  { name: 'missing timestamp', path: '/order/get', code: C.TIMESTAMP_INVALID, opts: ({ token }) => ({ body: ORDER, accessToken: token, timestamp: null }) },
  { name: 'timestamp 301 s old', path: '/order/get', code: C.TIMESTAMP_INVALID, opts: ({ sim, token }) => ({ body: ORDER, accessToken: token, timestamp: nowSec(sim) - 301 }) },
  { name: 'timestamp 310 s ahead', path: '/order/get', code: C.TIMESTAMP_INVALID, opts: ({ sim, token }) => ({ body: ORDER, accessToken: token, timestamp: nowSec(sim) + 310 }) },
  { name: 'timestamp in milliseconds', path: '/order/get', code: C.TIMESTAMP_INVALID, opts: ({ sim, token }) => ({ body: ORDER, accessToken: token, timestamp: sim.control.clock().now }) },
  { name: 'timestamp not an integer', path: '/order/get', code: C.TIMESTAMP_INVALID, opts: ({ sim, token }) => ({ body: ORDER, accessToken: token, timestamp: `${nowSec(sim)}.5` }) },
  { name: 'merchant path without accessToken', path: '/order/get', code: C.ACCESS_TOKEN_MISSING, opts: () => ({ body: ORDER }) },
  { name: 'empty accessToken', path: '/order/get', code: C.ACCESS_TOKEN_MISSING, opts: () => ({ body: ORDER, accessToken: '' }) },
  { name: 'unknown accessToken', path: '/order/get', code: C.ACCESS_TOKEN_INVALID, opts: () => ({ body: ORDER, accessToken: 'f'.repeat(32) }) },
  { name: 'expired accessToken', path: '/order/get', code: C.ACCESS_TOKEN_INVALID, prepare: (sim) => sim.control.expireAccessToken('brand-a'), opts: ({ token }) => ({ body: ORDER, accessToken: token }) },
  { name: 'revoked accessToken', path: '/order/get', code: C.ACCESS_TOKEN_INVALID, prepare: (sim) => sim.control.revokeTokens('brand-a'), opts: ({ token }) => ({ body: ORDER, accessToken: token }) },
  { name: 'shop of another merchant', path: '/order/get', code: C.SHOP_NOT_AUTHORISED, opts: ({ token }) => ({ body: `{"orderViewId":1,"shopId":${SHOP_B}}`, accessToken: token }) },
  { name: 'unknown shop', path: '/order/confirm', code: C.SHOP_NOT_AUTHORISED, opts: ({ token }) => ({ body: '{"orderViewId":1,"shopId":123456}', accessToken: token }) },
  { name: 'missing orderViewId', path: '/order/get', code: C.PARAM_INVALID, opts: ({ token }) => ({ body: `{"shopId":${SHOP_A}}`, accessToken: token }) },
  { name: 'missing shopId', path: '/order/get', code: C.PARAM_INVALID, opts: ({ token }) => ({ body: '{"orderViewId":1}', accessToken: token }) },
  { name: 'shopId not an integer', path: '/order/get', code: C.PARAM_INVALID, opts: ({ token }) => ({ body: '{"orderViewId":1,"shopId":1.5}', accessToken: token }) },
  { name: 'shopCategory not an object', path: '/product/shopcategory/update', code: C.PARAM_INVALID, opts: ({ token }) => ({ body: `{"shopId":${SHOP_A},"shopCategory":"x"}`, accessToken: token }) },
  { name: 'batch over 200 items', path: '/product/spustatus/batchupdatebycode', code: C.PARAM_INVALID, opts: ({ token }) => ({ body: `{"shopId":${SHOP_A},"sellStatus":1,"spuCodes":${JSON.stringify(Array.from({ length: 201 }, (_, i) => `S${i}`))}}`, accessToken: token }) },
  { name: 'duplicate key at top level', path: '/order/get', code: C.PARAM_INVALID, opts: ({ token }) => ({ body: ORDER, accessToken: token, tamper: (s) => s.replace('{', `{"shopId":${SHOP_A},`) }) },
  { name: 'duplicate key nested', path: '/product/shopcategory/update', code: C.PARAM_INVALID, opts: ({ token }) => ({ body: `{"shopId":${SHOP_A},"shopCategory":{"name":"a"}}`, accessToken: token, tamper: (s) => s.replace('{"name":"a"}', '{"name":"a","name":"b"}') }) },
  { name: 'GET instead of POST', path: '/order/get', code: C.REQUEST_MALFORMED, opts: () => ({ method: 'GET' }) },
  { name: 'Content-Type text/plain', path: '/order/get', code: C.REQUEST_MALFORMED, opts: ({ token }) => ({ body: ORDER, accessToken: token, contentType: 'text/plain' }) },
  { name: 'no Content-Type', path: '/order/get', code: C.REQUEST_MALFORMED, opts: ({ token }) => ({ body: ORDER, accessToken: token, contentType: null }) },
  { name: 'charset other than UTF-8', path: '/order/get', code: C.REQUEST_MALFORMED, opts: ({ token }) => ({ body: ORDER, accessToken: token, contentType: 'application/json; charset=iso-8859-1' }) },
  { name: 'malformed JSON', path: '/order/get', code: C.REQUEST_MALFORMED, opts: () => ({ rawBody: '{"appId":3340612437,' }) },
  { name: 'JSON array body', path: '/order/get', code: C.REQUEST_MALFORMED, opts: () => ({ rawBody: '[1,2]' }) },
  { name: 'unknown endpoint', path: '/order/teleport', code: C.PATH_NOT_FOUND, opts: ({ token }) => ({ body: ORDER, accessToken: token }) },
  { name: 'unknown refresh token', path: '/base/oauth/token', code: C.REFRESH_TOKEN_INVALID, opts: () => ({ body: '{"grantType":"refresh_token","refreshToken":"nope"}' }) },
  { name: 'revoked refresh token', path: '/base/oauth/token', code: C.REFRESH_TOKEN_INVALID, prepare: (sim) => sim.control.revokeTokens('brand-a'), opts: ({ refresh }) => ({ body: `{"grantType":"refresh_token","refreshToken":"${refresh}"}` }) },
  { name: 'unknown authorization code', path: '/base/oauth/token', code: C.AUTH_CODE_INVALID, opts: () => ({ body: '{"grantType":"authorization_code","code":"nope"}' }) },
  { name: 'unsupported grantType', path: '/base/oauth/token', code: C.PARAM_INVALID, opts: () => ({ body: '{"grantType":"password"}' }) },
  { name: 'token call without grantType', path: '/base/oauth/token', code: C.PARAM_INVALID, opts: () => ({ body: '{}' }) },
  { name: 'callback url not http(s)', path: '/base/callback/url/set', code: C.PARAM_INVALID, opts: () => ({ body: '{"eventId":1001,"url":"ftp://x","isTest":1}' }) },
];

for (const f of FAULTS) {
  test(`keeta fault: ${f.name} → ${f.code}`, async (t) => {
    const sim = await startSim(t);
    const { a } = setup(sim);
    f.prepare?.(sim);
    const res = await call(sim, f.path, f.opts({ sim, token: a.accessToken, refresh: a.refreshToken }));
    t.is(res.status, 200);
    t.is(res.json['code'], f.code, res.text);
    t.is(typeof res.json['message'], 'string');
    t.true((res.json['message'] as string).length > 0);
    t.is(res.json['data'], null);
    const log = sim.control.counters().requests;
    t.is(log.length, 1);
    t.is(log[0]?.code, f.code);
  });
}

test('keeta fault codes are unique and inside the documented bands', (t) => {
  const codes = Object.values(KEETA_SIM_CODES).filter((c) => c !== 0);
  t.is(new Set(codes).size, codes.length);
  for (const c of codes) {
    t.true((c >= 115000100 && c <= 115000399) || (c >= 315000100 && c <= 315000199), String(c));
  }
  for (const c of [C.SIG_INVALID, C.APP_ID_INVALID, C.TIMESTAMP_INVALID, C.ACCESS_TOKEN_MISSING, C.ACCESS_TOKEN_INVALID, C.REFRESH_TOKEN_INVALID, C.REFRESH_TOKEN_REUSED, C.REFRESH_TOO_SOON, C.AUTH_CODE_INVALID, C.SHOP_NOT_AUTHORISED]) {
    t.true(c >= 115000100 && c <= 115000199);
  }
  for (const c of [C.REQUEST_MALFORMED, C.PARAM_INVALID, C.PATH_NOT_FOUND, C.ORDER_STATUS_CONFLICT]) t.true(c >= 115000200 && c <= 115000399);
  t.true(C.SERVER_ERROR >= 315000100 && C.SERVER_ERROR <= 315000199);
});

// ---------------------------------------------------------------------------------------
// Happy paths and exactness.

test('correctly signed calls succeed; timestamps at the edge of the window and as strings are accepted', async (t) => {
  const sim = await startSim(t);
  const { a } = setup(sim);
  // Each stamp is taken just before its request, with 20 s left for a slow machine.
  for (const stamp of [() => nowSec(sim), () => nowSec(sim) - 280, () => nowSec(sim) + 280, () => String(nowSec(sim))]) {
    const timestamp = stamp();
    const res = await call(sim, '/order/get', { body: ORDER, accessToken: a.accessToken, timestamp });
    t.is(res.json['code'], 0, `${timestamp}: ${res.text}`);
  }
  // Pretty-printed bodies verify too: the simulator rebuilds the compact form itself.
  const res = await call(sim, '/order/get', { body: ORDER, accessToken: a.accessToken, tamper: (s) => JSON.stringify(JSON.parse(s), null, 2) });
  t.is(res.json['code'], 0, res.text);
});

test('timestamp window is configurable', async (t) => {
  const sim = await startSim(t, { timestampWindowSec: 30 });
  const { a } = setup(sim);
  t.is((await call(sim, '/order/get', { body: ORDER, accessToken: a.accessToken, timestamp: nowSec(sim) - 5 })).json['code'], 0);
  t.is((await call(sim, '/order/get', { body: ORDER, accessToken: a.accessToken, timestamp: nowSec(sim) - 40 })).json['code'], C.TIMESTAMP_INVALID);
});

test('int64 ids above 2^53 round-trip exactly (order/get, resource/get)', async (t) => {
  const sim = await startSim(t);
  const { a } = setup(sim);
  const orderViewId = '1234567890123456789';
  const res = await call(sim, '/order/get', { body: `{"orderViewId":${orderViewId},"shopId":${BIG_SHOP}}`, accessToken: a.accessToken });
  t.is(res.json['code'], 0, res.text);
  t.true(res.text.includes(`"orderViewId":${orderViewId}`), res.text);
  t.true(res.text.includes(`"shopId":${BIG_SHOP}`), res.text);
  // A shop id one below (what a JS number would round 2^53+1 to) is not this merchant's shop.
  const rounded = await call(sim, '/order/get', { body: `{"orderViewId":1,"shopId":9007199254740992}`, accessToken: a.accessToken });
  t.is(rounded.json['code'], C.SHOP_NOT_AUTHORISED);

  const shops = await call(sim, '/base/authorized/resource/get', { body: '{"pageNum":1,"pageSize":200}', accessToken: a.accessToken });
  t.is(shops.json['code'], 0, shops.text);
  t.true(shops.text.includes(`"id":${BIG_SHOP}`), shops.text);
  t.true(shops.text.includes(`"id":${SHOP_A}`));
  const data = shops.json['data'] as Record<string, any>;
  t.is(data['authorizedShops'].length, 2);
  t.deepEqual(Object.keys(data['authorizedShops'][0]), ['id', 'name', 'address', 'longitute', 'latitude']);
  t.is(typeof data['brandId'], 'number');
  t.is(typeof data['userId'], 'string');
  t.like(data['page'], { pageNum: 1, pageSize: 200, totalPage: 1 });
  const page2 = await call(sim, '/base/authorized/resource/get', { body: '{"pageNum":2,"pageSize":1}', accessToken: a.accessToken });
  t.true(page2.text.includes(`"id":${BIG_SHOP}`));
  t.false(page2.text.includes(`"id":${SHOP_A}`));
});

test('order lifecycle: confirm, get shows status 30, cancel, confirming a cancelled order conflicts', async (t) => {
  const sim = await startSim(t);
  const { a } = setup(sim);
  const body = `{"orderViewId":42,"shopId":${SHOP_A}}`;
  t.is((await call(sim, '/order/confirm', { body, accessToken: a.accessToken })).json['code'], 0);
  t.like((await call(sim, '/order/get', { body, accessToken: a.accessToken })).json, { code: 0, data: { status: 30 } });
  t.is((await call(sim, '/order/cancel', { body, accessToken: a.accessToken })).json['code'], 0);
  t.is((await call(sim, '/order/confirm', { body, accessToken: a.accessToken })).json['code'], C.ORDER_STATUS_CONFLICT);
});

test('shopcategory/update with non-ASCII nested JSON and an empty value succeeds', async (t) => {
  const sim = await startSim(t);
  const { a } = setup(sim);
  const res = await call(sim, '/product/shopcategory/update', {
    body: `{"shopId":${SHOP_A},"remark":"","shopCategory":{"id":1,"name":"開心樂園餐","type":0,"description":null}}`,
    accessToken: a.accessToken,
  });
  t.like(res.json, { code: 0, message: 'Success', data: null });
});

test('partial failure: batch answers 0 with errorList for FAIL* codes, empty errorList otherwise', async (t) => {
  const sim = await startSim(t);
  const { a } = setup(sim);
  const partial = await call(sim, '/product/spustatus/batchupdatebycode', {
    body: `{"shopId":${SHOP_A},"sellStatus":0,"spuCodes":["A1","FAIL-2","B3","FAIL-4"]}`,
    accessToken: a.accessToken,
  });
  t.is(partial.json['code'], 0, partial.text);
  t.is(partial.json['data'], 2);
  const errors = partial.json['errorList'] as Array<Record<string, unknown>>;
  t.deepEqual(errors.map((e) => e['spuCode']), ['FAIL-2', 'FAIL-4']);
  t.is(errors[0]?.['code'], C.BATCH_ITEM_FAILED);
  const clean = await call(sim, '/product/spustatus/batchupdatebycode', {
    body: `{"shopId":${SHOP_A},"sellStatus":1,"spuCodes":["A1"]}`,
    accessToken: a.accessToken,
  });
  t.like(clean.json, { code: 0, data: 1 });
  t.deepEqual(clean.json['errorList'], []);
});

test('app-level paths work without accessToken: callback/url/set', async (t) => {
  const sim = await startSim(t);
  const res = await call(sim, '/base/callback/url/set', { body: '{"eventId":1001,"url":"https://example.test/hook","isTest":1}' });
  t.like(res.json, { code: 0, data: null });
});

test('batchDecrypt answers one plain text per cipher text', async (t) => {
  const sim = await startSim(t);
  const { a } = setup(sim);
  const res = await call(sim, '/base/batchDecrypt', { body: '{"cipherInfos":[{"cipherText":"ENC_1"},{"cipherText":"ENC_2"}]}', accessToken: a.accessToken });
  t.like(res.json, { code: 0 });
  t.deepEqual((res.json['data'] as Array<Record<string, string>>).map((d) => d['cipherText']), ['ENC_1', 'ENC_2']);
});

// ---------------------------------------------------------------------------------------
// Tokens.

function refreshBody(refreshToken: string): string {
  return JSON.stringify({ grantType: 'refresh_token', refreshToken });
}

test('token response: flat by default, wrapped when switched (in-process and over HTTP)', async (t) => {
  const sim = await startSim(t);
  const { a } = setup(sim);
  const sentAt = Date.now();
  const flat = await call(sim, '/base/oauth/token', { body: refreshBody(a.refreshToken) });
  const answeredAt = Date.now();
  t.is(flat.status, 200);
  t.false('code' in flat.json);
  t.deepEqual(Object.keys(flat.json).sort(), ['accessToken', 'expiresIn', 'issuedAtTime', 'refreshToken', 'scope', 'tokenType']);
  t.like(flat.json, { tokenType: 'bearer', scope: 'all', expiresIn: 7_776_000 });
  const issuedAt = flat.json['issuedAtTime'] as number;
  t.true(issuedAt >= sentAt && issuedAt <= answeredAt, 'issued while the request was under way (ms)');
  t.regex(flat.json['accessToken'] as string, /^[0-9a-f]{32}$/);
  t.not(flat.json['accessToken'], a.accessToken);
  t.not(flat.json['refreshToken'], a.refreshToken);

  sim.control.setTokenResponseShape('wrapped');
  sim.control.setClockOffset(61_000);
  const wrapped = await call(sim, '/base/oauth/token', { body: refreshBody(flat.json['refreshToken'] as string) });
  t.like(wrapped.json, { code: 0, message: 'Success', data: { tokenType: 'bearer', scope: 'all', expiresIn: 7_776_000 } });
  const data = wrapped.json['data'] as Record<string, unknown>;
  t.is<unknown, unknown>(sim.control.merchant('brand-a')?.accessToken, data['accessToken']);

  t.is((await control(rootOf(sim), 'POST', '/token-response-shape', { shape: 'flat' })).status, 200);
  t.is((await control(rootOf(sim), 'POST', '/token-response-shape', { shape: 'round' })).status, 400);
  sim.control.setClockOffset(122_000);
  const flatAgain = await call(sim, '/base/oauth/token', { body: refreshBody(data['refreshToken'] as string) });
  t.is(typeof flatAgain.json['accessToken'], 'string');
  t.throws(() => sim.control.setTokenResponseShape('other' as 'flat'));
});

test('refresh token used twice: second is rejected as REUSED and counted', async (t) => {
  const sim = await startSim(t);
  const { a } = setup(sim);
  const first = await call(sim, '/base/oauth/token', { body: refreshBody(a.refreshToken) });
  t.is(typeof first.json['accessToken'], 'string', first.text);
  sim.control.setClockOffset(120_000); // past the spacing, so only reuse can reject it
  const second = await call(sim, '/base/oauth/token', { body: refreshBody(a.refreshToken) });
  t.is(second.json['code'], C.REFRESH_TOKEN_REUSED, second.text);
  const c = sim.control.counters();
  t.like(c, { tokenCalls: 2, refreshCalls: 2, refreshReuse: 1, rejectedRefreshes: 1, authCodeCalls: 0 });
  // The pair issued by the first refresh is still the merchant's.
  t.is<unknown, unknown>(sim.control.merchant('brand-a')?.accessToken, first.json['accessToken']);
});

test('two refreshes of one merchant within 60 s: second rejected (token not consumed), allowed after 60 s', async (t) => {
  const sim = await startSim(t);
  const { a } = setup(sim);
  const first = await call(sim, '/base/oauth/token', { body: refreshBody(a.refreshToken) });
  const newRefresh = first.json['refreshToken'] as string;
  sim.control.setClockOffset(30_000);
  const tooSoon = await call(sim, '/base/oauth/token', { body: refreshBody(newRefresh) });
  t.is(tooSoon.json['code'], C.REFRESH_TOO_SOON, tooSoon.text);
  t.like(sim.control.counters(), { refreshCalls: 2, rejectedRefreshes: 1, refreshReuse: 0 });
  sim.control.setClockOffset(61_000);
  const later = await call(sim, '/base/oauth/token', { body: refreshBody(newRefresh) });
  t.is(typeof later.json['accessToken'], 'string', later.text);
  // Another merchant is not affected by brand-a's spacing.
  const b = sim.control.merchant('brand-b');
  const other = await call(sim, '/base/oauth/token', { body: refreshBody(b?.refreshToken ?? '') });
  t.is(typeof other.json['accessToken'], 'string', other.text);
});

test('refresh spacing is configurable', async (t) => {
  const sim = await startSim(t, { refreshSpacingMs: 0 });
  const { a } = setup(sim);
  const first = await call(sim, '/base/oauth/token', { body: refreshBody(a.refreshToken) });
  const second = await call(sim, '/base/oauth/token', { body: refreshBody(first.json['refreshToken'] as string) });
  t.is(typeof second.json['accessToken'], 'string', second.text);
});

test('old access token stays valid within the grace period after a refresh, invalid after', async (t) => {
  const sim = await startSim(t);
  const { a } = setup(sim);
  const refreshed = await call(sim, '/base/oauth/token', { body: refreshBody(a.refreshToken) });
  const newToken = refreshed.json['accessToken'] as string;
  const get = (token: string) => call(sim, '/order/get', { body: ORDER, accessToken: token });
  t.is((await get(a.accessToken)).json['code'], 0);
  t.is((await get(newToken)).json['code'], 0);
  t.deepEqual([...(sim.control.merchant('brand-a')?.validAccessTokens ?? [])].sort(), [a.accessToken, newToken].sort());
  sim.control.setClockOffset(59 * 60_000);
  t.is((await get(a.accessToken)).json['code'], 0);
  sim.control.setClockOffset(60 * 60_000 + 1000);
  t.is((await get(a.accessToken)).json['code'], C.ACCESS_TOKEN_INVALID);
  t.is((await get(newToken)).json['code'], 0);
});

test('grace period and token lifetime are configurable; access tokens expire at issuedAt + expiresIn', async (t) => {
  const sim = await startSim(t, { oldTokenGraceMs: 1000, tokenLifetimeSec: 3600 });
  const { a } = setup(sim);
  t.is(a.expiresIn, 3600);
  const refreshed = await call(sim, '/base/oauth/token', { body: refreshBody(a.refreshToken) });
  t.is(refreshed.json['expiresIn'], 3600);
  sim.control.setClockOffset(2000);
  t.is((await call(sim, '/order/get', { body: ORDER, accessToken: a.accessToken })).json['code'], C.ACCESS_TOKEN_INVALID);
  sim.control.setClockOffset(3600_000 + 5000);
  t.is((await call(sim, '/order/get', { body: ORDER, accessToken: refreshed.json['accessToken'] as string })).json['code'], C.ACCESS_TOKEN_INVALID);
  // Refresh tokens share the access token's lifetime.
  t.is((await call(sim, '/base/oauth/token', { body: refreshBody(refreshed.json['refreshToken'] as string) })).json['code'], C.REFRESH_TOKEN_INVALID);
});

test('addMerchant with issuedAtMs/expiresInSec in the past seeds an already expired pair', async (t) => {
  const sim = await startSim(t);
  const pair = sim.control.addMerchant({ merchantId: 'old', shopIds: ['5'], issuedAtMs: Date.now() - 10_000_000, expiresInSec: 100 });
  t.is(pair.expiresIn, 100);
  t.is((await call(sim, '/order/get', { body: '{"orderViewId":1,"shopId":5}', accessToken: pair.accessToken })).json['code'], C.ACCESS_TOKEN_INVALID);
  t.is((await call(sim, '/base/oauth/token', { body: refreshBody(pair.refreshToken) })).json['code'], C.REFRESH_TOKEN_INVALID);
  t.throws(() => sim.control.addMerchant({ merchantId: 'x', shopIds: ['5'] }), { message: /already belongs/ });
  t.throws(() => sim.control.addMerchant({ merchantId: 'y', shopIds: ['12.5'] }));
  t.throws(() => sim.control.issueAuthCode('nobody'));
});

test('authorization_code: single use, 10 minute life; exchange issues a new pair', async (t) => {
  const sim = await startSim(t);
  const { a } = setup(sim);
  const code = sim.control.issueAuthCode('brand-a');
  const exchange = (c: string) => call(sim, '/base/oauth/token', { body: JSON.stringify({ grantType: 'authorization_code', code: c }) });
  const ok = await exchange(code);
  t.like(ok.json, { tokenType: 'bearer', scope: 'all' });
  t.is<unknown, unknown>(sim.control.merchant('brand-a')?.accessToken, ok.json['accessToken']);
  t.is((await call(sim, '/order/get', { body: ORDER, accessToken: ok.json['accessToken'] as string })).json['code'], 0);
  // The superseded refresh token is dead.
  t.is((await call(sim, '/base/oauth/token', { body: refreshBody(a.refreshToken) })).json['code'], C.REFRESH_TOKEN_INVALID);
  // Single use.
  t.is((await exchange(code)).json['code'], C.AUTH_CODE_INVALID);

  const code2 = sim.control.issueAuthCode('brand-a');
  sim.control.setClockOffset(9 * 60_000);
  const code3 = sim.control.issueAuthCode('brand-a');
  t.like((await exchange(code2)).json, { tokenType: 'bearer' });
  sim.control.setClockOffset(9 * 60_000 + 10 * 60_000 + 1000);
  t.is((await exchange(code3)).json['code'], C.AUTH_CODE_INVALID);
  t.like(sim.control.counters(), { authCodeCalls: 4, tokenCalls: 5, refreshCalls: 1, rejectedRefreshes: 1 });
});

// ---------------------------------------------------------------------------------------
// Control: clock, latency, failNext, counters, reset — in process and over HTTP.

test('Date header follows the simulated clock', async (t) => {
  const sim = await startSim(t);
  setup(sim);
  // The Date header has whole seconds: it lies within [sent - 1 s, answered] of the simulated clock.
  const dated = async (offsetMs: number) => {
    const sent = Date.now() + offsetMs;
    const res = await call(sim, '/order/get', { body: ORDER });
    const answered = Date.now() + offsetMs;
    const date = Date.parse(res.headers.get('date') ?? '');
    t.true(date >= sent - 1000 && date <= answered, `${new Date(date).toISOString()} not within the request's time`);
  };
  await dated(0);
  sim.control.setClockOffset(-86_400_000);
  await dated(-86_400_000);
  // A request stamped with real time is now a day in the future for the simulator.
  const res = await keetaCall(sim.baseUrl, '/order/get', { body: ORDER, accessToken: 'x' });
  t.is(res.json['code'], C.TIMESTAMP_INVALID);
});

test('failNext: envelope code, raw HTTP status, token endpoint only when included', async (t) => {
  const sim = await startSim(t);
  const { a } = setup(sim);
  sim.control.failNext(2);
  const tokenCall = await call(sim, '/base/oauth/token', { body: refreshBody(a.refreshToken) });
  t.is(typeof tokenCall.json['accessToken'], 'string', 'token endpoint not affected by default');
  const newToken = tokenCall.json['accessToken'] as string;
  t.like((await call(sim, '/order/get', { body: ORDER, accessToken: newToken })).json, { code: C.SERVER_ERROR, data: null });
  t.is((await call(sim, '/order/get', { body: ORDER })).json['code'], C.SERVER_ERROR, 'failure applies before any check');
  t.is((await call(sim, '/order/get', { body: ORDER, accessToken: newToken })).json['code'], 0);

  sim.control.failNext(1, { code: 115000299, message: 'custom' });
  t.like((await call(sim, '/order/get', { body: ORDER, accessToken: newToken })).json, { code: 115000299, message: 'custom' });

  sim.control.failNext(1, { httpStatus: 502, body: 'bad gateway' });
  const raw = await call(sim, '/order/get', { body: ORDER, accessToken: newToken });
  t.is(raw.status, 502);
  t.is(raw.text, 'bad gateway');

  sim.control.failNext(1, { httpStatus: 500, includeTokenEndpoint: true });
  sim.control.setClockOffset(61_000);
  const failedRefresh = await call(sim, '/base/oauth/token', { body: refreshBody(tokenCall.json['refreshToken'] as string) });
  t.is(failedRefresh.status, 500);
  const log = sim.control.counters();
  t.like(log, { tokenCalls: 2, refreshCalls: 2, rejectedRefreshes: 1 });
  t.deepEqual(log.requests.map((r) => r.code), [0, C.SERVER_ERROR, C.SERVER_ERROR, 0, 115000299, 502, 500]);
});

test('setLatency delays answers', async (t) => {
  const sim = await startSim(t);
  const { a } = setup(sim);
  sim.control.setLatency(300);
  const started = Date.now();
  const res = await call(sim, '/order/get', { body: ORDER, accessToken: a.accessToken });
  t.true(Date.now() - started >= 290);
  t.is(res.json['code'], 0);
  t.throws(() => sim.control.setLatency(-1));
});

test('request log records method, path with query, headers, raw body, code and time; reset clears it', async (t) => {
  const sim = await startSim(t);
  const { a } = setup(sim);
  const sentAt = Date.now();
  const res = await keetaCall(sim.baseUrl, '/order/get?trace=1', { body: ORDER, accessToken: a.accessToken, signUrl: `${sim.baseUrl}/order/get` });
  t.is(res.json['code'], 0, 'the query string is not part of the signed URL');
  const [entry] = sim.control.counters().requests;
  t.truthy(entry);
  t.is(entry?.method, 'POST');
  t.is(entry?.path, '/api/open/order/get?trace=1');
  t.is(entry?.headers['content-type'], 'application/json');
  t.true(entry?.rawBody.includes('"orderViewId":756823555555859'));
  t.is(entry?.code, 0);
  t.true((entry?.at ?? 0) >= sentAt && (entry?.at ?? 0) <= Date.now(), 'received while the request was under way');
  sim.control.reset();
  t.deepEqual(sim.control.counters(), { tokenCalls: 0, refreshCalls: 0, refreshReuse: 0, authCodeCalls: 0, rejectedRefreshes: 0, authCodeReuse: 0, authCodeExchanges: 0, authCodesIssued: 0, requests: [], event1Pushes: [] });
  t.truthy(sim.control.merchant('brand-a'), 'reset keeps merchants');
});

test('paths outside /api/open answer a raw 404', async (t) => {
  const sim = await startSim(t);
  const res = await fetch(`${rootOf(sim)}/elsewhere`, { method: 'POST' });
  t.is(res.status, 404);
  await res.text();
});

test('control over HTTP: clock, failNext, counters, merchants, auth codes, revoke, reset', async (t) => {
  const sim = await startSim(t);
  const root = rootOf(sim);

  // Merchant with an int64 shop id above 2^53 sent as a JSON number.
  const added = await control(root, 'POST', '/merchants', `{"merchantId":"m1","shopIds":[${BIG_SHOP},"466663"]}`);
  t.is(added.status, 200);
  t.is(typeof added.json.accessToken, 'string');
  const view = await control(root, 'GET', '/merchants/m1');
  t.deepEqual(view.json.shopIds, [BIG_SHOP, '466663']);
  t.is((await control(root, 'GET', '/merchants/none')).status, 404);
  const orderBody = `{"orderViewId":1,"shopId":${BIG_SHOP}}`;
  t.is((await call(sim, '/order/get', { body: orderBody, accessToken: added.json.accessToken })).json['code'], 0);

  // Clock.
  const clock = await control(root, 'POST', '/clock', { offsetMs: 3_600_000 });
  t.is(clock.json.offsetMs, 3_600_000);
  t.is(sim.control.clock().offsetMs, 3_600_000);
  const stale = await keetaCall(sim.baseUrl, '/order/get', { body: orderBody, accessToken: added.json.accessToken });
  t.is(stale.json['code'], C.TIMESTAMP_INVALID);
  t.true(Math.abs(Date.parse(stale.headers.get('date') ?? '') - (Date.now() + 3_600_000)) < 10_000);
  t.is((await control(root, 'GET', '/clock')).json.offsetMs, 3_600_000);
  await control(root, 'POST', '/clock', { offsetMs: 0 });

  // failNext.
  t.is((await control(root, 'POST', '/fail-next', { count: 1, code: 315000150 })).status, 200);
  t.is((await call(sim, '/order/get', { body: orderBody, accessToken: added.json.accessToken })).json['code'], 315000150);
  await control(root, 'POST', '/fail-next', { count: 1, httpStatus: 503, body: { error: 'down' } });
  const raw = await call(sim, '/order/get', { body: orderBody, accessToken: added.json.accessToken });
  t.is(raw.status, 503);
  t.deepEqual(raw.json, { error: 'down' });
  t.is((await control(root, 'POST', '/fail-next', { count: -1 })).status, 400);

  // Latency.
  t.is((await control(root, 'POST', '/latency', { ms: 0 })).status, 200);

  // Auth code + token.
  const code = await control(root, 'POST', '/merchants/m1/auth-code');
  const exchanged = await call(sim, '/base/oauth/token', { body: JSON.stringify({ grantType: 'authorization_code', code: code.json.code }) });
  t.is(typeof exchanged.json['accessToken'], 'string', exchanged.text);

  // Expire / revoke.
  await control(root, 'POST', '/merchants/m1/expire-access-token');
  t.is((await call(sim, '/order/get', { body: orderBody, accessToken: exchanged.json['accessToken'] as string })).json['code'], C.ACCESS_TOKEN_INVALID);
  await control(root, 'POST', '/merchants/m1/revoke');
  t.is((await call(sim, '/order/get', { body: orderBody, accessToken: added.json.accessToken })).json['code'], C.ACCESS_TOKEN_INVALID);

  // Counters (control requests are not logged).
  const counters = await control(root, 'GET', '/counters');
  t.like(counters.json, { tokenCalls: 1, authCodeCalls: 1 });
  t.is(counters.json.requests.length, 7);
  t.true(counters.json.requests.every((r: { path: string }) => r.path.startsWith('/api/open/')));

  // Reset; unknown routes and methods.
  t.is((await control(root, 'POST', '/reset')).status, 200);
  t.deepEqual((await control(root, 'GET', '/counters')).json.requests, []);
  t.is((await control(root, 'GET', '/nope')).status, 404);
  t.is((await control(root, 'GET', '/reset')).status, 405);
  t.is((await control(root, 'POST', '/clock', '{"offsetMs":')).status, 400);
});

test('close() is idempotent and frees the port', async (t) => {
  const sim = await startKeetaSim({ appId: APP_ID, appSecret: APP_SECRET });
  await sim.close();
  await sim.close();
  await t.throwsAsync(fetch(`${sim.baseUrl}/order/get`, { method: 'POST' }));
});
