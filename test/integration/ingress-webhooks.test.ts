/**
 * Keeta webhooks through the ingress listener: pushed by the Keeta simulator over real sockets,
 * verified by every candidate recipe, refused by source and signature, deduplicated, delivered
 * byte for byte, retried after a failing target; store-authorization events.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { rawRequest } from '../helpers/http.js';
import { adminTokens, authorizeAs, createAuthorization, keetaIngressSetup, PUBLIC_HOOK_URL, waitFor, type KeetaIngressSetup } from '../helpers/ingress-setup.js';
import { KEETA_SECRET } from '../helpers/keeta-setup.js';

const RECIPES = ['url-query', 'url-concat', 'sorted', 'query'] as const;
const BIG_SHOP = '9007199254740993';

/** Connect a one-shop merchant through the authorize link (no import). */
async function connect(s: KeetaIngressSetup, merchantId = 'cafe', shopIds = [BIG_SHOP]): Promise<string> {
  s.sim.control.addMerchantAccount({ merchantId, shopIds, brandName: 'Corner Cafe' });
  const page = await authorizeAs(s.gw, (await createAuthorization(s.gw)).url, merchantId);
  if (page.status !== 200) throw new Error(page.html);
  return (await adminTokens(s.gw)).find((m) => m.shopCount === shopIds.length)!.merchant;
}

const hooks = (s: KeetaIngressSetup) => `${s.gw.ingressUrl}/hooks/keeta`;

test('each candidate recipe verifies in enforce mode; the body arrives byte for byte with the countersign headers', async (t) => {
  const s = await keetaIngressSetup(t, { verify: 'enforce' });
  const merchant = await connect(s);
  for (const recipe of RECIPES) {
    const event = s.sim.control.orderEvent('accepted', { shopId: BIG_SHOP, orderViewId: '1234567890123456789' });
    const report = await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, recipe, ...event });
    t.deepEqual(report.answers.map((a) => [a.status, a.json]), [[200, { code: 0, message: 'Success' }]], recipe);
    const got = s.target.requests.at(-1)!;
    t.is(got.url, '/orders');
    t.is(got.body, report.body, `${recipe}: the body byte for byte`);
    t.true(got.body.includes(`"shopId":${BIG_SHOP}`), 'int64 intact');
    t.is(got.headers['x-countersign-upstream'], 'keeta');
    t.is(got.headers['x-countersign-event'], '1002');
    t.is(got.headers['x-countersign-message-id'], report.messageId);
    t.is(got.headers['x-countersign-merchant'], merchant);
    t.is(got.headers['x-countersign-verified'], 'true');
    t.is(await s.gw.metric('countersign_webhook_recipe_matches_total', { upstream: 'keeta', recipe }), 1, recipe);
  }
  t.is(s.target.requests.length, 4);
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keeta', event: '1002', result: 'delivered' }), 4);
  // An event no rule names goes to the "*" rule.
  const report = await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, eventId: 1101, shopId: BIG_SHOP, message: { opTime: 1 } });
  t.is(report.answers[0]?.status, 200);
  t.is(s.target.requests.at(-1)?.url, '/other');
});

test('enforce refuses a wrong signature, and a recipe that is not configured, without delivering', async (t) => {
  const s = await keetaIngressSetup(t, { verify: 'enforce', recipes: ['url-query'] });
  const event = s.sim.control.orderEvent('placed', { shopId: BIG_SHOP, orderViewId: '5' });
  const bad = await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, badSignature: true, ...event });
  t.is(bad.answers[0]?.status, 401);
  t.deepEqual(bad.answers[0]?.json, { code: 401, message: 'signature does not match' });
  const other = await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, recipe: 'sorted', ...event });
  t.is(other.answers[0]?.status, 401);
  const wrongUrl = await s.sim.control.pushWebhook({ url: hooks(s), recipe: 'url-query', ...event });
  t.is(wrongUrl.answers[0]?.status, 401, 'signed for another URL than webhooks.url');
  t.is(s.target.requests.length, 0);
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keeta', event: '1001', result: 'bad_signature' }), 3);
  t.is(await s.gw.metric('countersign_webhook_recipe_matches_total', { upstream: 'keeta', recipe: 'none' }), 3);
});

test('observe delivers every push, marks the unverified ones, and counts which recipe matched', async (t) => {
  const s = await keetaIngressSetup(t, { verify: 'observe' });
  const event = () => s.sim.control.orderEvent('cancelled', { shopId: BIG_SHOP, orderViewId: '9' });
  await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, recipe: 'sorted', ...event() });
  await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, recipe: 'sorted', ...event() });
  await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, recipe: 'query', ...event() });
  const bad = await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, badSignature: true, ...event() });
  t.deepEqual(bad.answers[0]?.json, { code: 0, message: 'Success' });
  t.deepEqual(
    s.target.requests.map((r) => r.headers['x-countersign-verified']),
    ['true', 'true', 'true', 'false'],
  );
  t.is(await s.gw.metric('countersign_webhook_recipe_matches_total', { upstream: 'keeta', recipe: 'sorted' }), 2);
  t.is(await s.gw.metric('countersign_webhook_recipe_matches_total', { upstream: 'keeta', recipe: 'query' }), 1);
  t.is(await s.gw.metric('countersign_webhook_recipe_matches_total', { upstream: 'keeta', recipe: 'none' }), 1);
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keeta', event: '1004', result: 'unverified' }), 1);
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keeta', event: '1004', result: 'delivered' }), 3);
});

test('a push from an address not listed is refused; X-Forwarded-For counts only from a trusted proxy', async (t) => {
  const s = await keetaIngressSetup(t, { sourceIps: '[127.0.0.1, 127.0.9.0/24]', trustedProxies: '[127.0.0.3]' });
  const event = () => s.sim.control.orderEvent('placed', { shopId: BIG_SHOP, orderViewId: '77' });
  const push = (extra: { sourceAddress?: string; headers?: Record<string, string> }) => s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, ...event(), ...extra });

  const fromOther = await push({ sourceAddress: '127.0.0.2' });
  t.is(fromOther.answers[0]?.status, 403);
  t.deepEqual(fromOther.answers[0]?.json, { code: 403, message: 'source address not allowed' });
  // A forwarded header from an untrusted peer is ignored.
  const spoofed = await push({ sourceAddress: '127.0.0.2', headers: { 'x-forwarded-for': '127.0.0.1' } });
  t.is(spoofed.answers[0]?.status, 403);
  // Through the trusted proxy, the forwarded client decides.
  const viaProxyBad = await push({ sourceAddress: '127.0.0.3', headers: { 'x-forwarded-for': '198.51.100.7' } });
  t.is(viaProxyBad.answers[0]?.status, 403);
  const viaProxyGood = await push({ sourceAddress: '127.0.0.3', headers: { 'x-forwarded-for': '127.0.9.44' } });
  t.is(viaProxyGood.answers[0]?.status, 200);
  const direct = await push({});
  t.is(direct.answers[0]?.status, 200);
  t.is(s.target.requests.length, 2);
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keeta', event: 'other', result: 'forbidden_source' }), 3);
});

test('the documented source list refuses loopback, and Event 1 passes the same check', async (t) => {
  const s = await keetaIngressSetup(t, { sourceIps: 'documented' });
  const event = s.sim.control.orderEvent('placed', { shopId: BIG_SHOP, orderViewId: '1' });
  const r = await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, ...event });
  t.is(r.answers[0]?.status, 403);
  s.sim.control.addMerchantAccount({ merchantId: 'm', shopCount: 1 });
  const link = await createAuthorization(s.gw);
  const code = s.sim.control.issueAuthCode('m');
  s.gw.secrets.add(code);
  const ev = await s.sim.control.pushEvent1({ code, state: link.state });
  t.is(ev.answers[0]?.status, 403);
  t.is(s.sim.control.counters().authCodeCalls, 0);
});

test('a stale push, bad JSON, missing fields, a body too large and an unknown upstream are refused in the right format', async (t) => {
  const s = await keetaIngressSetup(t, { timestampWindow: '2m', extraYaml: 'limits:\n  maxBodyBytes: 2048\n' });
  const event = s.sim.control.orderEvent('placed', { shopId: BIG_SHOP, orderViewId: '1' });
  const stale = await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, staleBySec: 180, ...event });
  t.deepEqual(stale.answers[0]?.json, { code: 400, message: 'timestamp outside the accepted window' });

  const badJson = await rawRequest(s.gw.ingressUrl, { path: '/hooks/keeta', headers: { 'content-type': 'application/json' }, body: '{"eventId":' });
  t.is(badJson.status, 400);
  t.is(badJson.json().code, 400);
  t.regex(badJson.json().message, /not valid JSON/);
  const missing = await rawRequest(s.gw.ingressUrl, { path: '/hooks/keeta', headers: { 'content-type': 'application/json' }, body: '{"eventId":1001}' });
  t.is(missing.status, 400);
  t.regex(missing.json().message, /messageId/);
  const large = await rawRequest(s.gw.ingressUrl, { path: '/hooks/keeta', headers: { 'content-type': 'application/json' }, body: `{"x":"${'a'.repeat(5000)}"}` });
  t.is(large.status, 413);
  t.is(large.json().code, 413);
  const chunkedLarge = await rawRequest(s.gw.ingressUrl, { path: '/hooks/keeta', body: `{"x":"${'a'.repeat(5000)}"}`, chunked: true });
  t.is(chunkedLarge.status, 413);
  const unknown = await rawRequest(s.gw.ingressUrl, { path: '/hooks/nope', body: '{}' });
  t.is(unknown.status, 404);
  t.is(unknown.json().error.code, 'UNKNOWN_UPSTREAM');
  // Nothing of the proxy or admin listeners lives here.
  for (const path of ['/metrics', '/admin/tokens', '/keeta/order/get', '/readyz']) {
    const r = await rawRequest(s.gw.ingressUrl, { method: 'GET', path });
    t.is(r.status, 404, path);
  }
  const health = await rawRequest(s.gw.ingressUrl, { method: 'GET', path: '/healthz' });
  t.deepEqual([health.status, health.json()], [200, { status: 'ok' }]);
  t.is(s.target.requests.length, 0);
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keeta', event: '1001', result: 'stale' }), 1);
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keeta', event: 'other', result: 'bad_request' }), 1);
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keeta', event: '1001', result: 'bad_request' }), 1);
});

test('a target answering 500 gets Keeta a failure answer; the retry is delivered, and later copies are duplicates', async (t) => {
  const s = await keetaIngressSetup(t);
  let calls = 0;
  s.target.respond(() => (++calls === 1 ? { status: 500, body: 'boom' } : {}));
  const event = s.sim.control.orderEvent('placed', { shopId: BIG_SHOP, orderViewId: '31' });
  const report = await s.sim.control.pushWebhookUntilAccepted({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, ...event }, { attempts: 3, intervalMs: 50 });
  t.deepEqual(report.answers.map((a) => [a.status, (a.json as { code: number }).code]), [[502, 502], [200, 0]]);
  t.is(s.target.requests.length, 2);
  t.is(s.target.requests[1]?.body, report.body);
  const copy = await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, messageId: report.messageId, ...event });
  t.deepEqual(copy.answers[0]?.json, { code: 0, message: 'Success' });
  t.is(s.target.requests.length, 2, 'a duplicate of a delivered message is not delivered again');
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keeta', event: '1001', result: 'delivery_failed' }), 1);
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keeta', event: '1001', result: 'duplicate' }), 1);
  t.is(await s.gw.metric('countersign_inbound_delivery_seconds_count', { upstream: 'keeta', event: '1001' }), 2);

});

test('concurrent copies on one replica are delivered once', async (t) => {
  const s = await keetaIngressSetup(t);
  s.target.respond(() => ({ delayMs: 200 }));
  const event = s.sim.control.orderEvent('placed', { shopId: BIG_SHOP, orderViewId: '41' });
  const report = await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, copies: 20, ...event });
  t.is(report.answers.length, 20);
  t.true(report.answers.every((a) => a.status === 200), JSON.stringify(report.answers.map((a) => a.status)));
  t.is(s.target.requests.length, 1);
});

test('store-authorization events re-read the shops, and a revoked merchant is marked and no longer used', async (t) => {
  const s = await keetaIngressSetup(t);
  await connect(s, 'chain', ['1001', '1002']);
  const before = await adminTokens(s.gw);
  t.deepEqual(before.map((m) => m.shopCount), [2]);
  const added = await s.sim.control.pushAuthorizationEvent({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, merchantId: 'chain', kind: 'added', shopIds: ['1003'] });
  t.is(added.answers[0]?.status, 200, added.answers[0]?.body);
  t.true(await waitFor(async () => (await adminTokens(s.gw))[0]?.shopCount === 3));
  const viaNewShop = await rawRequest(s.gw.proxyUrl, { path: '/keeta/order/get', headers: { 'content-type': 'application/json' }, body: '{"orderViewId":1,"shopId":1003}' });
  t.is(viaNewShop.json().code, 0, viaNewShop.body);
  t.is(s.target.requests.at(-1)?.headers['x-countersign-event'], '1301', 'also delivered to the "*" target');

  const cancelled = await s.sim.control.pushAuthorizationEvent({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, merchantId: 'chain', kind: 'cancelled', shopIds: ['1002'] });
  t.is(cancelled.answers[0]?.status, 200);
  t.is((await adminTokens(s.gw))[0]?.shopCount, 2);

  const revoked = await s.sim.control.pushAuthorizationEvent({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, merchantId: 'chain', kind: 'revoked' });
  t.is(revoked.answers[0]?.status, 200);
  t.deepEqual((await adminTokens(s.gw)).map((m) => m.state), ['revoked']);
  const refused = await rawRequest(s.gw.proxyUrl, { path: '/keeta/order/get', headers: { 'content-type': 'application/json' }, body: '{"orderViewId":1,"shopId":1001}' });
  t.is(refused.status, 503);
  t.is(refused.json().error.code, 'TOKEN_UNAVAILABLE');
  t.regex(refused.json().error.message, /revoked/);
  t.is(await s.gw.metric('countersign_tokens', { upstream: 'keeta', state: 'revoked' }), 1);

  // Connecting again replaces the revoked pair.
  const page = await authorizeAs(s.gw, (await createAuthorization(s.gw)).url, 'chain');
  t.is(page.status, 200, page.html);
  t.deepEqual((await adminTokens(s.gw)).map((m) => m.state), ['valid']);
});

test('no code, state, token or secret appears in any log line, metric or answer of the ingress', async (t) => {
  const s = await keetaIngressSetup(t, { verify: 'observe', sim: { oauthDelivery: 'both' } });
  await connect(s);
  const link = await createAuthorization(s.gw);
  const forgedCode = s.sim.control.issueAuthCode('cafe');
  s.gw.secrets.add(forgedCode);
  await fetch(`${s.gw.ingressUrl}/oauth/keeta/callback?code=${forgedCode}&state=${encodeURIComponent(link.state)}x`);
  await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, badSignature: true, ...s.sim.control.orderEvent('placed', { shopId: BIG_SHOP, orderViewId: '3' }) });
  const view = s.sim.control.merchant('cafe')!;
  s.gw.secrets.add(view.accessToken);
  s.gw.secrets.add(view.refreshToken);
  s.gw.secrets.add(KEETA_SECRET);
  t.true(s.gw.secrets.size >= 6);
  t.deepEqual(s.gw.leakedSecrets(), []);
  const metrics = await s.gw.app.registry.metrics();
  for (const secret of s.gw.secrets) t.false(metrics.includes(secret));
  // The log does say what happened.
  t.true(s.gw.logs.some((l) => l.includes('"msg":"merchant authorization"') && l.includes('"result":"connected"')));
  t.true(s.gw.logs.some((l) => l.includes('"msg":"webhook"') && l.includes('"result":"unverified"')));
  t.false(s.gw.logText().includes(createHash('sha256').update(link.state).digest('hex')), 'not even the state digest');
});
