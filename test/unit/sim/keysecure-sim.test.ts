import test, { type ExecutionContext } from 'ava';
import { authenticate } from '../../../src/sim/keysecure/auth.js';
import { KeySecureState } from '../../../src/sim/keysecure/state.js';
import { KEYSECURE_CODES, startKeySecureSim, type KeySecureSim, type KeySecureSimOptions } from '../../../src/sim/index.js';

const KEY = 'key-1';
const OTHER_KEY = 'key-2';
const FENCED_KEY = 'key-fenced';

async function startSim(t: ExecutionContext, extra: Partial<KeySecureSimOptions> = {}): Promise<KeySecureSim> {
  const sim = await startKeySecureSim({
    apiKeys: [
      { apiKey: KEY, apiSecret: 's1' },
      { apiKey: OTHER_KEY, apiSecret: 's2' },
      { apiKey: FENCED_KEY, whitelist: ['203.0.113.7'] },
    ],
    ...extra,
  });
  t.teardown(() => sim.close());
  return sim;
}

interface Req {
  method?: string;
  /** Header overrides; undefined value removes a default header. */
  headers?: Record<string, string | undefined>;
  body?: unknown;
  rawBody?: string;
}

interface Reply {
  status: number;
  text: string;
  json: Record<string, any>;
  headers: Headers;
}

function simNow(sim: KeySecureSim): number {
  return sim.control.clock().now;
}

async function ks(sim: KeySecureSim, path: string, req: Req = {}): Promise<Reply> {
  const headers: Record<string, string> = { 'Api-Key': KEY, Timestamp: String(simNow(sim) - 1000), 'Content-Type': 'application/json' };
  for (const [k, v] of Object.entries(req.headers ?? {})) {
    if (v === undefined) delete headers[k];
    else headers[k] = v;
  }
  const method = req.method ?? (req.body !== undefined || req.rawBody !== undefined ? 'POST' : 'GET');
  const body = req.rawBody ?? (req.body === undefined ? undefined : JSON.stringify(req.body));
  const res = await fetch(`${sim.baseUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  let json: Record<string, any> = {};
  try {
    json = JSON.parse(text) as Record<string, any>;
  } catch {
    // raw answer
  }
  return { status: res.status, text, json, headers: res.headers };
}

async function getToken(sim: KeySecureSim, apiKey = KEY): Promise<string> {
  const res = await ks(sim, '/open-api/v1/merchant/token', { headers: { 'Api-Key': apiKey } });
  if (res.json['code'] !== 0) throw new Error(`token failed: ${res.text}`);
  return res.json['data']['access_token'] as string;
}

async function control(sim: KeySecureSim, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${sim.baseUrl}/_sim${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: res.status, json: await res.json() };
}

// ---------------------------------------------------------------------------------------
// Header faults.

interface FaultCase {
  name: string;
  code: number;
  path?: string;
  prepare?: (sim: KeySecureSim, token: string) => void;
  req: (sim: KeySecureSim, token: string, otherToken: string) => Req;
}

const CARD_LIST = '/open-api/v1/card/list';
const K = KEYSECURE_CODES;

const FAULTS: FaultCase[] = [
  { name: 'Api-Key missing', code: K.API_KEY_REQUIRED, req: (_s, tok) => ({ body: {}, headers: { 'Api-Key': undefined, 'Access-Token': tok } }) },
  { name: 'Api-Key missing on the token endpoint', code: K.API_KEY_REQUIRED, path: '/open-api/v1/merchant/token', req: () => ({ headers: { 'Api-Key': undefined } }) },
  { name: 'Api-Key unknown', code: K.API_KEY_UNKNOWN, req: (_s, tok) => ({ body: {}, headers: { 'Api-Key': 'nope', 'Access-Token': tok } }) },
  { name: 'source IP not on the whitelist (set at start)', code: K.IP_NOT_ALLOWED, path: '/open-api/v1/merchant/token', req: () => ({ headers: { 'Api-Key': FENCED_KEY } }) },
  { name: 'source IP not on the whitelist (setWhitelist)', code: K.IP_NOT_ALLOWED, prepare: (sim) => sim.control.setWhitelist(KEY, ['10.0.0.1']), req: (_s, tok) => ({ body: {}, headers: { 'Access-Token': tok } }) },
  { name: 'Timestamp missing', code: K.TIMESTAMP_INVALID, req: (_s, tok) => ({ body: {}, headers: { Timestamp: undefined, 'Access-Token': tok } }) },
  { name: 'Timestamp 12 digits', code: K.TIMESTAMP_INVALID, req: (sim, tok) => ({ body: {}, headers: { Timestamp: String(simNow(sim)).slice(0, 12), 'Access-Token': tok } }) },
  { name: 'Timestamp 14 digits', code: K.TIMESTAMP_INVALID, req: (sim, tok) => ({ body: {}, headers: { Timestamp: `${simNow(sim)}0`, 'Access-Token': tok } }) },
  { name: 'Timestamp in seconds', code: K.TIMESTAMP_INVALID, req: (sim, tok) => ({ body: {}, headers: { Timestamp: String(Math.floor(simNow(sim) / 1000)), 'Access-Token': tok } }) },
  { name: 'Timestamp not digits', code: K.TIMESTAMP_INVALID, req: (sim, tok) => ({ body: {}, headers: { Timestamp: `${String(simNow(sim)).slice(0, 12)}x`, 'Access-Token': tok } }) },
  { name: 'Timestamp 61 s old', code: K.TIMESTAMP_INVALID, req: (sim, tok) => ({ body: {}, headers: { Timestamp: String(simNow(sim) - 61_000), 'Access-Token': tok } }) },
  { name: 'Timestamp 10 s in the future', code: K.TIMESTAMP_INVALID, req: (sim, tok) => ({ body: {}, headers: { Timestamp: String(simNow(sim) + 10_000), 'Access-Token': tok } }) },
  { name: 'Timestamp stale on the token endpoint', code: K.TIMESTAMP_INVALID, path: '/open-api/v1/merchant/token', req: (sim) => ({ headers: { Timestamp: String(simNow(sim) - 61_000) } }) },
  { name: 'Access-Token missing', code: K.ACCESS_TOKEN_REQUIRED, req: () => ({ body: {} }) },
  { name: 'Access-Token missing on GET', code: K.ACCESS_TOKEN_REQUIRED, path: '/open-api/v1/card/C1/detail', req: () => ({}) },
  { name: 'Access-Token unknown', code: K.ACCESS_TOKEN_INVALID, req: () => ({ body: {}, headers: { 'Access-Token': 'nope' } }) },
  { name: 'Access-Token expired', code: K.ACCESS_TOKEN_INVALID, prepare: (sim) => sim.control.expireTokens(KEY), req: (_s, tok) => ({ body: {}, headers: { 'Access-Token': tok } }) },
  { name: 'Access-Token revoked', code: K.ACCESS_TOKEN_INVALID, prepare: (sim) => sim.control.revokeTokens(), req: (_s, tok) => ({ body: {}, headers: { 'Access-Token': tok } }) },
  { name: "Access-Token of another Api-Key", code: K.ACCESS_TOKEN_INVALID, req: (_s, _tok, other) => ({ body: {}, headers: { 'Access-Token': other } }) },
  { name: 'POST body not JSON', code: K.INVALID_PARAMETER, req: (_s, tok) => ({ rawBody: '{"page":', headers: { 'Access-Token': tok } }) },
  { name: 'POST body a JSON array', code: K.INVALID_PARAMETER, req: (_s, tok) => ({ rawBody: '[]', headers: { 'Access-Token': tok } }) },
  { name: 'POST with Content-Type text/plain', code: K.INVALID_PARAMETER, req: (_s, tok) => ({ rawBody: '{}', headers: { 'Access-Token': tok, 'Content-Type': 'text/plain' } }) },
  { name: 'list size over 100', code: K.INVALID_PARAMETER, req: (_s, tok) => ({ body: { page: 0, size: 101 }, headers: { 'Access-Token': tok } }) },
  { name: 'card/apply with neither bin nor package', code: K.INVALID_PARAMETER, path: '/open-api/v1/card/apply', req: (_s, tok) => ({ body: { cardholder_no: 'CH1', card_unique_no: 'u1', card_type: 'Virtual' }, headers: { 'Access-Token': tok } }) },
  { name: 'card/apply with empty bin and package', code: K.INVALID_PARAMETER, path: '/open-api/v1/card/apply', req: (_s, tok) => ({ body: { card_bin_no: '', package_no: '', cardholder_no: 'CH1', card_unique_no: 'u1', card_type: 'Virtual' }, headers: { 'Access-Token': tok } }) },
  { name: 'card/status/update to Pending', code: K.INVALID_PARAMETER, path: '/open-api/v1/card/status/update', req: (_s, tok) => ({ body: { card_no: 'C1', status: 'Pending' }, headers: { 'Access-Token': tok } }) },
  { name: 'cardholder/apply without sumsub_share_token', code: K.INVALID_PARAMETER, path: '/open-api/v1/cardholder/apply', req: (_s, tok) => ({ body: { cardholder_unique_no: 'u' }, headers: { 'Access-Token': tok } }) },
  { name: 'detail of an unknown card', code: K.INVALID_PARAMETER, path: '/open-api/v1/card/C404/detail', req: (_s, tok) => ({ headers: { 'Access-Token': tok } }) },
];

for (const f of FAULTS) {
  test(`keysecure fault: ${f.name} → ${f.code}`, async (t) => {
    const sim = await startSim(t);
    const token = await getToken(sim);
    const otherToken = await getToken(sim, OTHER_KEY);
    sim.control.reset();
    f.prepare?.(sim, token);
    const res = await ks(sim, f.path ?? CARD_LIST, f.req(sim, token, otherToken));
    t.is(res.status, 200, res.text);
    t.is(res.json['code'], f.code, res.text);
    t.is(typeof res.json['msg'], 'string');
    t.false('data' in res.json, 'data only on success');
    t.is(sim.control.counters().requests[0]?.code, f.code);
  });
}

test('check order: Api-Key before IP before Timestamp before Access-Token', async (t) => {
  const sim = await startSim(t);
  const bad = { Timestamp: '1', 'Access-Token': undefined };
  t.is((await ks(sim, CARD_LIST, { body: {}, headers: { ...bad, 'Api-Key': undefined } })).json['code'], K.API_KEY_REQUIRED);
  t.is((await ks(sim, CARD_LIST, { body: {}, headers: { ...bad, 'Api-Key': 'nope' } })).json['code'], K.API_KEY_UNKNOWN);
  t.is((await ks(sim, CARD_LIST, { body: {}, headers: { ...bad, 'Api-Key': FENCED_KEY } })).json['code'], K.IP_NOT_ALLOWED);
  t.is((await ks(sim, CARD_LIST, { body: {}, headers: bad })).json['code'], K.TIMESTAMP_INVALID);
  t.is((await ks(sim, CARD_LIST, { body: {} })).json['code'], K.ACCESS_TOKEN_REQUIRED);
});

test('Timestamp boundaries: now and a little older are accepted; the window is configurable', async (t) => {
  const sim = await startSim(t, { timestampWindowMs: 10_000 });
  const token = await getToken(sim);
  const at = (ts: number) => ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': token, Timestamp: String(ts) } });
  t.is((await at(simNow(sim))).json['code'], 0);
  t.is((await at(simNow(sim) - 3000)).json['code'], 0);
  t.is((await at(simNow(sim) - 12_000)).json['code'], K.TIMESTAMP_INVALID);
});

test('Timestamp exactness (fixed clock): 1 ms ahead is rejected, exactly the window old is accepted, 1 ms more is not', (t) => {
  const state = new KeySecureState(86_400_000, 60_000);
  state.addKey(KEY, undefined, undefined);
  const now = 1_716_307_200_000;
  const at = (ts: number) => () => authenticate(state, { headers: { 'api-key': KEY, timestamp: String(ts) }, remoteAddress: '127.0.0.1', isTokenEndpoint: true, now });
  t.is(at(now)(), KEY);
  t.is(at(now - 60_000)(), KEY);
  t.throws(at(now + 1), { message: /future/ });
  t.throws(at(now - 60_001), { message: /old/ });
});

// ---------------------------------------------------------------------------------------
// Tokens.

test('token issue and use; expired_time is absolute ms, 24 h ahead; older tokens stay valid', async (t) => {
  const sim = await startSim(t);
  const res = await ks(sim, '/open-api/v1/merchant/token');
  t.is(res.json['code'], 0);
  t.is(res.json['msg'], 'Success');
  const { access_token, expired_time } = res.json['data'] as { access_token: string; expired_time: number };
  t.is(typeof access_token, 'string');
  t.true(Math.abs(expired_time - (Date.now() + 24 * 3600_000)) < 30_000);
  const use = await ks(sim, CARD_LIST, { body: { page: 0, size: 10 }, headers: { 'Access-Token': access_token } });
  t.deepEqual(use.json, { code: 0, msg: 'Success', data: { list: [], total: 0, page: 0, size: 10 } });
  const second = await getToken(sim);
  t.not(second, access_token);
  t.is((await ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': access_token } })).json['code'], 0, 'old token still valid');
  t.is((await ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': second } })).json['code'], 0);
  t.is(sim.control.counters().tokenCalls, 2);
});

test('token lifetime is configurable and enforced with the simulated clock', async (t) => {
  const sim = await startSim(t, { tokenLifetimeMs: 10_000 });
  const token = await getToken(sim);
  sim.control.setClockOffset(11_000);
  t.is((await ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': token } })).json['code'], K.ACCESS_TOKEN_INVALID);
});

test('revoke then 1007, a new token works; revoke/expire of one key leaves the other', async (t) => {
  const sim = await startSim(t);
  const token = await getToken(sim);
  const other = await getToken(sim, OTHER_KEY);
  sim.control.revokeTokens(KEY);
  t.is((await ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': token } })).json['code'], K.ACCESS_TOKEN_INVALID);
  t.is((await ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': other, 'Api-Key': OTHER_KEY } })).json['code'], 0);
  const fresh = await getToken(sim);
  t.is((await ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': fresh } })).json['code'], 0);
  sim.control.expireTokens();
  t.is((await ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': fresh } })).json['code'], K.ACCESS_TOKEN_INVALID);
  t.is((await ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': other, 'Api-Key': OTHER_KEY } })).json['code'], K.ACCESS_TOKEN_INVALID);
  t.throws(() => sim.control.revokeTokens('unknown-key'));
  t.throws(() => sim.control.setWhitelist('unknown-key', []));
});

test('Language: zh_CN gives Chinese msg, anything else English', async (t) => {
  const sim = await startSim(t);
  const zh = await ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': 'nope', Language: 'zh_CN' } });
  t.deepEqual(zh.json, { code: 1007, msg: 'Access-Token无效或已过期' });
  const zh2 = await ks(sim, CARD_LIST, { body: {}, headers: { Timestamp: '1', Language: 'zh_CN' } });
  t.deepEqual(zh2.json, { code: 1005, msg: '时间戳无效或已过期' });
  const en = await ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': 'nope', Language: 'en_US' } });
  t.deepEqual(en.json, { code: 1007, msg: 'Access-Token invalid or expired' });
  const other = await ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': 'nope', Language: 'fr_FR' } });
  t.is(other.json['msg'], 'Access-Token invalid or expired');
});

// ---------------------------------------------------------------------------------------
// Clock, failNext, latency.

test('clock offset shifts the Date header and the Timestamp window', async (t) => {
  const sim = await startSim(t);
  const token = await getToken(sim);
  const real = () => ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': token, Timestamp: String(Date.now()) } });
  const first = await real();
  t.is(first.json['code'], 0);
  t.true(Math.abs(Date.parse(first.headers.get('date') ?? '') - Date.now()) < 10_000);

  sim.control.setClockOffset(120_000); // simulator 2 min ahead: a real-time stamp is stale
  const stale = await real();
  t.is(stale.json['code'], K.TIMESTAMP_INVALID);
  t.true(Math.abs(Date.parse(stale.headers.get('date') ?? '') - (Date.now() + 120_000)) < 10_000);
  t.is((await ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': token } })).json['code'], 0, 'stamped from the Date-corrected clock');

  sim.control.setClockOffset(-5000); // simulator 5 s behind: a real-time stamp is in the future
  t.is((await real()).json['code'], K.TIMESTAMP_INVALID);
});

test('failNext with a code, with raw HTTP 500, and the token endpoint only when included', async (t) => {
  const sim = await startSim(t);
  const token = await getToken(sim);
  sim.control.failNext(2, { code: 1009 });
  t.is((await getToken(sim)).length > 0, true, 'token endpoint unaffected by default');
  t.deepEqual((await ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': token } })).json, { code: 1009, msg: 'Operation too frequent, please try again later' });
  t.is((await ks(sim, CARD_LIST, { body: {} })).json['code'], 1009, 'applies before authentication');
  t.is((await ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': token } })).json['code'], 0);

  sim.control.failNext(1);
  t.like((await ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': token } })).json, { code: 1001 });

  sim.control.failNext(1, { httpStatus: 500, body: 'Internal Server Error' });
  const raw = await ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': token } });
  t.is(raw.status, 500);
  t.is(raw.text, 'Internal Server Error');

  sim.control.failNext(1, { httpStatus: 503, includeTokenEndpoint: true });
  const tokenFail = await ks(sim, '/open-api/v1/merchant/token');
  t.is(tokenFail.status, 503);
  const counters = sim.control.counters();
  t.is(counters.tokenCalls, 3);
  t.deepEqual(counters.requests.map((r) => r.code), [0, 0, 1009, 1009, 0, 1001, 500, 503]);
});

test('failSequence: one fault per request in order, the token endpoint skipped unless included; over HTTP too', async (t) => {
  const sim = await startSim(t);
  const token = await getToken(sim);
  const card = () => ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': token } });
  sim.control.failSequence([{ code: 1007 }, { code: 1005 }, { httpStatus: 502, body: 'bad gateway' }]);
  t.is((await getToken(sim)).length > 0, true, 'token endpoint unaffected by default');
  t.is((await card()).json['code'], 1007);
  t.is((await card()).json['code'], 1005);
  t.is((await card()).status, 502);
  t.is((await card()).json['code'], 0, 'the sequence is used up');

  sim.control.failSequence([{ code: 1009 }, { code: 1001 }]);
  sim.control.failSequence([]);
  t.is((await card()).json['code'], 0, 'an empty sequence clears what was pending');
  t.throws(() => sim.control.failSequence([{ httpStatus: 99 }]), { message: /failSequence\[0\]: httpStatus/ });

  t.is((await control(sim, 'POST', '/fail-sequence', { faults: [{ code: 1005 }, { code: 1007, message: 'gone' }] })).json.count, 2);
  t.is((await card()).json['code'], 1005);
  t.like((await card()).json, { code: 1007, msg: 'gone' });
  t.is((await control(sim, 'POST', '/fail-sequence', { faults: [{ code: 'x' }] })).status, 400);
  t.is((await control(sim, 'POST', '/fail-sequence', {})).status, 400);
  t.deepEqual(
    sim.control.counters().requests.filter((r) => r.path === CARD_LIST).map((r) => r.code),
    [1007, 1005, 502, 0, 0, 1005, 1007],
  );
});

test('setLatency delays answers', async (t) => {
  const sim = await startSim(t);
  sim.control.setLatency(250);
  const started = Date.now();
  await getToken(sim);
  t.true(Date.now() - started >= 240);
});

// ---------------------------------------------------------------------------------------
// Endpoints.

test('cardholder → card → detail → list → status update → consume info', async (t) => {
  const sim = await startSim(t);
  const token = await getToken(sim);
  const h = { 'Access-Token': token };
  const holder = await ks(sim, '/open-api/v1/cardholder/apply', { body: { cardholder_unique_no: 'user-1', sumsub_share_token: 'tok' }, headers: h });
  t.is(holder.json['code'], 0, holder.text);
  const cardholderNo = holder.json['data']['cardholder_no'] as string;
  t.is(holder.json['data']['cardholder_unique_no'], 'user-1');

  const unknownHolder = await ks(sim, '/open-api/v1/card/apply', { body: { card_bin_no: '424242', cardholder_no: 'CH-none', card_unique_no: 'c-1', card_type: 'Virtual' }, headers: h });
  t.is(unknownHolder.json['code'], K.INVALID_PARAMETER);
  t.regex(unknownHolder.json['msg'] as string, /^cardholder_no /);

  const card = await ks(sim, '/open-api/v1/card/apply', { body: { card_bin_no: '424242', cardholder_no: cardholderNo, card_unique_no: 'c-1', card_type: 'Virtual' }, headers: h });
  t.is(card.json['code'], 0, card.text);
  const cardNo = card.json['data']['card_no'] as string;
  t.deepEqual(card.json['data'], { card_no: cardNo, card_unique_no: 'c-1' });
  const again = await ks(sim, '/open-api/v1/card/apply', { body: { card_bin_no: '424242', cardholder_no: cardholderNo, card_unique_no: 'c-1', card_type: 'Virtual' }, headers: h });
  t.is(again.json['data']['card_no'], cardNo, 'card_unique_no is idempotent');

  const physicalNoAddress = await ks(sim, '/open-api/v1/card/apply', { body: { package_no: 'P1', cardholder_no: cardholderNo, card_unique_no: 'c-2', card_type: 'Physical' }, headers: h });
  t.is(physicalNoAddress.json['code'], K.INVALID_PARAMETER);

  const detail = await ks(sim, `/open-api/v1/card/${cardNo}/detail`, { headers: h });
  t.like(detail.json, { code: 0, data: { card_no: cardNo, status: 'Activated', card_type: 'Virtual', cardholder_no: cardholderNo } });
  t.true(detail.text.includes('"balance":100.00'));

  const list = await ks(sim, CARD_LIST, { body: { page: 0, size: 10 }, headers: h });
  t.is(list.json['data']['total'], 1);
  t.is(list.json['data']['list'][0]['card_no'], cardNo);

  const frozen = await ks(sim, '/open-api/v1/card/status/update', { body: { card_no: cardNo, status: 'Frozen' }, headers: h });
  t.deepEqual(frozen.json, { code: 0, msg: 'Success' });
  t.like((await ks(sim, `/open-api/v1/card/${cardNo}/detail`, { headers: h })).json, { data: { status: 'Frozen' } });

  // Another Api-Key (another merchant account) does not see this card.
  const otherToken = await getToken(sim, OTHER_KEY);
  t.is((await ks(sim, `/open-api/v1/card/${cardNo}/detail`, { headers: { 'Api-Key': OTHER_KEY, 'Access-Token': otherToken } })).json['code'], K.INVALID_PARAMETER);

  const consume = await ks(sim, '/open-api/v1/card/consume/CN123/info', { headers: h });
  t.like(consume.json, { code: 0, data: { consume_no: 'CN123', card_no: cardNo, status: 'Success', type: 'Consumption' } });
  t.true(consume.text.includes('"amount":12.50'), 'BigDecimal amount kept exactly');
});

test('debug echo shows exactly what arrived (GET and POST)', async (t) => {
  const sim = await startSim(t);
  const token = await getToken(sim);
  const post = await ks(sim, '/open-api/v1/_echo?x=1&y=%20', { rawBody: '{"b": 1.50, "a":2}', headers: { 'Access-Token': token, Timezone: 'UTC+8' } });
  t.is(post.json['code'], 0);
  const data = post.json['data'];
  t.is(data['method'], 'POST');
  t.is(data['path'], '/open-api/v1/_echo');
  t.is(data['query'], 'x=1&y=%20');
  t.is(data['rawBody'], '{"b": 1.50, "a":2}');
  t.is(data['headers']['api-key'], KEY);
  t.is(data['headers']['access-token'], token);
  t.is(data['headers']['timezone'], 'UTC+8');
  const get = await ks(sim, '/open-api/v1/_echo', { headers: { 'Access-Token': token } });
  t.like(get.json, { code: 0, data: { method: 'GET', query: '', rawBody: '' } });
});

test('unknown path → HTTP 404, wrong method → HTTP 405, outside /open-api → 404', async (t) => {
  const sim = await startSim(t);
  const token = await getToken(sim);
  const missing = await ks(sim, '/open-api/v1/card/teleport', { body: {}, headers: { 'Access-Token': token } });
  t.is(missing.status, 404);
  const wrongMethod = await ks(sim, CARD_LIST, { method: 'GET', headers: { 'Access-Token': token } });
  t.is(wrongMethod.status, 405);
  const outside = await ks(sim, '/v1/card/list', { body: {} });
  t.is(outside.status, 404);
});

test('control over HTTP: clock, failNext, counters, whitelist, revoke, expire, reset', async (t) => {
  const sim = await startSim(t);
  const token = await getToken(sim);
  const list = (headers: Record<string, string | undefined> = {}) => ks(sim, CARD_LIST, { body: {}, headers: { 'Access-Token': token, ...headers } });

  t.like((await control(sim, 'POST', '/clock', { offsetMs: 600_000 })).json, { offsetMs: 600_000 });
  const res = await list({ Timestamp: String(Date.now()) });
  t.is(res.json['code'], K.TIMESTAMP_INVALID);
  t.true(Math.abs(Date.parse(res.headers.get('date') ?? '') - (Date.now() + 600_000)) < 10_000);
  await control(sim, 'POST', '/clock', { offsetMs: 0 });

  await control(sim, 'POST', '/fail-next', { count: 1, httpStatus: 500, body: { error: 'boom' } });
  const failed = await list();
  t.is(failed.status, 500);
  t.deepEqual(failed.json, { error: 'boom' });
  await control(sim, 'POST', '/fail-next', { count: 1, code: 1001, message: 'down for maintenance' });
  t.deepEqual((await list()).json, { code: 1001, msg: 'down for maintenance' });

  t.is((await control(sim, 'PUT', `/keys/${KEY}/whitelist`, { ips: ['192.0.2.1'] })).status, 200);
  t.is((await list()).json['code'], K.IP_NOT_ALLOWED);
  await control(sim, 'PUT', `/keys/${KEY}/whitelist`, { ips: ['127.0.0.1', '::1', '::ffff:127.0.0.1'] });
  t.is((await list()).json['code'], 0);
  t.is((await control(sim, 'PUT', '/keys/none/whitelist', { ips: [] })).status, 404);

  await control(sim, 'POST', '/tokens/expire', { apiKey: KEY });
  t.is((await list()).json['code'], K.ACCESS_TOKEN_INVALID);
  const fresh = await getToken(sim);
  await control(sim, 'POST', '/tokens/revoke', {});
  t.is((await list({ 'Access-Token': fresh })).json['code'], K.ACCESS_TOKEN_INVALID);

  await control(sim, 'POST', '/latency', { ms: 0 });
  const counters = await control(sim, 'GET', '/counters');
  t.is(counters.json.tokenCalls, 2);
  t.is(counters.json.requests.length, 9);
  t.true(counters.json.requests.every((r: { path: string }) => !r.path.startsWith('/_sim')));
  await control(sim, 'POST', '/reset');
  t.deepEqual((await control(sim, 'GET', '/counters')).json, { tokenCalls: 0, requests: [] });
});

test('startKeySecureSim validates its options', async (t) => {
  await t.throwsAsync(startKeySecureSim({ apiKeys: [] }));
  await t.throwsAsync(startKeySecureSim({ apiKeys: [{ apiKey: 'a' }, { apiKey: 'a' }] }));
});
