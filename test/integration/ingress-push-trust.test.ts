/**
 * Pushes an attacker can replay or forge, over real sockets against the simulators (which sign
 * with their own code): a re-dated KeySecure callback, a signed callback under a new id or a
 * new action, a replay under the id of a push still to come; Keeta pushes that fail their
 * signature in observe mode (no revocation, no shop re-reads, no burnt message id); the
 * per-merchant limit on the shop re-reads genuine pushes trigger.
 */
import test, { type ExecutionContext } from 'ava';
import { startKeySecureSim, type KeySecureSim } from '../../src/sim/index.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/http.js';
import { adminTokens, authorizeAs, createAuthorization, keetaIngressSetup, PUBLIC_HOOK_URL, waitFor, type KeetaIngressSetup } from '../helpers/ingress-setup.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';

const API_KEY = 'ks-trust-api-key-4c1e';
const API_SECRET = 'ks-trust-api-secret-90ab';
const CALLBACK_APP_ID = 'ks-trust-callback-app-7d3f';

interface KsSetup {
  sim: KeySecureSim;
  gw: TestGateway;
  target: RecordingUpstream;
  url: string;
}

async function keysecure(t: ExecutionContext, verify = 'enforce'): Promise<KsSetup> {
  const sim = await startKeySecureSim({ apiKeys: [{ apiKey: API_KEY, apiSecret: API_SECRET }], callbackAppId: CALLBACK_APP_ID });
  const target = await startRecordingUpstream();
  const gw = await startGateway(
    `upstreams:
  keysecure-hk:
    type: keysecure
    baseUrl: ${sim.baseUrl}
    apiKey: ${API_KEY}
    apiSecret: ${API_SECRET}
    callbacks:
      verify: ${verify}
      appId: ${CALLBACK_APP_ID}
      timestampWindow: 5m
      deliver:
        - actions: [Auth]
          url: ${target.url}/authorize
        - actions: ["*"]
          url: ${target.url}/events
`,
    { ingress: true },
  );
  t.teardown(async () => {
    await gw.close();
    await sim.close();
    await target.close();
  });
  return { sim, gw, target, url: `${gw.ingressUrl}/hooks/keysecure-hk` };
}

/** The `data` JSON text of a body the simulator sent, exactly as sent. */
const dataText = (body: string) => body.slice(body.indexOf('"data":') + '"data":'.length, -1);
const authTargetHits = (s: KsSetup) => s.target.requests.filter((r) => r.url === '/authorize').length;

test('a re-dated KeySecure callback (data carrying its own timestamp) is refused and not delivered', async (t) => {
  const s = await keysecure(t);
  const hourAgo = Date.now() - 3_600_000;
  // Captured an hour ago (signed with that Timestamp); replayed with a fresh Timestamp header
  // and the old one inside data, where it would take the signed timestamp's place.
  const redated = await s.sim.control.pushCallback({
    url: s.url,
    action: 'Card_update',
    timestamp: hourAgo,
    tamper: { field: 'timestamp', value: String(hourAgo) },
    headers: { Timestamp: String(Date.now()) },
  });
  t.is(redated.answers[0]?.status, 400);
  t.deepEqual(redated.answers[0]?.json, { code: 400, message: 'data.timestamp: not allowed, it collides with the signed timestamp' });
  const appIdToo = await s.sim.control.pushCallback({ url: s.url, action: 'Card_update', tamper: { field: 'appId', value: 'other' } });
  t.is(appIdToo.answers[0]?.status, 400);
  // The captured callback as it was: outside the window.
  const asCaptured = await s.sim.control.pushCallback({ url: s.url, action: 'Card_update', timestamp: hourAgo });
  t.deepEqual(asCaptured.answers[0]?.json, { code: 400, message: 'Timestamp outside the accepted window' });
  t.is(s.target.requests.length, 0);
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keysecure-hk', event: 'Card_update', result: 'bad_request' }), 2);
});

test('a signed callback under a new id or a new action is not delivered again and reaches no Auth target', async (t) => {
  const s = await keysecure(t);
  const first = await s.sim.control.pushCallback({ url: s.url, action: 'Consumption' });
  t.deepEqual(first.answers[0]?.json, { code: 0, message: '' });
  t.is(s.target.requests.length, 1);
  const same = { url: s.url, data: dataText(first.body), timestamp: Number(first.timestamp) };

  const newId = await s.sim.control.pushCallback({ ...same, action: 'Consumption', id: 'replayed-under-a-new-id' });
  t.is(newId.signature, first.signature, 'the very signed payload');
  t.deepEqual(newId.answers[0]?.json, { code: 0, message: '' });
  s.target.respond(() => ({ body: '{"code":0,"message":"approved"}' }));
  const asAuth = await s.sim.control.pushCallback({ ...same, action: 'Auth', id: 'replayed-as-auth' });
  t.is(asAuth.answers[0]?.status, 400);
  t.regex((asAuth.answers[0]?.json as { message: string }).message, /action Auth does not match its data/);
  const asCardUpdate = await s.sim.control.pushCallback({ ...same, action: 'Card_update', id: 'replayed-as-card-update' });
  t.is(asCardUpdate.answers[0]?.status, 400);
  t.is(s.target.requests.length, 1, 'delivered once');
  t.is(authTargetHits(s), 0);

  // An Auth's data has the shape of a Consumption too: relabelled, it is recognised as seen.
  const auth = await s.sim.control.pushCallback({ url: s.url, action: 'Auth' });
  t.deepEqual(auth.answers[0]?.json, { code: 0, message: 'approved' });
  t.is(authTargetHits(s), 1);
  const authAsConsumption = await s.sim.control.pushCallback({ url: s.url, action: 'Consumption', id: 'auth-relabelled', data: dataText(auth.body), timestamp: Number(auth.timestamp) });
  t.deepEqual(authAsConsumption.answers[0]?.json, { code: 409, message: 'this callback was already received under another action' });
  const authNewId = await s.sim.control.pushCallback({ url: s.url, action: 'Auth', id: 'auth-new-id', data: dataText(auth.body), timestamp: Number(auth.timestamp) });
  t.deepEqual(authNewId.answers[0]?.json, { code: 0, message: 'approved' }, "the first decision, not the target's again");
  t.is(s.target.requests.length, 2);
  t.is(authTargetHits(s), 1);
});

test('a genuine callback is delivered even after an attacker replayed something under its id', async (t) => {
  const s = await keysecure(t);
  const captured = await s.sim.control.pushCallback({ url: s.url, action: 'Card_update', data: '{"card_no":"C1","before_status":"Activated","after_status":"Frozen","reason":"r","time":1}' });
  t.is(captured.answers[0]?.status, 200);
  // The attacker guesses the id of the next push and replays the captured one under it.
  const replay = await s.sim.control.pushCallback({ url: s.url, action: 'Card_update', id: 'next-push-id', data: dataText(captured.body), timestamp: Number(captured.timestamp) });
  t.is(replay.answers[0]?.status, 200);
  t.is(s.target.requests.length, 1);
  const genuine = await s.sim.control.pushCallback({ url: s.url, action: 'Card_update', id: 'next-push-id', data: '{"card_no":"C1","before_status":"Frozen","after_status":"Activated","reason":"r","time":2}' });
  t.deepEqual(genuine.answers[0]?.json, { code: 0, message: '' });
  t.is(s.target.requests.length, 2);
  t.is(s.target.requests[1]?.body, genuine.body);
  t.is(s.target.requests[1]?.headers['x-countersign-message-id'], 'next-push-id');
});

test('observe: an unverified callback never marks a genuine one as seen', async (t) => {
  const s = await keysecure(t, 'observe');
  const data = '{"card_no":"C9","before_status":"Activated","after_status":"Frozen","reason":"r","time":9}';
  const forged = await s.sim.control.pushCallback({ url: s.url, action: 'Card_update', id: 'p-9', data, badSignature: true });
  t.deepEqual(forged.answers[0]?.json, { code: 0, message: '' });
  const genuine = await s.sim.control.pushCallback({ url: s.url, action: 'Card_update', id: 'p-9', data });
  t.deepEqual(genuine.answers[0]?.json, { code: 0, message: '' });
  t.deepEqual(
    s.target.requests.map((r) => r.headers['x-countersign-verified']),
    ['false', 'true'],
  );
});

const BIG_SHOP = '9007199254740993';
const hooks = (s: KeetaIngressSetup) => `${s.gw.ingressUrl}/hooks/keeta`;
const resourceReads = (s: KeetaIngressSetup) => s.sim.control.counters().requests.filter((r) => r.path.includes('/base/authorized/resource/get')).length;

async function connect(s: KeetaIngressSetup, merchantId: string, shopIds: string[]): Promise<string> {
  s.sim.control.addMerchantAccount({ merchantId, shopIds, brandName: 'Corner Cafe' });
  const page = await authorizeAs(s.gw, (await createAuthorization(s.gw)).url, merchantId);
  if (page.status !== 200) throw new Error(page.html);
  return (await adminTokens(s.gw)).find((m) => m.shopCount === shopIds.length)!.merchant;
}

test('observe: forged store-authorization events are delivered flagged, but revoke nothing and re-read nothing', async (t) => {
  const s = await keetaIngressSetup(t, { verify: 'observe' });
  await connect(s, 'cafe', [BIG_SHOP]);
  await connect(s, 'other', ['77']);
  const readsBefore = resourceReads(s);

  const revoke = await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, eventId: 1303, shopId: BIG_SHOP, message: { shopId: 1 }, badSignature: true });
  t.deepEqual(revoke.answers[0]?.json, { code: 0, message: 'Success' });
  t.is(s.target.requests.at(-1)?.headers['x-countersign-verified'], 'false');
  t.deepEqual((await adminTokens(s.gw)).map((m) => m.state), ['valid', 'valid'], 'the merchant stays connected');
  const call = await rawRequest(s.gw.proxyUrl, { path: '/keeta/order/get', headers: { 'content-type': 'application/json' }, body: `{"orderViewId":1,"shopId":${BIG_SHOP}}` });
  t.is(call.json().code, 0, call.body);

  // An unknown shop would make every merchant be re-read: ten forged ones cost Keeta nothing.
  for (let i = 0; i < 10; i++) {
    const r = await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, eventId: 1301, shopId: String(5000 + i), message: { shopId: 1 }, badSignature: true });
    t.is(r.answers[0]?.status, 200);
  }
  const cancel = await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, eventId: 1302, shopId: '77', message: { shopId: 77 }, badSignature: true });
  t.is(cancel.answers[0]?.status, 200);
  t.is(resourceReads(s), readsBefore);
  t.deepEqual((await adminTokens(s.gw)).map((m) => [m.state, m.shopCount]), [['valid', 1], ['valid', 1]]);
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keeta', event: '1301', result: 'unverified' }), 10);
  t.true(s.gw.logs.some((l) => l.includes('an unverified store-authorization event was not acted on')));
});

test('observe: a forged push naming a real messageId does not burn it', async (t) => {
  const s = await keetaIngressSetup(t, { verify: 'observe' });
  await connect(s, 'cafe', [BIG_SHOP]);
  const event = s.sim.control.orderEvent('placed', { shopId: BIG_SHOP, orderViewId: '55' });
  const messageId = '1930106161957212198';
  const forged = await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, messageId, badSignature: true, ...event, message: '{"orderViewId":66}' });
  t.deepEqual(forged.answers[0]?.json, { code: 0, message: 'Success' });
  const genuine = await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, messageId, ...event });
  t.deepEqual(genuine.answers[0]?.json, { code: 0, message: 'Success' });
  t.deepEqual(
    s.target.requests.map((r) => [r.headers['x-countersign-message-id'], r.headers['x-countersign-verified']]),
    [
      [messageId, 'false'],
      [messageId, 'true'],
    ],
  );
  t.is(s.target.requests[1]?.body, genuine.body);
  // The genuine one is now remembered: Keeta's retry of it is a duplicate.
  const retry = await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, messageId, ...event });
  t.deepEqual(retry.answers[0]?.json, { code: 0, message: 'Success' });
  t.is(s.target.requests.length, 2);
});

test("genuine store-authorization pushes re-read a merchant's shops at most at its rate, and the last change is seen", async (t) => {
  const s = await keetaIngressSetup(t, { verify: 'enforce', webhookTimeout: '1s' });
  await connect(s, 'chain', ['1001', '1002']);
  const before = resourceReads(s);
  // Keeta adds a shop, then ten pushes about it arrive at once.
  const added = await s.sim.control.pushAuthorizationEvent({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, merchantId: 'chain', kind: 'added', shopIds: ['1003'], copies: 1 });
  t.is(added.answers[0]?.status, 200);
  const pushes = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, eventId: 1301, shopId: '1001', message: { shopId: 1001, n: i } }),
    ),
  );
  t.true(pushes.every((p) => p.answers[0]?.status === 200), JSON.stringify(pushes.map((p) => p.answers[0]?.status)));
  const reads = resourceReads(s) - before;
  // One for the first push; the ten others share at most two (one running, one after it).
  t.true(reads >= 2 && reads <= 3, `${reads} re-reads for 11 pushes`);
  t.true(await waitFor(async () => (await adminTokens(s.gw))[0]?.shopCount === 3));

  // The burst (3) is spent: one more push is answered (within webhooks.timeout) without a
  // re-read now; its re-read waits for the merchant's rate (one per 10 s).
  const spent = resourceReads(s);
  const started = Date.now();
  const more = await s.sim.control.pushWebhook({ url: hooks(s), signUrl: PUBLIC_HOOK_URL, eventId: 1301, shopId: '1001', message: { shopId: 1001, n: 11 } });
  t.is(more.answers[0]?.status, 200);
  t.true(Date.now() - started < 5000);
  t.is(resourceReads(s), spent);
  t.true(s.gw.logs.some((l) => l.includes('shop re-reads are still waiting for their per-merchant rate')));
});
