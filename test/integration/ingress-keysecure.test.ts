/**
 * KeySecure callbacks through the ingress listener, pushed by the KeySecure simulator over real
 * sockets: Signature V1, tampering, timestamps, dedupe by push id, delivery by action, and the
 * Auth decision within its budget.
 */
import test, { type ExecutionContext } from 'ava';
import { startKeySecureSim, type KeySecureSim } from '../../src/sim/index.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/http.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';

const API_KEY = 'ks-ingress-api-key-77a1';
const API_SECRET = 'ks-ingress-api-secret-5d2e';
const CALLBACK_APP_ID = 'ks-callback-app-id-31f0';

interface Setup {
  sim: KeySecureSim;
  gw: TestGateway;
  target: RecordingUpstream;
  url: string;
}

async function setup(t: ExecutionContext, o: { verify?: string; authBudget?: string; secretYaml?: string } = {}): Promise<Setup> {
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
      verify: ${o.verify ?? 'enforce'}
      appId: ${CALLBACK_APP_ID}
${o.secretYaml ?? ''}      timestampWindow: 2m
      deliver:
        - actions: [Auth]
          url: ${target.url}/authorize
${o.authBudget ? `          timeout: ${o.authBudget}\n` : ''}        - actions: ["*"]
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

test('a signed Consumption callback is delivered byte for byte and answered {code: 0, message: ""}', async (t) => {
  const s = await setup(t);
  const report = await s.sim.control.pushCallback({ url: s.url, action: 'Consumption' });
  t.deepEqual(report.answers.map((a) => [a.status, a.json]), [[200, { code: 0, message: '' }]]);
  t.is(s.target.requests.length, 1);
  const got = s.target.requests[0]!;
  t.is(got.url, '/events');
  t.is(got.body, report.body);
  t.true(/"amount":\d+\.\d0/.test(got.body) || got.body.includes('.'), 'amounts arrive as sent');
  t.is(got.headers['x-countersign-upstream'], 'keysecure-hk');
  t.is(got.headers['x-countersign-event'], 'Consumption');
  t.is(got.headers['x-countersign-message-id'], report.id);
  t.is(got.headers['x-countersign-verified'], 'true');
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keysecure-hk', event: 'Consumption', result: 'delivered' }), 1);
});

test('the derived vector of docs/protocols.md 2.5 verifies over the wire; a tampered field fails', async (t) => {
  const s = await setup(t, { secretYaml: '      secret: demo_secret\n' });
  const data = '{"card_no":"C202605220001","before_status":"Activated","after_status":"Frozen","reason":"merchant request","time":1716307200000}';
  // The vector's own appId and secret, a current timestamp (the window is 2 minutes).
  const vector = await s.sim.control.pushCallback({ url: s.url, action: 'Card_update', data, appId: CALLBACK_APP_ID, secret: 'demo_secret' });
  t.deepEqual(vector.answers[0]?.json, { code: 0, message: '' });
  const tampered = await s.sim.control.pushCallback({ url: s.url, action: 'Card_update', data, secret: 'demo_secret', tamper: { field: 'after_status', value: 'Activated' } });
  t.is(tampered.answers[0]?.status, 401);
  t.deepEqual(tampered.answers[0]?.json, { code: 401, message: 'signature does not match' });
  const otherSecret = await s.sim.control.pushCallback({ url: s.url, action: 'Card_update', data, secret: API_SECRET });
  t.is(otherSecret.answers[0]?.status, 401, 'callbacks.secret replaces the apiSecret default');
  const stale = await s.sim.control.pushCallback({ url: s.url, action: 'Card_update', data, secret: 'demo_secret', staleByMs: 5 * 60_000 });
  t.deepEqual(stale.answers[0]?.json, { code: 400, message: 'Timestamp outside the accepted window' });
  t.is(s.target.requests.length, 1);
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keysecure-hk', event: 'Card_update', result: 'bad_signature' }), 2);
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keysecure-hk', event: 'Card_update', result: 'stale' }), 1);
});

test("Auth: the target's {code, message} is the decision, passed back; a duplicate gets the same decision without a second delivery", async (t) => {
  const s = await setup(t);
  s.target.respond(() => ({ body: '{"code":3001,"message":"declined: over limit"}' }));
  const report = await s.sim.control.pushCallback({ url: s.url, action: 'Auth' });
  t.deepEqual(report.answers[0]?.json, { code: 3001, message: 'declined: over limit' });
  t.is(s.target.requests[0]?.url, '/authorize');
  const again = await s.sim.control.pushCallback({ url: s.url, action: 'Auth', id: report.id, data: JSON.parse(report.body).data });
  t.deepEqual(again.answers[0]?.json, { code: 3001, message: 'declined: over limit' });
  t.is(s.target.requests.length, 1);
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keysecure-hk', event: 'Auth', result: 'duplicate' }), 1);
});

test('Auth: a target slower than the budget is answered in time with a failure, and counted', async (t) => {
  const s = await setup(t, { authBudget: '200ms' });
  // A running gateway is warm: one callback first, so the measure is of the Auth path, not of start-up.
  await s.sim.control.pushCallback({ url: s.url, action: 'Consumption' });
  s.target.respond(() => ({ delayMs: 5000, body: '{"code":0,"message":"approved"}' }));
  const report = await s.sim.control.pushCallback({ url: s.url, action: 'Auth' });
  const answer = report.answers[0]!;
  t.is(answer.status, 200);
  t.deepEqual(answer.json, { code: 504, message: 'the authorization service did not answer within 200 ms' });
  // The gateway's own time from the callback's arrival to its answer is inside KeySecure's
  // 800 ms; the round trip seen by the simulator adds the (loaded) machine's scheduling, so
  // it only has to show that the gateway did not wait for the 5 s target.
  const line = s.gw.logs.map((l) => JSON.parse(l) as { msg: string; event?: string; result?: string; durationMs?: number }).find((l) => l.msg === 'callback' && l.event === 'Auth');
  t.is(line?.result, 'delivery_failed');
  t.true((line?.durationMs ?? Infinity) < 800, `answered after ${line?.durationMs} ms inside the gateway; KeySecure waits 800 ms`);
  t.true(answer.ms < 3000, `round trip ${answer.ms} ms`);
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keysecure-hk', event: 'Auth', result: 'delivery_failed' }), 1);
  t.is(await s.gw.metric('countersign_inbound_delivery_seconds_count', { upstream: 'keysecure-hk', event: 'Auth' }), 1);

  // Failure was not remembered: KeySecure's next try gets a real decision.
  s.target.respond(() => ({ body: '{"code":0,"message":"approved"}' }));
  const retry = await s.sim.control.pushCallback({ url: s.url, action: 'Auth', id: report.id, data: JSON.parse(report.body).data });
  t.deepEqual(retry.answers[0]?.json, { code: 0, message: 'approved' });
});

test('observe delivers a badly signed callback marked unverified; bad input is answered in KeySecure format', async (t) => {
  const s = await setup(t, { verify: 'observe' });
  const bad = await s.sim.control.pushCallback({ url: s.url, action: 'Consumption', badSignature: true });
  t.deepEqual(bad.answers[0]?.json, { code: 0, message: '' });
  t.is(s.target.requests[0]?.headers['x-countersign-verified'], 'false');
  t.is(await s.gw.metric('countersign_inbound_total', { upstream: 'keysecure-hk', event: 'Consumption', result: 'unverified' }), 1);

  const notJson = await rawRequest(s.gw.ingressUrl, { path: '/hooks/keysecure-hk', headers: { 'content-type': 'application/json' }, body: 'nope' });
  t.is(notJson.status, 400);
  t.is(notJson.json().code, 400);
  const noData = await rawRequest(s.gw.ingressUrl, { path: '/hooks/keysecure-hk', headers: { 'content-type': 'application/json' }, body: '{"id":"1","action":"Auth"}' });
  t.is(noData.status, 400);
  t.regex(noData.json().message, /data/);
  const get = await rawRequest(s.gw.ingressUrl, { method: 'GET', path: '/hooks/keysecure-hk' });
  t.is(get.status, 405);
  t.is(s.target.requests.length, 1);
});

test('a callback target that fails gets a failure answer, and the retry is delivered', async (t) => {
  const s = await setup(t);
  let n = 0;
  s.target.respond(() => (++n === 1 ? { status: 503 } : {}));
  const first = await s.sim.control.pushCallback({ url: s.url, action: 'Card_update' });
  t.is(first.answers[0]?.status, 502);
  t.deepEqual(first.answers[0]?.json, { code: 502, message: 'the internal target did not accept the callback' });
  const retry = await s.sim.control.pushCallback({ url: s.url, action: 'Card_update', id: first.id, data: JSON.parse(first.body).data });
  t.deepEqual(retry.answers[0]?.json, { code: 0, message: '' });
  t.is(s.target.requests.length, 2);
});
