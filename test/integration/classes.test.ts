import test from 'ava';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CLASSES } from '../../src/observability/metrics.js';
import { KEETA_SIM_CODES, startKeetaSim, startKeySecureSim } from '../../src/sim/index.js';
import { startGateway } from '../helpers/gateway.js';
import { postJson } from '../helpers/http.js';
import { DAY, KEETA_APP_ID, KEETA_SECRET, importPair } from '../helpers/keeta-setup.js';
import { KS_API_KEY } from '../helpers/keysecure-setup.js';

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * docs/protocols.md 4.4, end to end: each class is driven through the simulators and counted
 * exactly once per caller request, whatever happened inside.
 */
test('every error-code class of both upstreams is counted exactly', async (t) => {
  const keeta = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET });
  const ks = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY }] });
  const down = await closedPort();
  const gw = await startGateway(`upstreams:
  keeta:
    type: keeta
    baseUrl: ${keeta.baseUrl}
    appId: ${KEETA_APP_ID}
    appSecret: ${KEETA_SECRET}
    timeout: 1s
  keeta-down:
    type: keeta
    baseUrl: http://127.0.0.1:${down}/api/open
    appId: ${KEETA_APP_ID}
    appSecret: ${KEETA_SECRET}
  ks:
    type: keysecure
    baseUrl: ${ks.baseUrl}
    apiKey: ${KS_API_KEY}
    timeout: 1s
  ks-down:
    type: keysecure
    baseUrl: http://127.0.0.1:${down}
    apiKey: ${KS_API_KEY}
`);
  t.teardown(async () => {
    await gw.close();
    await keeta.close();
    await ks.close();
  });
  const pair = keeta.control.addMerchant({ merchantId: 'm', shopIds: ['42'], issuedAtMs: Date.now() - DAY });
  await importPair(gw.adminUrl, 'keeta', 'm', pair, ['42']);

  const k = (path: string, body: unknown) => postJson(`${gw.proxyUrl}/keeta${path}`, body);
  const order = () => k('/order/get', { orderViewId: 1, shopId: 42 });
  // Keeta
  t.is((await order()).json.code, 0); // success
  t.is((await k('/product/spustatus/batchupdatebycode', { shopId: 42, spuCodes: ['OK1', 'FAIL2'], sellStatus: 1 })).json.code, 0); // partial_failure
  keeta.control.failNext(1, { code: KEETA_SIM_CODES.SIG_INVALID });
  await order(); // signature_error
  t.is((await k('/order/get', { shopId: 42 })).json.code, KEETA_SIM_CODES.PARAM_INVALID); // business_error
  keeta.control.failNext(1, { code: KEETA_SIM_CODES.SERVER_ERROR });
  await order(); // server_error
  keeta.control.failNext(1, { code: 987654 });
  await order(); // unknown_error
  keeta.control.failNext(1, { httpStatus: 502, body: '<html>bad gateway</html>' });
  t.is((await order()).status, 502); // upstream_http_error
  keeta.control.setLatency(2500);
  t.is((await order()).status, 504); // timeout
  keeta.control.setLatency(0);
  t.is((await k('/order/get', { shopId: 999 })).json.error.code, 'UNKNOWN_MERCHANT'); // rejected
  t.is((await postJson(`${gw.proxyUrl}/keeta-down/base/callback/url/set`, {})).status, 502); // network_error (keeta-down)

  // KeySecure
  const s = (path: string, body: unknown = {}) => postJson(`${gw.proxyUrl}/ks/open-api/v1${path}`, body);
  t.is((await s('/card/list')).json.code, 0); // success
  for (const [code] of [[1008], [1003], [1009], [1001], [4001], [9999]] as const) {
    ks.control.failNext(1, { code });
    t.is((await s('/card/list')).json.code, code);
  }
  ks.control.failNext(2, { code: 1005 }); // still 1005 after the clock-skew retry
  t.is((await s('/card/list')).json.code, 1005);
  ks.control.failNext(1, { httpStatus: 500 });
  t.is((await s('/card/list')).status, 500);
  ks.control.setLatency(2500);
  t.is((await s('/card/list')).status, 504);
  ks.control.setLatency(0);
  const badJson = await postJson(`${gw.proxyUrl}/ks/open-api/v1/card/list`, '{nope');
  t.is(badJson.json.error.code, 'BAD_JSON');
  t.is((await postJson(`${gw.proxyUrl}/ks-down/open-api/v1/card/list`, {})).status, 502);

  const expected: Record<string, Record<string, number>> = {
    keeta: { success: 1, partial_failure: 1, signature_error: 1, business_error: 1, server_error: 1, unknown_error: 1, upstream_http_error: 1, timeout: 1, rejected: 1 },
    'keeta-down': { network_error: 1 },
    ks: { success: 1, auth_error: 1, ip_not_allowed: 1, rate_limited: 1, server_error: 1, business_error: 1, unknown_error: 1, timestamp_error: 1, upstream_http_error: 1, timeout: 1, rejected: 1 },
    'ks-down': { network_error: 1 },
  };
  for (const [upstream, byClass] of Object.entries(expected)) {
    for (const cls of CLASSES) {
      t.is(await gw.metric('countersign_requests_total', { upstream, class: cls }), byClass[cls] ?? 0, `${upstream} ${cls}`);
    }
  }
  t.is(await gw.metric('countersign_upstream_codes_total', { upstream: 'keeta', code: String(KEETA_SIM_CODES.SIG_INVALID) }), 1);
  t.is(await gw.metric('countersign_upstream_codes_total', { upstream: 'keeta', code: 'other' }), 1);
  t.is(await gw.metric('countersign_upstream_codes_total', { upstream: 'ks', code: '1005' }), 2, 'both attempts counted');
  t.is(await gw.metric('countersign_upstream_codes_total', { upstream: 'ks', code: 'other' }), 2, '4001 and 9999 are not documented codes');
  t.is(await gw.metric('countersign_retries_total', { upstream: 'ks', reason: 'clock_skew' }), 1);
  t.is(await gw.metric('countersign_request_duration_seconds_count', { upstream: 'ks', class: 'timeout' }), 1);
  t.is(await gw.metric('countersign_inflight_requests', { upstream: 'ks' }), 0);
  t.is(await gw.metric('countersign_store_up', { store: 'memory' }), 1);
  t.true((await gw.metric('countersign_token_seconds_to_expiry', { upstream: 'keeta' })) > 80 * 86_400);
  t.is(await gw.metric('countersign_tokens', { upstream: 'keeta', state: 'valid' }), 1);

  const metricsText = await gw.app.registry.metrics();
  for (const leak of [pair.accessToken, pair.refreshToken, KEETA_SECRET, KS_API_KEY, '"42"', 'shopId', '/order/get']) {
    t.false(metricsText.includes(leak), `metrics must not contain ${leak}`);
  }
});
