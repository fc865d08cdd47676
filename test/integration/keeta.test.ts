import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KEETA_SIM_CODES, startKeetaSim } from '../../src/sim/index.js';
import { FileStore } from '../../src/tokens/file-store.js';
import { countingStore, failingStore } from '../helpers/counting-store.js';
import { postJson } from '../helpers/http.js';
import { DAY, KEETA_APP_ID, KEETA_SECRET, assertNoRefreshReuse, keetaSetup } from '../helpers/keeta-setup.js';

const SHOP = '466663';
const BIG_SHOP = '9007199254740993'; // 2^53 + 1: a JS number would round it

/** Bodies of the signer's unit table, sent through the proxy to the strict simulator. */
const CASES: Array<[string, string]> = [
  ['int64 and long numbers', `{"shopId":${SHOP},"shopCategory":{"id":1,"name":"c"},"orderViewId":1234567890123456789,"long":123456789012345678901234567890}`],
  ['decimal and exponent lexemes', `{"shopId":${SHOP},"shopCategory":{"id":1,"name":"c"},"price":12.50,"e1":1e5,"e2":1E+5,"e3":-2.5e-3,"z":-0}`],
  ['nested key order with integer-like keys', `{"shopId":${SHOP},"shopCategory":{"b":1,"2":2,"a":3,"1":4,"name":"x","description":null}}`],
  ['unicode raw and escaped', `{"shopId":${SHOP},"shopCategory":{"id":1,"name":"c"},"name":"開心樂園餐","escaped":"\\u958b\\u5fc3","nested":{"n":"\\u00e9t\\u00e9 ☕"}}`],
  ['quotes, newlines, slashes in nested strings', `{"shopId":${SHOP},"shopCategory":{"id":1,"name":"c"},"remark":"line1\\nline2 \\"q\\" a/b \\\\ tab\\t","nested":{"s":"x\\"y\\\\z\\n/\\u0001"}}`],
  ['arrays of objects', `{"shopId":${SHOP},"shopCategory":{"id":1,"name":"c"},"items":[{"code":"A","qty":1},{"code":"B","qty":2,"opts":[1,2,{"k":null}]}],"empty":[]}`],
  ['empty string, null, booleans', `{"shopId":${SHOP},"shopCategory":{"id":1,"name":"c"},"remark":"","gone":null,"yes":true,"no":false,"obj":{}}`],
  ['pretty-printed input', `{\n  "shopId": ${SHOP},\n  "shopCategory": {\n    "id": 123,\n    "name": "test",\n    "type": 0,\n    "description": null\n  }\n}`],
  ['caller copies of the four auth fields', `{"shopId":${SHOP},"shopCategory":{"id":1,"name":"c"},"appId":1,"timestamp":1,"accessToken":"forged","sig":"forged"}`],
  ['int64 shopId above 2^53 routes to its merchant', `{"shopId":${BIG_SHOP},"orderViewId":756823555555859,"shopCategory":{"name":"c"}}`],
];

test('every signer case goes through the proxy and the simulator accepts the signature; values arrive unchanged', async (t) => {
  const { sim, gw, addMerchant } = await keetaSetup(t);
  const pair = await addMerchant('brand-1', [SHOP, BIG_SHOP]);
  for (const [name, body] of CASES) {
    sim.control.reset();
    const res = await postJson(`${gw.proxyUrl}/keeta/product/shopcategory/update`, body);
    t.is(res.status, 200, name);
    t.is(res.json?.code, 0, `${name}: ${res.text}`);
    const received = sim.control.counters().requests.at(-1)!;
    const raw = received.rawBody;
    t.false(/\s(?=(?:[^"]*"[^"]*")*[^"]*$)/.test(raw.replace(/"(?:[^"\\]|\\.)*"/g, '""')), `${name}: forwarded body is compact`);
    t.true(raw.includes(`"accessToken":"${pair.accessToken}"`), `${name}: token injected`);
    t.true(raw.includes(`"appId":3340612437`), `${name}: appId injected`);
    t.false(raw.includes('forged'), `${name}: caller copies replaced`);
    t.regex(raw, /"sig":"[0-9a-f]{64}"}$/);
    // Every caller field arrives, with its value (JSON.parse rounds big numbers the same way
    // on both sides; their exact digits are checked below).
    const sent = JSON.parse(raw) as Record<string, unknown>;
    const given = JSON.parse(body) as Record<string, unknown>;
    for (const key of ['appId', 'timestamp', 'accessToken', 'sig']) delete given[key];
    for (const [key, value] of Object.entries(given)) t.deepEqual(sent[key], value, `${name}: field ${key}`);
    t.deepEqual(Object.keys(sent).sort(), [...Object.keys(given), 'accessToken', 'appId', 'sig', 'timestamp'].sort(), `${name}: no field added or lost`);
  }
  // Lexemes the simulator received, byte for byte.
  const sent = (i: number) => {
    sim.control.reset();
    return postJson(`${gw.proxyUrl}/keeta/product/shopcategory/update`, CASES[i]![1]).then(() => sim.control.counters().requests.at(-1)!.rawBody);
  };
  const numbers = await sent(0);
  t.true(numbers.includes('"orderViewId":1234567890123456789'));
  t.true(numbers.includes('"long":123456789012345678901234567890'));
  const lexemes = await sent(1);
  for (const l of ['"price":12.50', '"e1":1e5', '"e2":1E+5', '"e3":-2.5e-3', '"z":-0']) t.true(lexemes.includes(l), l);
  t.true((await sent(2)).includes('"shopCategory":{"b":1,"2":2,"a":3,"1":4,"name":"x","description":null}'));
  const unicode = await sent(3);
  t.true(unicode.includes('"escaped":"開心"'));
  t.true(unicode.includes('"nested":{"n":"été ☕"}'));
  t.true((await sent(4)).includes('"nested":{"s":"x\\"y\\\\z\\n/\\u0001"}'));
  t.true((await sent(7)).includes('"shopCategory":{"id":123,"name":"test","type":0,"description":null}'));
  t.true((await sent(9)).includes(`"shopId":${BIG_SHOP}`));
  assertNoRefreshReuse(t, sim);
});

test('the merchant comes from X-Countersign-Merchant, else the shopId; UNKNOWN_MERCHANT names what is missing', async (t) => {
  const { sim, gw, addMerchant } = await keetaSetup(t);
  const a = await addMerchant('brand-a', ['1001']);
  const b = await addMerchant('brand-b', ['2002']);
  const viaShop = await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 1, shopId: 2002 });
  t.is(viaShop.json.code, 0);
  t.true(sim.control.counters().requests.at(-1)!.rawBody.includes(b.accessToken));
  const viaHeader = await postJson(`${gw.proxyUrl}/keeta/product/shopcategory/update`, { shopId: 1001, shopCategory: { id: 1, name: 'c' } }, { 'x-countersign-merchant': 'brand-a' });
  t.is(viaHeader.json.code, 0);
  t.true(sim.control.counters().requests.at(-1)!.rawBody.includes(a.accessToken));
  t.false(sim.control.counters().requests.at(-1)!.headers['x-countersign-merchant'] !== undefined);

  const unknownShop = await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 1, shopId: 999 });
  t.is(unknownShop.status, 400);
  t.is(unknownShop.json.error.code, 'UNKNOWN_MERCHANT');
  t.regex(unknownShop.json.error.message, /shopId 999/);
  const none = await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 1 });
  t.is(none.json.error.code, 'UNKNOWN_MERCHANT');
  t.regex(none.json.error.message, /X-Countersign-Merchant or a shopId/);
  const unknownHeader = await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 1 }, { 'x-countersign-merchant': 'nobody' });
  t.is(unknownHeader.json.error.code, 'UNKNOWN_MERCHANT');
  const badHeader = await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 1 }, { 'x-countersign-merchant': 'a b/c' });
  t.is(badHeader.json.error.code, 'UNKNOWN_MERCHANT');
  t.regex(badHeader.json.error.message, /X-Countersign-Merchant: merchant ids are/);
  assertNoRefreshReuse(t, sim);
});

test('app-level paths are signed without a token; the token endpoint is FORBIDDEN_PATH', async (t) => {
  const { sim, gw } = await keetaSetup(t);
  const res = await postJson(`${gw.proxyUrl}/keeta/base/callback/url/set`, { eventId: 1002, url: 'https://example.com/hook', isTest: 1, accessToken: 'caller-sent' });
  t.is(res.json.code, 0, res.text);
  t.false(sim.control.counters().requests.at(-1)!.rawBody.includes('accessToken'));
  const forbidden = await postJson(`${gw.proxyUrl}/keeta/base/oauth/token`, { grantType: 'refresh_token', refreshToken: 'x' });
  t.is(forbidden.status, 403);
  t.is(forbidden.json.error.code, 'FORBIDDEN_PATH');
  t.is(sim.control.counters().tokenCalls, 0);
});

test('a token inside its window is refreshed once: 60 concurrent requests make one refresh, all succeed', async (t) => {
  const { sim, gw, addMerchant } = await keetaSetup(t);
  const old = await addMerchant('brand-1', [SHOP], { expiresInSec: 3 * 86_400 }); // 3 days left, refreshBefore 4d
  const results = await Promise.all(
    Array.from({ length: 60 }, (_, i) => postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 1000 + i, shopId: Number(SHOP) })),
  );
  t.true(results.every((r) => r.json?.code === 0));
  // The renewal runs in the background while the still-valid token serves; wait for it.
  for (let i = 0; i < 100 && sim.control.counters().refreshCalls === 0; i++) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 100));
  t.is(sim.control.counters().refreshCalls, 1);
  const current = sim.control.merchant('brand-1')!;
  t.not(current.accessToken, old.accessToken);
  t.is(gw.app.cache.get('keeta', 'brand-1')!.accessToken, current.accessToken, 'the new pair is in use');
  t.is(await gw.metric('countersign_token_refreshes_total', { upstream: 'keeta', trigger: 'on_demand', result: 'success' }), 1);
  const after = await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 1, shopId: Number(SHOP) });
  t.true(sim.control.counters().requests.at(-1)!.rawBody.includes(current.accessToken));
  t.is(after.json.code, 0);
  assertNoRefreshReuse(t, sim);
});

test('the background scheduler renews proactively, and reads a wrapped token answer', async (t) => {
  const { sim, gw, addMerchant } = await keetaSetup(t);
  sim.control.setTokenResponseShape('wrapped');
  await addMerchant('brand-1', [SHOP], { expiresInSec: 2 * 86_400 });
  await addMerchant('brand-2', ['777'], { expiresInSec: 80 * 86_400 });
  await gw.app.upstreams.get('keeta')!.tokens.tick();
  t.is(sim.control.counters().refreshCalls, 1, 'only the merchant inside its window');
  t.is(await gw.metric('countersign_token_refreshes_total', { upstream: 'keeta', trigger: 'proactive', result: 'success' }), 1);
  t.true(gw.app.cache.get('keeta', 'brand-1')!.expiresAt > Date.now() + 89 * DAY);
  assertNoRefreshReuse(t, sim);
});

test('a restart on the file store keeps the rotated pair', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'cs-keeta-file-')), 'tokens.json');
  const first = await keetaSetup(t, { store: new FileStore({ path }) });
  await first.addMerchant('brand-1', [SHOP], { expiresInSec: 86_400 });
  const refreshed = await fetch(`${first.gw.adminUrl}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' });
  t.is(refreshed.status, 200);
  const rotated = first.sim.control.merchant('brand-1')!;
  await first.gw.close();

  // A second gateway on the same file and the same simulator.
  const { startGateway } = await import('../helpers/gateway.js');
  const gw2 = await startGateway(
    `upstreams:\n  keeta:\n    type: keeta\n    baseUrl: ${first.sim.baseUrl}\n    appId: 3340612437\n    appSecret: keeta-test-app-secret-5e1f\n`,
    { store: new FileStore({ path }) },
  );
  t.teardown(() => gw2.close());
  const rec = gw2.app.cache.get('keeta', 'brand-1')!;
  t.is(rec.accessToken, rotated.accessToken);
  t.is(rec.refreshToken, rotated.refreshToken);
  t.deepEqual([...rec.shopIds], [SHOP]);
  const res = await postJson(`${gw2.proxyUrl}/keeta/order/get`, { orderViewId: 5, shopId: Number(SHOP) });
  t.is(res.json.code, 0);
  t.true(first.sim.control.counters().requests.at(-1)!.rawBody.includes(rotated.accessToken));
  assertNoRefreshReuse(t, first.sim);
});

test('an upstream token rejection leads to one refresh and one retry, invisible to the caller', async (t) => {
  const { sim, gw, addMerchant } = await keetaSetup(t);
  await addMerchant('brand-1', [SHOP]);
  sim.control.expireAccessToken('brand-1');
  sim.control.reset();
  const res = await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 42, shopId: Number(SHOP) });
  t.is(res.status, 200);
  t.is(res.json.code, 0, res.text);
  const c = sim.control.counters();
  t.is(c.refreshCalls, 1);
  t.deepEqual(
    c.requests.map((r) => [r.path, r.code]),
    [
      ['/api/open/order/get', KEETA_SIM_CODES.ACCESS_TOKEN_INVALID],
      ['/api/open/base/oauth/token', 0],
      ['/api/open/order/get', 0],
    ],
  );
  t.is(await gw.metric('countersign_retries_total', { upstream: 'keeta', reason: 'token' }), 1);
  t.is(await gw.metric('countersign_requests_total', { upstream: 'keeta', class: 'success' }), 1);
  t.is(await gw.metric('countersign_token_refreshes_total', { upstream: 'keeta', trigger: 'rejected', result: 'success' }), 1);
  assertNoRefreshReuse(t, sim);
});

test('a failing refresh keeps serving with the still-valid token, and /admin/tokens shows it', async (t) => {
  const { sim, gw, addMerchant } = await keetaSetup(t);
  const pair = await addMerchant('brand-1', [SHOP], { expiresInSec: 3 * 86_400 });
  sim.control.failNext(1, { code: KEETA_SIM_CODES.SERVER_ERROR, includeTokenEndpoint: true });
  const refresh = await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' });
  t.is(refresh.status, 503);
  const err = (await refresh.json()) as any;
  t.is(err.error.code, 'TOKEN_UNAVAILABLE');
  t.truthy(refresh.headers.get('retry-after'));
  t.false(JSON.stringify(err).includes(pair.refreshToken));

  const res = await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 7, shopId: Number(SHOP) });
  t.is(res.json.code, 0);
  t.true(sim.control.counters().requests.at(-1)!.rawBody.includes(pair.accessToken), 'old token still in use');

  const tokens = (await (await fetch(`${gw.adminUrl}/admin/tokens`)).json()) as any;
  const text = JSON.stringify(tokens);
  const m = tokens.upstreams.find((u: any) => u.name === 'keeta').merchants.find((x: any) => x.merchant === 'brand-1');
  t.is(m.state, 'refresh_failed');
  t.is(m.shopCount, 1);
  t.regex(m.lastRefreshError.message, /315000101/);
  t.false(text.includes(pair.accessToken) || text.includes(pair.refreshToken), 'no token in the admin answer');
  t.is(await gw.metric('countersign_token_refreshes_total', { upstream: 'keeta', trigger: 'admin', result: 'failure' }), 1);
  t.is(await gw.metric('countersign_tokens', { upstream: 'keeta', state: 'refresh_failed' }), 1);
  assertNoRefreshReuse(t, sim);
});

test('admin: shops replaced, merchant deleted, import validation, int64 shopIds kept exactly', async (t) => {
  const { sim, gw, addMerchant } = await keetaSetup(t);
  await addMerchant('brand-1', [SHOP]);
  const put = await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-1/shops`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: `{"shopIds":[${BIG_SHOP}, 12]}`,
  });
  t.is(put.status, 204);
  t.deepEqual([...gw.app.cache.get('keeta', 'brand-1')!.shopIds], [BIG_SHOP, '12']);
  t.is(gw.app.cache.merchantForShop('keeta', SHOP), undefined);

  const bad = await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-2/token`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: '{"accessToken":"a","expiresIn":-1}',
  });
  t.is(bad.status, 400);
  const del = await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-1`, { method: 'DELETE' });
  t.is(del.status, 204);
  t.is(gw.app.cache.get('keeta', 'brand-1'), undefined);
  const gone = await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 1, shopId: BIG_SHOP });
  t.is(gone.json.error.code, 'UNKNOWN_MERCHANT');
  assertNoRefreshReuse(t, sim);
});

test('a request with a cached valid token does no store I/O', async (t) => {
  const { store: counting, calls } = countingStore();
  const { sim, gw, addMerchant } = await keetaSetup(t, { store: counting });
  await addMerchant('brand-1', [SHOP]);
  calls.length = 0;
  for (let i = 0; i < 20; i++) {
    t.is((await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: i + 1, shopId: Number(SHOP) })).json.code, 0);
    t.is((await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: i + 1, shopId: 1 }, { "x-countersign-merchant": "brand-1" })).json.code, 115000110);
  }
  t.deepEqual(calls, []);
  assertNoRefreshReuse(t, sim);
});

test('no token or secret appears in logs, metrics, admin answers or error bodies across a token lifecycle', async (t) => {
  const { sim, gw, addMerchant } = await keetaSetup(t);
  const first = await addMerchant('brand-1', [SHOP], { expiresInSec: 3 * 86_400 });
  const bodies: string[] = [];
  bodies.push((await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 1, shopId: Number(SHOP) })).text);
  await gw.app.upstreams.get('keeta')!.tokens.tick().catch(() => {});
  for (let i = 0; i < 50 && gw.app.cache.get('keeta', 'brand-1')!.accessToken === first.accessToken; i++) await new Promise((r) => setTimeout(r, 20));
  const second = sim.control.merchant('brand-1')!;
  sim.control.expireAccessToken('brand-1');
  bodies.push((await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 2, shopId: Number(SHOP) })).text);
  sim.control.failNext(1, { code: KEETA_SIM_CODES.SERVER_ERROR, includeTokenEndpoint: true });
  bodies.push(await (await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' })).text());
  bodies.push(await (await fetch(`${gw.adminUrl}/admin/tokens`)).text());
  bodies.push(await (await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-1/token`, { method: 'PUT', body: `{"accessToken":"${first.accessToken}","refreshToken":"${first.refreshToken}","expiresIn":${first.expiresIn},"issuedAtTime":${first.issuedAtTime - 1000}}` })).text());
  const third = sim.control.merchant('brand-1')!;
  // The lifecycle really happened: a proactive renewal, a rejected token, a failed renewal, a stale import.
  t.not(second.accessToken, first.accessToken);
  t.true(sim.control.counters().requests.some((r) => r.code === KEETA_SIM_CODES.ACCESS_TOKEN_INVALID));
  t.regex(bodies[2]!, /TOKEN_UNAVAILABLE|STORE_UNAVAILABLE/);
  t.regex(bodies[4]!, /CONFLICT/);
  const everything = [gw.logText(), await gw.app.registry.metrics(), ...bodies].join('\n');
  for (const secret of [first.accessToken, first.refreshToken, second.accessToken, second.refreshToken, third.accessToken, third.refreshToken, 'keeta-test-app-secret-5e1f']) {
    t.false(everything.includes(secret), `leaked ${secret.slice(0, 6)}…`);
  }
  t.true(gw.logs.length > 5);
  assertNoRefreshReuse(t, sim);
});

test('a renewal held back by the 60 s spacing is not retried by every request (no store I/O storm)', async (t) => {
  const { store: counting, calls } = countingStore();
  const { sim, gw, addMerchant } = await keetaSetup(t, { store: counting });
  // Issued just now, yet inside the 4-day window: the spacing forbids a renewal for a minute.
  await addMerchant('brand-1', [SHOP], { expiresInSec: 3 * 86_400, issuedAgoMs: 0 });
  calls.length = 0;
  for (let i = 0; i < 20; i++) {
    t.is((await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: i + 1, shopId: Number(SHOP) })).json.code, 0);
  }
  t.is(sim.control.counters().refreshCalls, 0);
  t.true(calls.filter((c) => c === 'withLock').length <= 1, calls.join(','));
  const tokens = (await (await fetch(`${gw.adminUrl}/admin/tokens`)).json()) as any;
  t.is(tokens.upstreams[0].merchants[0].state, 'expiring', 'a spacing refusal is not a failure');
});

test('the token endpoint cannot be reached through path variants', async (t) => {
  const { sim, gw, addMerchant } = await keetaSetup(t);
  await addMerchant('brand-1', [SHOP]);
  for (const path of ['/base/oauth/token/', '/base/oauth/token;a=b', '/base/oauth/%74oken', '/base/OAUTH/token', '/BASE/oauth/TOKEN']) {
    const res = await postJson(`${gw.proxyUrl}/keeta${path}`, { grantType: 'refresh_token', refreshToken: 'x' }, { 'x-countersign-merchant': 'brand-1' });
    t.true(res.status === 400 || res.status === 403, `${path}: ${res.status}`);
    t.true(['BAD_PATH', 'FORBIDDEN_PATH'].includes(res.json.error.code), path);
  }
  t.is(sim.control.counters().requests.length, 0);
});

test('a store that went back to an older pair gets the newer one written back; the renewal uses the newest refresh token', async (t) => {
  const { MemoryStore } = await import('../../src/tokens/memory-store.js');
  const store = new MemoryStore();
  const { sim, gw, addMerchant } = await keetaSetup(t, { store, sim: { refreshSpacingMs: 0 }, upstreamExtra: '    refreshSpacing: 0s' });
  await addMerchant('brand-1', [SHOP]);
  const p1 = await store.get('keeta', 'brand-1');
  t.is((await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' })).status, 200);
  const p2 = sim.control.merchant('brand-1')!;
  // The store loses the newer pair (say, a Redis restored from an older snapshot).
  await store.delete('keeta', 'brand-1');
  await store.put(p1!);
  t.is((await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' })).status, 200);
  t.is(sim.control.counters().refreshReuse, 0, 'the spent refresh token of the older pair was not sent');
  t.is(sim.control.counters().refreshCalls, 2);
  const p3 = sim.control.merchant('brand-1')!;
  t.not(p3.refreshToken, p2.refreshToken);
  t.is((await store.get('keeta', 'brand-1'))!.refreshToken, p3.refreshToken);
});

test('a renewed pair whose write fails for a while is written once the store answers, holding the lock meanwhile', async (t) => {
  const { store: flaky, inner, failNext } = failingStore('put');
  const { sim, gw, addMerchant } = await keetaSetup(t, { store: flaky });
  await addMerchant('brand-1', [SHOP]);
  failNext(5);
  const res = await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' });
  t.is(res.status, 200, await res.clone().text());
  const rotated = sim.control.merchant('brand-1')!;
  t.is((await inner.get('keeta', 'brand-1'))!.refreshToken, rotated.refreshToken, 'the new pair reached the store');
  t.is(gw.app.cache.get('keeta', 'brand-1')!.accessToken, rotated.accessToken);
  t.is(sim.control.counters().refreshCalls, 1);
  assertNoRefreshReuse(t, sim);
});

test('a store failure before the upstream is asked is not a renewal failure', async (t) => {
  const { store: flaky, failNext } = failingStore('withLock');
  const { sim, gw, addMerchant } = await keetaSetup(t, { store: flaky });
  await addMerchant('brand-1', [SHOP]);
  failNext(1);
  const res = await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' });
  t.is(res.status, 503);
  t.is(((await res.json()) as any).error.code, 'STORE_UNAVAILABLE');
  const tokens = gw.app.upstreams.get('keeta')!.tokens;
  t.is(tokens.lastFailure('brand-1'), undefined);
  t.is(tokens.state(gw.app.cache.get('keeta', 'brand-1')!), 'valid');
  t.is(await gw.metric('countersign_token_refreshes_total', { upstream: 'keeta', trigger: 'admin', result: 'failure' }), 0);
  t.is(sim.control.counters().refreshCalls, 0);
});

test('refresh_failed clears once a newer pair is in use, whoever renewed it', async (t) => {
  const { sim, gw, addMerchant } = await keetaSetup(t);
  await addMerchant('brand-1', [SHOP], { expiresInSec: 3 * 86_400 });
  sim.control.failNext(1, { code: KEETA_SIM_CODES.SERVER_ERROR, includeTokenEndpoint: true });
  t.is((await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' })).status, 503);
  const tokens = gw.app.upstreams.get('keeta')!.tokens;
  const rec = gw.app.cache.get('keeta', 'brand-1')!;
  t.is(tokens.state(rec), 'refresh_failed');
  // Another replica renewed: its pair arrives through the store's change notification.
  const now = Date.now() + 1000;
  gw.app.cache.set({ ...rec, accessToken: 'from-another-replica', issuedAt: now, refreshedAt: now, expiresAt: now + 90 * DAY });
  t.is(tokens.state(gw.app.cache.get('keeta', 'brand-1')!), 'valid');
  t.is(tokens.lastFailure('brand-1'), undefined);
});

test('admin conflicts: a stale import and a shop that belongs to another merchant answer 409 and change nothing', async (t) => {
  const { gw, addMerchant } = await keetaSetup(t);
  const a = await addMerchant('brand-a', ['1001']);
  await addMerchant('brand-b', ['2002']);
  const stale = await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-a/token`, {
    method: 'PUT',
    body: `{"accessToken":"older","refreshToken":"older-r","expiresIn":7776000,"issuedAtTime":${a.issuedAtTime - 1000}}`,
  });
  t.is(stale.status, 409);
  t.is(((await stale.json()) as any).error.code, 'CONFLICT');
  t.is(gw.app.cache.get('keeta', 'brand-a')!.accessToken, a.accessToken);
  const taken = await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-a/shops`, { method: 'PUT', body: '{"shopIds":[1001,2002]}' });
  t.is(taken.status, 409);
  t.regex(((await taken.json()) as any).error.message, /shopId 2002 already belongs to merchant "brand-b"/);
  t.deepEqual([...gw.app.cache.get('keeta', 'brand-a')!.shopIds], ['1001']);
});

test('signUrlBase: Keeta reached through an alias host is signed with the URL Keeta sees', async (t) => {
  const { createServer, request } = await import('node:http');
  const sim = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET });
  t.teardown(() => sim.close());
  const simPort = new URL(sim.baseUrl).port;
  // An egress alias that forwards to Keeta under Keeta's own host name.
  const alias = createServer((req, res) => {
    const up = request({ host: '127.0.0.1', port: simPort, method: req.method, path: req.url, headers: { ...req.headers, host: 'open.keeta.example' } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  await new Promise<void>((r) => alias.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => alias.close(() => r())));
  const aliasUrl = `http://127.0.0.1:${(alias.address() as { port: number }).port}/api/open`;
  const { startGateway } = await import('../helpers/gateway.js');
  const config = (extra: string) =>
    `upstreams:\n  keeta:\n    type: keeta\n    baseUrl: ${aliasUrl}\n    appId: ${KEETA_APP_ID}\n    appSecret: ${KEETA_SECRET}\n${extra}`;
  const plain = await startGateway(config(''));
  t.teardown(() => plain.close());
  const aliased = await startGateway(config('    signUrlBase: http://open.keeta.example/api/open\n'));
  t.teardown(() => aliased.close());
  const body = { eventId: 1002, url: 'https://example.com/hook', isTest: 1 };
  t.is((await postJson(`${plain.proxyUrl}/keeta/base/callback/url/set`, body)).json.code, KEETA_SIM_CODES.SIG_INVALID);
  t.is((await postJson(`${aliased.proxyUrl}/keeta/base/callback/url/set`, body)).json.code, 0);
});
