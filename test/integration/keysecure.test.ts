import test from 'ava';
import { postJson, rawRequest } from '../helpers/http.js';
import { KS_API_KEY, businessCodes, keySecureSetup } from '../helpers/keysecure-setup.js';

const BASE = '/keysecure-hk/open-api/v1';

test('headers: Api-Key, 13-digit Timestamp, Access-Token, Content-Type, default Timezone; caller Language kept; caller auth copies dropped', async (t) => {
  const { sim, gw } = await keySecureSetup(t);
  const res = await rawRequest(gw.proxyUrl, {
    path: `${BASE}/_echo`,
    headers: { 'content-type': 'application/json', language: 'zh_CN', 'api-key': 'forged', 'access-token': 'forged', timestamp: '1' },
    body: '{}',
  });
  t.is(res.status, 200);
  const echoed = res.json().data;
  const h = echoed.headers;
  t.is(h['api-key'], KS_API_KEY);
  t.regex(h.timestamp, /^\d{13}$/);
  t.true(Math.abs(Number(h.timestamp) - Date.now()) < 5000);
  t.true(Number(h.timestamp) <= Date.now(), 'never in the future');
  t.regex(h['access-token'], /\S{8,}/);
  t.not(h['access-token'], 'forged');
  t.is(h['content-type'], 'application/json');
  t.is(h.timezone, 'UTC+8', 'default Timezone added');
  t.is(h.language, 'zh_CN', "caller's Language kept over the configured en_US");
  const received = sim.control.counters().requests.at(-1)!;
  t.true(Number(h.timestamp) <= received.at - 1000, 'stamped with the 1 s safety margin');
  t.is(sim.control.counters().tokenCalls, 1);

  // The other way round: the caller's Timezone kept, the configured Language added, and a
  // Content-Type supplied when the caller sent none.
  const get = await rawRequest(gw.proxyUrl, { method: 'GET', path: `${BASE}/_echo`, headers: { timezone: 'UTC+0' } });
  const g = get.json().data.headers;
  t.is(g.timezone, 'UTC+0');
  t.is(g.language, 'en_US');
  t.is(g['content-type'], 'application/json');
  const typed = await rawRequest(gw.proxyUrl, { path: `${BASE}/_echo`, headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{}' });
  t.is(typed.json().data.headers['content-type'], 'application/json; charset=utf-8', "a caller's Content-Type is kept");
});

test('underscore spellings of the headers the proxy sets are never forwarded', async (t) => {
  const { gw } = await keySecureSetup(t);
  const res = await rawRequest(gw.proxyUrl, {
    path: `${BASE}/_echo`,
    body: '{}',
    headers: {
      'content-type': 'application/json',
      api_key: 'forged-key',
      access_token: 'forged-token',
      Access_Token: 'forged-token-2',
      timestamp: '1',
      x_countersign_merchant: 'm1',
      x_kept_header: 'yes',
    },
  });
  t.is(res.status, 200);
  const h = res.json().data.headers as Record<string, string>;
  t.deepEqual(Object.keys(h).filter((n) => n.includes('_')), ['x_kept_header'], Object.keys(h).join(','));
  t.false(JSON.stringify(h).includes('forged'));
  t.is(h['api-key'], KS_API_KEY);
});

test('the token endpoint cannot be called through the proxy: FORBIDDEN_PATH, in any spelling', async (t) => {
  const { sim, gw } = await keySecureSetup(t);
  const before = sim.control.counters().tokenCalls;
  for (const path of [`${BASE}/merchant/token`, `${BASE}/merchant/TOKEN`, `${BASE}/Merchant/token/`]) {
    const res = await rawRequest(gw.proxyUrl, { method: 'GET', path, headers: { 'access-token': 'forged' } });
    t.is(res.status, 403, path);
    t.is(res.json().error.code, 'FORBIDDEN_PATH', path);
    t.false(res.body.includes('access_token'), 'no token in the refusal');
  }
  t.is(sim.control.counters().tokenCalls, before, 'no token call was caused');
  t.false(sim.control.counters().requests.some((r) => r.path.toLowerCase().includes('merchant/token') && r.headers['access-token'] === 'forged'));
});

test('a configuration fault is logged once per burst, with its cause', async (t) => {
  const { sim, gw } = await keySecureSetup(t);
  t.is((await postJson(`${gw.proxyUrl}${BASE}/card/list`, {})).json.code, 0);
  sim.control.setWhitelist(KS_API_KEY, ['203.0.113.7']);
  for (let i = 0; i < 5; i++) t.is((await postJson(`${gw.proxyUrl}${BASE}/card/list`, {})).json.code, 1003);
  const faultLines = gw.logs.filter((l) => l.includes('configuration fault 1003'));
  t.is(faultLines.length, 1);
  t.like(JSON.parse(faultLines[0]!), { level: 'error', upstream: 'keysecure-hk', code: 1003 });
});

test('a body with an int64 and unicode escapes arrives byte-identical; GET keeps path and query', async (t) => {
  const { sim, gw } = await keySecureSetup(t);
  const body = '{ "card_unique_no" : 1234567890123456789,\n  "name": "\\u958b\\u5fc3 \\ud83d\\ude00", "amount": 12.50 }';
  const res = await rawRequest(gw.proxyUrl, { path: `${BASE}/_echo`, headers: { 'content-type': 'application/json' }, body });
  t.is(res.status, 200);
  const last = sim.control.counters().requests.at(-1)!;
  t.is(last.rawBody, body);
  const get = await rawRequest(gw.proxyUrl, { method: 'GET', path: `${BASE}/_echo?page=0&size=10&q=a%20b&multi=1&multi=2` });
  t.is(get.status, 200);
  t.is(sim.control.counters().requests.at(-1)!.path, '/open-api/v1/_echo?page=0&size=10&q=a%20b&multi=1&multi=2');
  t.is(sim.control.counters().requests.at(-1)!.method, 'GET');
  const holder = await postJson(`${gw.proxyUrl}${BASE}/cardholder/apply`, { cardholder_unique_no: 'u-1', sumsub_share_token: 'tok' });
  t.is(holder.json.code, 0, holder.text);
  const card = await postJson(`${gw.proxyUrl}${BASE}/card/apply`, {
    card_bin_no: 'BIN1',
    cardholder_no: holder.json.data.cardholder_no,
    card_unique_no: 'card-1',
    card_type: 'Virtual',
  });
  t.is(card.json.code, 0, card.text);
  const detail = await rawRequest(gw.proxyUrl, { method: 'GET', path: `${BASE}/card/${card.json.data.card_no}/detail?verbose=1` });
  t.is(detail.json().code, 0, detail.body);
  t.is(detail.json().data.card_no, card.json.data.card_no);
  t.is(sim.control.counters().requests.at(-1)!.path, `/open-api/v1/card/${card.json.data.card_no}/detail?verbose=1`);
});

test('BAD_JSON when a KeySecure body is not JSON', async (t) => {
  const { sim, gw } = await keySecureSetup(t);
  const res = await rawRequest(gw.proxyUrl, { path: `${BASE}/card/list`, headers: { 'content-type': 'application/json' }, body: '{page:0}' });
  t.is(res.status, 400);
  t.is(res.json().error.code, 'BAD_JSON');
  t.is(sim.control.counters().requests.length, 0);
});

test('100 concurrent first calls make one token call and all succeed', async (t) => {
  const { sim, gw } = await keySecureSetup(t);
  const results = await Promise.all(Array.from({ length: 100 }, () => postJson(`${gw.proxyUrl}${BASE}/card/list`, { page: 0, size: 10 })));
  t.true(results.every((r) => r.json?.code === 0));
  t.is(sim.control.counters().tokenCalls, 1);
  t.is(await gw.metric('countersign_requests_total', { upstream: 'keysecure-hk', class: 'success' }), 100);
  t.is(await gw.metric('countersign_token_refreshes_total', { upstream: 'keysecure-hk', trigger: 'on_demand', result: 'success' }), 1);
});

test('a token revoked upstream: 1007 internally, one renewal, one retry, success for the caller', async (t) => {
  const { sim, gw } = await keySecureSetup(t);
  t.is((await postJson(`${gw.proxyUrl}${BASE}/card/list`, {})).json.code, 0);
  sim.control.revokeTokens();
  sim.control.reset();
  const res = await postJson(`${gw.proxyUrl}${BASE}/card/list`, { page: 0 });
  t.is(res.json.code, 0);
  t.is(sim.control.counters().tokenCalls, 1, 'exactly one extra token call');
  t.deepEqual(businessCodes(sim), [1007, 0]);
  t.is(await gw.metric('countersign_retries_total', { upstream: 'keysecure-hk', reason: 'token' }), 1);
  t.is(await gw.metric('countersign_upstream_codes_total', { upstream: 'keysecure-hk', code: '1007' }), 1);
  t.is(await gw.metric('countersign_requests_total', { upstream: 'keysecure-hk', class: 'auth_error' }), 0, 'one final class per request');
});

for (const [label, offsetMs] of [
  ['120 s ahead', 120_000],
  ['30 s behind', -30_000],
] as const) {
  test(`upstream clock ${label}: the first call is corrected and succeeds, later calls see no 1005`, async (t) => {
    const { sim, gw } = await keySecureSetup(t);
    // A token first, on aligned clocks, so the business call itself meets the skew.
    t.is((await postJson(`${gw.proxyUrl}${BASE}/card/list`, {})).json.code, 0);
    sim.control.setClockOffset(offsetMs);
    sim.control.reset();
    const first = await postJson(`${gw.proxyUrl}${BASE}/card/list`, {});
    t.is(first.json.code, 0, first.text);
    t.deepEqual(businessCodes(sim), [1005, 0]);
    sim.control.reset();
    for (let i = 0; i < 5; i++) t.is((await postJson(`${gw.proxyUrl}${BASE}/card/list`, {})).json.code, 0);
    t.deepEqual(businessCodes(sim), [0, 0, 0, 0, 0]);
    t.is(await gw.metric('countersign_retries_total', { upstream: 'keysecure-hk', reason: 'clock_skew' }), 1);
    const offset = await gw.metric('countersign_clock_offset_seconds', { upstream: 'keysecure-hk' });
    t.true(Math.abs(offset - offsetMs / 1000) <= 2, `learned offset ${offset}`);
  });
}

test('a skewed clock on the very first call: the token fetch corrects itself too', async (t) => {
  const { sim, gw } = await keySecureSetup(t);
  sim.control.setClockOffset(120_000);
  const res = await postJson(`${gw.proxyUrl}${BASE}/card/list`, {});
  t.is(res.json.code, 0, res.text);
  sim.control.reset();
  await postJson(`${gw.proxyUrl}${BASE}/card/list`, {});
  t.deepEqual(sim.control.counters().requests.map((r) => r.code), [0]);
});

test('1003 and 1009 pass through to the caller: one upstream request each, no retry, 1003 logged with its cause', async (t) => {
  const { sim, gw } = await keySecureSetup(t);
  t.is((await postJson(`${gw.proxyUrl}${BASE}/card/list`, {})).json.code, 0);
  sim.control.reset();
  sim.control.failNext(1, { code: 1009 });
  const limited = await postJson(`${gw.proxyUrl}${BASE}/card/list`, {});
  t.is(limited.json.code, 1009);
  t.deepEqual(businessCodes(sim), [1009]);

  sim.control.reset();
  sim.control.setWhitelist(KS_API_KEY, ['203.0.113.7']);
  const denied = await postJson(`${gw.proxyUrl}${BASE}/card/list`, {});
  t.is(denied.status, 200);
  t.is(denied.json.code, 1003);
  t.deepEqual(businessCodes(sim), [1003]);
  t.is(sim.control.counters().tokenCalls, 0);
  t.is(await gw.metric('countersign_requests_total', { upstream: 'keysecure-hk', class: 'ip_not_allowed' }), 1);
  t.is(await gw.metric('countersign_requests_total', { upstream: 'keysecure-hk', class: 'rate_limited' }), 1);
  t.regex(gw.logText(), /egress IP is not on the Api-Key's whitelist/);
  t.false(gw.logText().includes(KS_API_KEY));
});

test('an admin refresh refused for the egress IP (1003) names the missing whitelist entry, in the answer and in the log', async (t) => {
  const { sim, gw } = await keySecureSetup(t);
  sim.control.setWhitelist(KS_API_KEY, ['203.0.113.7']);
  const res = await rawRequest(gw.adminUrl, { method: 'POST', path: '/admin/upstreams/keysecure-hk/refresh' });
  t.is(res.status, 503);
  t.is(res.json().error.code, 'TOKEN_UNAVAILABLE');
  t.regex(res.json().error.message, /code 1003 .*: this host's egress IP is not on the Api-Key's whitelist/);
  const line = gw.logs.map((l) => JSON.parse(l) as { msg: string; err?: string }).find((l) => l.msg.startsWith('token renewal failed'));
  t.regex(line?.err ?? '', /this host's egress IP is not on the Api-Key's whitelist/);
  t.false(gw.logText().includes(KS_API_KEY));
});

test('POST /admin/upstreams/{u}/refresh renews now and answers expiresAt; /admin/tokens shows no token', async (t) => {
  const { sim, gw } = await keySecureSetup(t);
  const res = await fetch(`${gw.adminUrl}/admin/upstreams/keysecure-hk/refresh`, { method: 'POST' });
  t.is(res.status, 200);
  const body = (await res.json()) as { expiresAt: string };
  t.true(Date.parse(body.expiresAt) > Date.now() + 23 * 3_600_000);
  t.is(sim.control.counters().tokenCalls, 1);
  const token = gw.app.cache.get('keysecure-hk', '_')!.accessToken;
  const list = await (await fetch(`${gw.adminUrl}/admin/tokens`)).text();
  t.false(list.includes(token));
  t.false(list.includes(KS_API_KEY));
  t.regex(list, /"state":"valid"/);
  t.is(await gw.metric('countersign_token_refreshes_total', { upstream: 'keysecure-hk', trigger: 'admin', result: 'success' }), 1);
});

test('a token inside refreshBefore is renewed in the background; the old one keeps serving meanwhile', async (t) => {
  const { sim, gw } = await keySecureSetup(t, { sim: { tokenLifetimeMs: 4 * 60_000 } }); // 4 min life, refreshBefore 5m
  t.is((await postJson(`${gw.proxyUrl}${BASE}/card/list`, {})).json.code, 0);
  t.is(sim.control.counters().tokenCalls, 1);
  t.is((await postJson(`${gw.proxyUrl}${BASE}/card/list`, {})).json.code, 0);
  for (let i = 0; i < 250 && sim.control.counters().tokenCalls < 2; i++) await new Promise((r) => setTimeout(r, 20));
  t.is(sim.control.counters().tokenCalls, 2);
});
