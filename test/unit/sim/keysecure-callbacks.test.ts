import test, { type ExecutionContext } from 'ava';
import { createHmac } from 'node:crypto';
import { parseJson } from '../../../src/sim/keeta/json.js';
import { DEFAULT_CALLBACK_APP_ID, startKeySecureSim, v1Signature, v1SignedString, type KeySecureSim, type KeySecureSimOptions } from '../../../src/sim/index.js';
import { startReceiver } from './receiver.js';

const hmac = (secret: string, s: string) => createHmac('sha256', secret).update(s, 'utf8').digest('hex');
const obj = (text: string) => {
  const v = parseJson(text);
  if (v.type !== 'object') throw new Error('object expected');
  return v;
};

async function startSim(t: ExecutionContext, extra: Partial<KeySecureSimOptions> = {}): Promise<KeySecureSim> {
  const sim = await startKeySecureSim({ apiKeys: [{ apiKey: 'k1', apiSecret: 'secret-1' }, { apiKey: 'k2', apiSecret: 'secret-2' }], ...extra });
  t.teardown(() => sim.close());
  return sim;
}

test('V1 signer reproduces the derived vector of docs/protocols.md 2.5', (t) => {
  const data = obj('{"card_no":"C202605220001","before_status":"Activated","after_status":"Frozen","reason":"merchant request","time":1716307200000}');
  t.is(
    v1SignedString('demo_app_id', '1716307200000', data),
    'after_status=Frozen&appId=demo_app_id&before_status=Activated&card_no=C202605220001&reason=merchant request&time=1716307200000&timestamp=1716307200000',
  );
  t.is(v1Signature('demo_app_id', '1716307200000', data, 'demo_secret'), '365664c882b7b44a0371b9dcd6d6a7b861572928c29ae090e7747324da93a72c');
});

test('V1: null fields skipped, empty strings kept, non-strings as compact JSON as sent, keys in code-unit order', (t) => {
  const data = obj('{ "b": null, "a": "", "amount": 12.50, "ok": true, "merchant_info": { "z": 1, "a": [ 1, "x" ] }, "Z": "upper" }');
  const s = v1SignedString('app', '1', data);
  t.is(s, 'Z=upper&a=&amount=12.50&appId=app&merchant_info={"z":1,"a":[1,"x"]}&ok=true&timestamp=1');
  t.is(v1Signature('app', '1', data, 'k'), hmac('k', s));
});

test('callback push: POST {id, action, data} with Timestamp, Signature (V1), Sign-Version V1, Timezone UTC+8', async (t) => {
  const receiver = await startReceiver(t, () => ({ body: '{"code":0,"message":""}' }));
  const sim = await startSim(t);
  const data = '{"card_no":"C202605220001","before_status":"Activated","after_status":"Frozen","reason":"merchant request","time":1716307200000}';
  const report = await sim.control.pushCallback({ url: `${receiver.url}/hooks/keysecure-hk`, action: 'Card_update', data, id: 'push-1', appId: 'demo_app_id', secret: 'demo_secret', timestamp: 1716307200000 });
  const got = receiver.received[0]!;
  t.is(got.method, 'POST');
  t.is(got.body, `{"id":"push-1","action":"Card_update","data":${data}}`);
  t.is(got.headers['content-type'], 'application/json');
  t.is(got.headers['timestamp'], '1716307200000');
  t.is(got.headers['signature'], '365664c882b7b44a0371b9dcd6d6a7b861572928c29ae090e7747324da93a72c');
  t.is(got.headers['sign-version'], 'V1');
  t.is(got.headers['timezone'], 'UTC+8');
  t.true(report.accepted);
  t.like(report, { id: 'push-1', action: 'Card_update', signature: '365664c882b7b44a0371b9dcd6d6a7b861572928c29ae090e7747324da93a72c', timestamp: '1716307200000' });
});

test('defaults: callbackAppId, the named key\'s apiSecret, a sample data per action with exact decimals, now', async (t) => {
  const receiver = await startReceiver(t);
  const sim = await startSim(t);
  for (const action of ['Auth', 'Consumption', 'Card_update'] as const) {
    const report = await sim.control.pushCallback({ url: `${receiver.url}/cb`, action, apiKey: 'k2' });
    const got = receiver.received.at(-1)!;
    const ts = got.headers['timestamp'] as string;
    t.true(Math.abs(Number(ts) - Date.now()) < 30_000);
    const dataText = /"data":(\{.*\})\}$/.exec(got.body)![1]!;
    t.is(got.headers['signature'], v1Signature(DEFAULT_CALLBACK_APP_ID, ts, obj(dataText), 'secret-2'), action);
    t.is(report.action, action);
    t.regex(report.id, /^[0-9a-f]{24}$/);
  }
  t.regex(receiver.received[0]!.body, /"amount":12\.50,/);
  t.regex(receiver.received[1]!.body, /"consume_relate_no":null,.*"fee_detail":\[\{"fee_type":"Fx_fee","amount":0\.10\}\]/);
  // First key's secret when none is named; callbackSecret / callbackAppId options override.
  await sim.control.pushCallback({ url: `${receiver.url}/cb`, action: 'Card_update' });
  const first = receiver.received.at(-1)!;
  t.is(first.headers['signature'], v1Signature(DEFAULT_CALLBACK_APP_ID, first.headers['timestamp'] as string, obj(/"data":(\{.*\})\}$/.exec(first.body)![1]!), 'secret-1'));
  const custom = await startSim(t, { callbackAppId: 'cb-app', callbackSecret: 'cb-secret' });
  await custom.control.pushCallback({ url: `${receiver.url}/cb`, action: 'Card_update', apiKey: 'k2' });
  const c = receiver.received.at(-1)!;
  t.is(c.headers['signature'], v1Signature('cb-app', c.headers['timestamp'] as string, obj(/"data":(\{.*\})\}$/.exec(c.body)![1]!), 'cb-secret'));
});

test('faults: bad signature, tampered field, stale timestamp, duplicates sent concurrently', async (t) => {
  const receiver = await startReceiver(t);
  const sim = await startSim(t);
  const base = { url: `${receiver.url}/cb`, action: 'Card_update' as const, data: '{"card_no":"C1","time":5}', appId: 'a', secret: 's', timestamp: 1000 };
  const good = v1Signature('a', '1000', obj(base.data), 's');
  const bad = await sim.control.pushCallback({ ...base, badSignature: true });
  t.not(bad.signature, good);
  t.regex(bad.signature, /^[0-9a-f]{64}$/);
  t.is(receiver.received.at(-1)!.body, `{"id":"${bad.id}","action":"Card_update","data":{"card_no":"C1","time":5}}`);

  const tampered = await sim.control.pushCallback({ ...base, tamper: { field: 'card_no', value: 'C2' } });
  t.is(tampered.signature, good, 'signed before the change');
  t.regex(receiver.received.at(-1)!.body, /"data":\{"card_no":"C2","time":5\}\}$/);
  const added = await sim.control.pushCallback({ ...base, tamper: { field: 'extra', value: 1 } });
  t.regex(added.body, /"data":\{"card_no":"C1","time":5,"extra":1\}\}$/);

  const stale = await sim.control.pushCallback({ ...base, staleByMs: 600_000, timestamp: 1_000_000 });
  t.is(receiver.received.at(-1)!.headers['timestamp'], '400000');
  t.is(stale.signature, v1Signature('a', '400000', obj(base.data), 's'));

  const before = receiver.received.length;
  const dup = await sim.control.pushCallback({ ...base, id: 'same', copies: 5 });
  t.is(dup.answers.length, 5);
  t.is(receiver.received.length - before, 5);
  t.is(new Set(receiver.received.slice(before).map((r) => r.body)).size, 1);
  await t.throwsAsync(sim.control.pushCallback({ ...base, action: 'Refund' as never }), { instanceOf: TypeError });
  await t.throwsAsync(sim.control.pushCallback({ ...base, data: '[1]' }), { instanceOf: TypeError });
  await t.throwsAsync(sim.control.pushCallback({ ...base, apiKey: 'nope', secret: undefined }), { message: /unknown apiKey/ });
  await t.throwsAsync(sim.control.pushCallback({ ...base, secret: 7 as never }), { message: /secret must be a non-empty string/ });
});

test('Auth: the answer and the time the receiver took are reported (800 ms budget)', async (t) => {
  const receiver = await startReceiver(t, (r) => (r.url === '/slow' ? { delayMs: 1200, body: '{"code":0,"message":""}' } : { body: '{"code":1,"message":"declined"}' }));
  const sim = await startSim(t);
  const fast = await sim.control.pushCallback({ url: `${receiver.url}/fast`, action: 'Auth' });
  t.like(fast.answers[0], { status: 200, json: { code: 1, message: 'declined' } });
  t.false(fast.accepted);
  t.is(fast.withinBudget, fast.answers[0]!.ms <= 800);
  const slow = await sim.control.pushCallback({ url: `${receiver.url}/slow`, action: 'Auth' });
  t.true(slow.answers[0]!.ms >= 1150, String(slow.answers[0]!.ms));
  t.true(slow.accepted);
  t.false(slow.withinBudget, 'answered after 800 ms');
  const other = await sim.control.pushCallback({ url: `${receiver.url}/fast`, action: 'Card_update' });
  t.is(other.withinBudget, undefined, 'the budget applies to Auth only');
});

test('over HTTP: POST /_sim/callbacks pushes and reports; bad input is 400', async (t) => {
  const receiver = await startReceiver(t);
  const sim = await startSim(t);
  const res = await fetch(`${sim.baseUrl}/_sim/callbacks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url: `${receiver.url}/cb`, action: 'Consumption', data: '{"amount":12.50,"x":null}', timestamp: 5 }),
  });
  t.is(res.status, 200);
  const report = (await res.json()) as { accepted: boolean; signature: string; body: string };
  t.true(report.accepted);
  t.is(report.signature, hmac('secret-1', `amount=12.50&appId=${DEFAULT_CALLBACK_APP_ID}&timestamp=5`));
  t.regex(receiver.received[0]!.body, /"data":\{"amount":12\.50,"x":null\}\}$/);
  const bad = await fetch(`${sim.baseUrl}/_sim/callbacks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: 'nope', action: 'Auth' }) });
  t.is(bad.status, 400);
  t.truthy(((await bad.json()) as { error: string }).error);
});
