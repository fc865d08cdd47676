/**
 * Transparent retries: each recoverable fault (a token rejection, a timestamp rejection) is
 * recovered once, so a request that meets both gets two retries, and the same fault twice gets
 * one.
 */
import test from 'ava';
import { KEETA_SIM_CODES } from '../../src/sim/index.js';
import { postJson } from '../helpers/http.js';
import { keetaSetup } from '../helpers/keeta-setup.js';
import { businessCodes, keySecureSetup } from '../helpers/keysecure-setup.js';

const CARDS = '/keysecure-hk/open-api/v1/card/list';

function accessLine(logs: string[]): Record<string, unknown> {
  const line = logs.filter((l) => l.includes('"msg":"request"')).at(-1);
  return JSON.parse(line ?? '{}') as Record<string, unknown>;
}

test('a timestamp rejection, then a token rejection (a skewed clock and a revoked token upstream): both recovered, success', async (t) => {
  const { sim, gw } = await keySecureSetup(t);
  t.is((await postJson(`${gw.proxyUrl}${CARDS}`, {})).json.code, 0);
  sim.control.setClockOffset(120_000);
  sim.control.revokeTokens();
  sim.control.reset();
  const res = await postJson(`${gw.proxyUrl}${CARDS}`, { page: 0 });
  t.is(res.json.code, 0, res.text);
  t.deepEqual(businessCodes(sim), [1005, 1007, 0]);
  t.is(sim.control.counters().tokenCalls, 1);
  t.is(await gw.metric('countersign_retries_total', { upstream: 'keysecure-hk', reason: 'clock_skew' }), 1);
  t.is(await gw.metric('countersign_retries_total', { upstream: 'keysecure-hk', reason: 'token' }), 1);
  t.is(await gw.metric('countersign_requests_total', { upstream: 'keysecure-hk', class: 'success' }), 2);
  t.like(accessLine(gw.logs), { retried: 'clock_skew,token', class: 'success' });
});

test('a token rejection, then a timestamp rejection (simulator faults in sequence): both recovered, success', async (t) => {
  const { sim, gw } = await keySecureSetup(t);
  t.is((await postJson(`${gw.proxyUrl}${CARDS}`, {})).json.code, 0);
  sim.control.reset();
  sim.control.failSequence([{ code: 1007 }, { code: 1005 }]);
  const res = await postJson(`${gw.proxyUrl}${CARDS}`, {});
  t.is(res.json.code, 0, res.text);
  t.deepEqual(businessCodes(sim), [1007, 1005, 0]);
  t.is(sim.control.counters().tokenCalls, 1, 'one renewal for the token rejection');
  t.like(accessLine(gw.logs), { retried: 'token,clock_skew' });
});

test('never two retries for the same reason, never more than two: the third fault passes through', async (t) => {
  const { sim, gw } = await keySecureSetup(t);
  t.is((await postJson(`${gw.proxyUrl}${CARDS}`, {})).json.code, 0);

  sim.control.reset();
  sim.control.failNext(2, { code: 1007 });
  const tokenTwice = await postJson(`${gw.proxyUrl}${CARDS}`, {});
  t.is(tokenTwice.json.code, 1007, 'the second 1007 reaches the caller unchanged');
  t.deepEqual(businessCodes(sim), [1007, 1007]);
  t.is(sim.control.counters().tokenCalls, 1);

  sim.control.reset();
  sim.control.failNext(2, { code: 1005 });
  const clockTwice = await postJson(`${gw.proxyUrl}${CARDS}`, {});
  t.is(clockTwice.json.code, 1005);
  t.deepEqual(businessCodes(sim), [1005, 1005]);

  sim.control.reset();
  sim.control.failSequence([{ code: 1005 }, { code: 1007 }, { code: 1005 }, { code: 1007 }]);
  const three = await postJson(`${gw.proxyUrl}${CARDS}`, {});
  t.is(three.json.code, 1005);
  t.deepEqual(businessCodes(sim), [1005, 1007, 1005], 'two retries, then the answer as it came');

  t.is(await gw.metric('countersign_retries_total', { upstream: 'keysecure-hk', reason: 'token' }), 2);
  t.is(await gw.metric('countersign_retries_total', { upstream: 'keysecure-hk', reason: 'clock_skew' }), 2);
  t.is(await gw.metric('countersign_requests_total', { upstream: 'keysecure-hk', class: 'auth_error' }), 1);
  t.is(await gw.metric('countersign_requests_total', { upstream: 'keysecure-hk', class: 'timestamp_error' }), 2);
});

test('Keeta: a token rejection twice gives exactly one renewal and one retry', async (t) => {
  const { sim, gw, addMerchant } = await keetaSetup(t);
  await addMerchant('brand-1', ['466663']);
  sim.control.failNext(2, { code: KEETA_SIM_CODES.ACCESS_TOKEN_INVALID });
  const res = await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 1, shopId: 466663 });
  t.is(res.json.code, KEETA_SIM_CODES.ACCESS_TOKEN_INVALID);
  const business = sim.control.counters().requests.filter((r) => !r.path.includes('/base/oauth/token'));
  t.deepEqual(business.map((r) => r.code), [KEETA_SIM_CODES.ACCESS_TOKEN_INVALID, KEETA_SIM_CODES.ACCESS_TOKEN_INVALID]);
  t.is(sim.control.counters().refreshCalls, 1);
  t.is(await gw.metric('countersign_retries_total', { upstream: 'keeta', reason: 'token' }), 1);
});
