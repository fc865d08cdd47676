import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { startKeetaSim, WEBHOOK_RECIPES, type KeetaSim } from '../../../src/sim/index.js';
import { APP_ID, APP_SECRET, control } from './keeta-client.js';
import { startReceiver } from './receiver.js';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const MESSAGE = '{"opTime":1749008143025,"orderViewId":553440887574627,"shopId":145541,"status":30}';
// Written out by hand (docs/protocols.md 1.3, 1.9): every field but sig, keys sorted, values raw.
const SORTED = `appId=${APP_ID}&eventId=1002&message=${MESSAGE}&messageId=1930106161957212198&shopId=145541&timestamp=1749008143`;

async function startSim(t: ExecutionContext): Promise<KeetaSim> {
  const sim = await startKeetaSim({ appId: APP_ID, appSecret: APP_SECRET });
  t.teardown(() => sim.close());
  return sim;
}

const demoPush = (url: string) => ({ url, eventId: 1002, shopId: '145541', message: MESSAGE, messageId: '1930106161957212198', timestamp: 1749008143 });

test('webhook body: POST JSON with sig, eventId, appId, messageId (string), shopId (int64 number), message (JSON string), timestamp (s)', async (t) => {
  const receiver = await startReceiver(t);
  const sim = await startSim(t);
  const report = await sim.control.pushWebhook({ url: `${receiver.url}/hooks/keeta`, eventId: 1001, shopId: '9007199254740993', message: { orderViewId: 1, status: 20 } });
  t.is(receiver.received.length, 1);
  const got = receiver.received[0]!;
  t.is(got.method, 'POST');
  t.is(got.url, '/hooks/keeta');
  t.is(got.headers['content-type'], 'application/json; charset=utf-8');
  t.is(got.body, report.body);
  t.regex(got.body, /^\{"sig":"[0-9a-f]{64}","eventId":1001,"appId":3340612437,"messageId":"[1-9]\d{18}","shopId":9007199254740993,"message":"\{\\"orderViewId\\":1,\\"status\\":20\}","timestamp":\d{10}\}$/);
  const ts = Number(/"timestamp":(\d+)/.exec(got.body)![1]);
  t.true(Math.abs(ts - Date.now() / 1000) < 30);
  t.true(report.accepted);
  t.is(report.answers.length, 1);
  t.like(report.answers[0], { status: 200, json: { code: 0, message: 'Success' } });
  t.true(report.answers[0]!.ms >= 0);
});

test('each recipe signs as documented (pre-hash written out by hand)', async (t) => {
  const receiver = await startReceiver(t);
  const sim = await startSim(t);
  const own = `${receiver.url}/hooks/keeta`;
  const expected: Record<string, string> = {
    'url-query': sha256(`${own}?${SORTED}${APP_SECRET}`),
    'url-concat': sha256(`${own}${SORTED}${APP_SECRET}`),
    sorted: sha256(`${SORTED}${APP_SECRET}`),
    query: sha256(`?${SORTED}${APP_SECRET}`),
  };
  t.deepEqual([...WEBHOOK_RECIPES].sort(), Object.keys(expected).sort());
  for (const recipe of WEBHOOK_RECIPES) {
    const report = await sim.control.pushWebhook({ ...demoPush(`${own}?ignored=1`), recipe });
    t.is(report.sig, expected[recipe]!, recipe);
    t.true(receiver.received.at(-1)!.body.startsWith(`{"sig":"${expected[recipe]}",`));
  }
  // The default recipe is url-query; signUrl and secret can be overridden.
  t.is((await sim.control.pushWebhook(demoPush(own))).sig, expected['url-query']!);
  const other = await sim.control.pushWebhook({ ...demoPush(own), signUrl: 'https://hooks.example.com/hooks/keeta', secret: 's2' });
  t.is(other.sig, sha256(`https://hooks.example.com/hooks/keeta?${SORTED}s2`));
});

test('faults: a bad signature matches no recipe, a stale timestamp is signed as stale', async (t) => {
  const receiver = await startReceiver(t);
  const sim = await startSim(t);
  const own = `${receiver.url}/h`;
  const bad = await sim.control.pushWebhook({ ...demoPush(own), badSignature: true });
  t.regex(bad.sig, /^[0-9a-f]{64}$/);
  for (const pre of [`${own}?${SORTED}`, `${own}${SORTED}`, SORTED, `?${SORTED}`]) t.not(bad.sig, sha256(`${pre}${APP_SECRET}`));
  const stale = await sim.control.pushWebhook({ ...demoPush(own), staleBySec: 600 });
  t.regex(stale.body, /"timestamp":1749007543\}$/);
  t.is(stale.sig, sha256(`${own}?${SORTED.replace('timestamp=1749008143', 'timestamp=1749007543')}${APP_SECRET}`));
  const fresh = await sim.control.pushWebhook({ url: own, eventId: 1001, shopId: 1, message: '{}', staleBySec: 400 });
  const ts = Number(/"timestamp":(\d+)/.exec(fresh.body)![1]);
  t.true(Math.abs(ts - (Date.now() / 1000 - 400)) < 30);
});

test('duplicates: N identical copies sent concurrently, all answered', async (t) => {
  let inFlight = 0;
  let maxInFlight = 0;
  const receiver = await startReceiver(t, () => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    setTimeout(() => inFlight--, 150);
    return { delayMs: 150 };
  });
  const sim = await startSim(t);
  const report = await sim.control.pushWebhook({ ...demoPush(`${receiver.url}/h`), copies: 20 });
  t.is(receiver.received.length, 20);
  t.is(new Set(receiver.received.map((r) => r.body)).size, 1);
  t.is(report.answers.length, 20);
  t.true(maxInFlight > 1, 'copies overlap');
});

test('extra headers (X-Forwarded-For) and another source address reach the receiver', async (t) => {
  const receiver = await startReceiver(t);
  const sim = await startSim(t);
  await sim.control.pushWebhook({ ...demoPush(`${receiver.url}/h`), headers: { 'X-Forwarded-For': '43.135.86.188', 'content-type': 'application/json' }, sourceAddress: '127.0.0.2' });
  const got = receiver.received[0]!;
  t.is(got.headers['x-forwarded-for'], '43.135.86.188');
  t.is(got.headers['content-type'], 'application/json', 'an extra header replaces the usual one');
  t.is(got.remoteAddress, '127.0.0.2');
});

test('retry helper: resends the same bytes until accepted, reporting each answer; gives up after N attempts', async (t) => {
  const receiver = await startReceiver(t, (_r, i) => (i < 2 ? { status: i === 0 ? 500 : 200, body: i === 0 ? 'oops' : '{"code":502,"message":"delivery failed"}' } : {}));
  const sim = await startSim(t);
  const report = await sim.control.pushWebhookUntilAccepted(demoPush(`${receiver.url}/h`), { attempts: 5, intervalMs: 10 });
  t.true(report.accepted);
  t.deepEqual(report.answers.map((a) => a.status), [500, 200, 200]);
  t.is(report.answers[0]!.body, 'oops');
  t.like(report.answers[1]!.json, { code: 502 });
  t.is(receiver.received.length, 3);
  t.is(new Set(receiver.received.map((r) => r.body)).size, 1);

  const refusing = await startReceiver(t, () => ({ status: 401, body: '{"code":401,"message":"bad sig"}' }));
  const given = await sim.control.pushWebhookUntilAccepted(demoPush(`${refusing.url}/h`), { attempts: 3 });
  t.false(given.accepted);
  t.is(given.answers.length, 3);
  t.is(refusing.received.length, 3);
});

test('an unreachable receiver is reported, not thrown', async (t) => {
  const sim = await startSim(t);
  const report = await sim.control.pushWebhook(demoPush('http://127.0.0.1:1/h'));
  t.false(report.accepted);
  t.is(report.answers[0]!.status, 0);
  t.truthy(report.answers[0]!.error);
});

test('order events: 1001 placed, 1002 accepted, 1004 cancelled, int64 ids exact in the message', (t) => {
  return startSim(t).then((sim) => {
    const placed = sim.control.orderEvent('placed', { shopId: '9007199254740993', orderViewId: '1234567890123456789', opTime: 1 });
    t.deepEqual(placed, { eventId: 1001, shopId: '9007199254740993', message: '{"opTime":1,"orderViewId":1234567890123456789,"shopId":9007199254740993,"status":20}' });
    t.is(sim.control.orderEvent('accepted', { shopId: 5, orderViewId: 6, opTime: 1 }).message, '{"opTime":1,"orderViewId":6,"shopId":5,"status":30}');
    const cancelled = sim.control.orderEvent('cancelled', { shopId: 5, orderViewId: 6, opTime: 1 });
    t.is(cancelled.eventId, 1004);
    t.is(cancelled.message, '{"opTime":1,"orderViewId":6,"shopId":5,"status":50,"cancelReason":"customer cancelled","opType":10}');
    t.throws(() => sim.control.orderEvent('refunded' as never, { shopId: 5, orderViewId: 6 }));
    t.throws(() => sim.control.orderEvent('placed', { shopId: 2 ** 53 + 2, orderViewId: 6 }), { message: /int64/ });
  });
});

test('store-authorization events change the simulator first, then push 1301 / 1302 / 1303', async (t) => {
  const receiver = await startReceiver(t);
  const sim = await startSim(t);
  sim.control.addMerchant({ merchantId: 'brand-a', shopIds: ['11', '12'], brandName: 'A' });
  const url = `${receiver.url}/h`;
  const added = await sim.control.pushAuthorizationEvent({ url, merchantId: 'brand-a', kind: 'added', shopIds: ['13'] });
  t.deepEqual([...sim.control.merchant('brand-a')!.shopIds], ['11', '12', '13']);
  t.deepEqual(added.shopIds, ['13']);
  const body = JSON.parse(receiver.received[0]!.body) as Record<string, unknown>;
  t.like(body, { eventId: 1301, shopId: 13 });
  t.like(JSON.parse(body['message'] as string), { brandName: 'A', shopIds: [13], opType: 1 });

  await sim.control.pushAuthorizationEvent({ url, merchantId: 'brand-a', kind: 'cancelled', shopIds: ['11'], eventId: 9302 });
  t.deepEqual([...sim.control.merchant('brand-a')!.shopIds], ['12', '13']);
  t.like(JSON.parse(receiver.received[1]!.body), { eventId: 9302, shopId: 11 });

  const generated = await sim.control.pushAuthorizationEvent({ url, merchantId: 'brand-a', kind: 'added' });
  t.is(generated.shopIds.length, 1);
  t.true(sim.control.merchant('brand-a')!.shopIds.includes(generated.shopIds[0]!));

  const token = sim.control.merchant('brand-a')!.accessToken;
  await sim.control.pushAuthorizationEvent({ url, merchantId: 'brand-a', kind: 'revoked' });
  const after = sim.control.merchant('brand-a')!;
  t.false(after.authorized);
  t.false(after.validAccessTokens.includes(token));
  t.like(JSON.parse(receiver.received[3]!.body), { eventId: 1303, shopId: 12 });
  await t.throwsAsync(sim.control.pushAuthorizationEvent({ url, merchantId: 'nobody', kind: 'added' }), { instanceOf: TypeError });
});

test('Event 1: GET with appId, code, state, timestamp (ms) and a recipe sig over the other parameters', async (t) => {
  const receiver = await startReceiver(t);
  const sim = await startSim(t);
  const own = `${receiver.url}/hooks/keeta`;
  const report = await sim.control.pushEvent1({ url: own, code: 'c0de', state: 'x y', timestamp: 1749008143025 });
  t.true(report.accepted);
  const got = receiver.received[0]!;
  t.is(got.method, 'GET');
  t.is(got.body, '');
  const q = new URL(got.url, 'http://x').searchParams;
  t.deepEqual([...q.keys()], ['appId', 'code', 'state', 'timestamp', 'sig']);
  t.is(q.get('state'), 'x y');
  t.is(q.get('sig'), sha256(`${own}?appId=${APP_ID}&code=c0de&state=x y&timestamp=1749008143025${APP_SECRET}`));
  const sorted = await sim.control.pushEvent1({ url: own, code: 'c0de', state: 's', timestamp: 1, recipe: 'sorted' });
  t.true(sorted.url.endsWith(`&sig=${sha256(`appId=${APP_ID}&code=c0de&state=s&timestamp=1${APP_SECRET}`)}`));
  // Without url: the URL registered for event 1.
  await t.throwsAsync(sim.control.pushEvent1({ code: 'c' }), { message: /none registered for event 1/ });
  sim.control.setCallbackUrl(1, `${receiver.url}/registered`);
  await sim.control.pushEvent1({ code: 'c', copies: 2 });
  t.is(receiver.received.filter((r) => r.url.startsWith('/registered?')).length, 2);
});

test('pushes over HTTP control: /_sim/webhooks, /webhooks/retry, /order-events, /event1, /authorization-events; bad input is 400', async (t) => {
  const receiver = await startReceiver(t, (_r, i) => (i === 1 ? { status: 500 } : {}));
  const sim = await startSim(t);
  const root = sim.baseUrl.slice(0, -'/api/open'.length);
  const url = `${receiver.url}/h`;
  const pushed = await control(root, 'POST', '/webhooks', `{"url":"${url}","eventId":1002,"shopId":9007199254740993,"message":${JSON.stringify(MESSAGE)},"recipe":"sorted"}`);
  t.is(pushed.status, 200);
  t.true(pushed.json.accepted);
  t.regex(receiver.received[0]!.body, /"shopId":9007199254740993,/);
  const retried = await control(root, 'POST', '/webhooks/retry', { ...demoPush(url), attempts: 3 });
  t.deepEqual(retried.json.answers.map((a: { status: number }) => a.status), [500, 200]);
  const order = await control(root, 'POST', '/order-events', { url, kind: 'cancelled', shopId: '5', orderViewId: '1234567890123456789' });
  t.is(order.status, 200);
  t.like(JSON.parse(receiver.received.at(-1)!.body), { eventId: 1004, shopId: 5 });
  t.regex(receiver.received.at(-1)!.body, /orderViewId\\":1234567890123456789/);
  const e1 = await control(root, 'POST', '/event1', { url, code: 'abc', state: 's' });
  t.true(e1.json.accepted);
  sim.control.addMerchant({ merchantId: 'b', shopIds: ['7'] });
  const auth = await control(root, 'POST', '/authorization-events', { url, merchantId: 'b', kind: 'added', shopIds: ['8'] });
  t.deepEqual(auth.json.shopIds, ['8']);
  for (const bad of [{ url, eventId: 1 }, { url: 'ftp://x', eventId: 1, shopId: 1, message: '{}' }, { ...demoPush(url), recipe: 'md5' }, { ...demoPush(url), copies: 0 }, { ...demoPush(url), message: 'not json' }, { ...demoPush(url), secret: 5 }, { ...demoPush(url), signUrl: '' }]) {
    const r = await control(root, 'POST', '/webhooks', bad);
    t.is(r.status, 400, JSON.stringify(bad));
    t.truthy(r.json.error);
  }
  t.is((await control(root, 'POST', '/order-events', { url, kind: 'x', shopId: 1, orderViewId: 1 })).status, 400);
});
