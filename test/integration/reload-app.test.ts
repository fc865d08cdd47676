/**
 * Config reload inside one process, over real sockets: what a reload changes, what a request
 * already running keeps, and what an invalid config does. (The spawned-process acceptance test
 * with Kubernetes-style Secret mounts is reload.test.ts.)
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { buildApp, type App } from '../../src/app/app.js';
import { loadConfig } from '../../src/config/load.js';
import { ConfigReloader } from '../../src/reload/reloader.js';
import { listenApp } from '../../src/app/server.js';
import { MemoryStore } from '../../src/tokens/memory-store.js';
import { metricValue } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/http.js';
import { importPair, KEETA_APP_ID, KEETA_SECRET } from '../helpers/keeta-setup.js';
import { captureLogs } from '../helpers/log-capture.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';
import { KEETA_SIM_CODES, startKeetaSim } from '../../src/sim/index.js';

interface FileGateway {
  app: App;
  proxyUrl: string;
  adminUrl: string;
  logs: string[];
  /** Write the config file (text) and reload it. */
  rewrite(text: string): ReturnType<ConfigReloader['reload']>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

async function fileGateway(t: ExecutionContext, text: string): Promise<FileGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'cs-reload-app-'));
  const file = join(dir, 'countersign.yaml');
  writeFileSync(file, text);
  const config = loadConfig(file, {});
  const { log, lines } = captureLogs();
  const app = buildApp({ config, store: new MemoryStore(), registry: new Registry(), logger: log, schedulerIntervalMs: 0 });
  await app.start();
  const listening = await listenApp(app, config.listen);
  t.teardown(() => listening.shutdown(2000));
  const reloader = new ConfigReloader({ file, live: app.live, log, metrics: app.metrics, load: (f) => loadConfig(f, {}) });
  return {
    app,
    proxyUrl: listening.proxyUrl,
    adminUrl: listening.adminUrl,
    logs: lines,
    rewrite(next) {
      writeFileSync(file, next);
      return reloader.reload('SIGHUP');
    },
    async metric(name, labels = {}) {
      return metricValue(await app.registry.metrics(), name, labels);
    },
  };
}

const LISTEN = 'listen:\n  proxy: 127.0.0.1:0\n  admin: 127.0.0.1:0\nstore:\n  type: memory\n';

function keySecureConfig(baseUrl: string, apiKey: string, extra = ''): string {
  return `${LISTEN}${extra}
upstreams:
  ks:
    type: keysecure
    baseUrl: ${baseUrl}
    apiKey: ${apiKey}
`;
}

/** A KeySecure-shaped upstream: tokens on the token path, `{code:0}` elsewhere unless told. */
async function keySecureUpstream(t: ExecutionContext) {
  const up = await startRecordingUpstream();
  t.teardown(() => up.close());
  let business: (n: number) => { body: string; delayMs?: number; headers?: Record<string, string> } = () => ({ body: '{"code":0,"msg":"ok","data":{}}' });
  let count = 0;
  up.respond((req) => {
    if (req.url.startsWith('/open-api/v1/merchant/token')) {
      return { body: JSON.stringify({ code: 0, data: { access_token: `tok-for-${req.headers['api-key']}`, expired_time: Date.now() + 86_400_000 } }) };
    }
    return business(++count);
  });
  return {
    up,
    setBusiness(fn: typeof business) {
      business = fn;
      count = 0;
    },
  };
}

test('a request in flight across a reload finishes on the config it started with, retry included; the next one uses the new config', async (t) => {
  const { up, setBusiness } = await keySecureUpstream(t);
  const gw = await fileGateway(t, keySecureConfig(up.url, 'api-key-old-000001'));
  // The first attempt is slow and answers 1005 (timestamp rejected): the proxy corrects its
  // clock and retries. The reload lands while the first attempt is at the upstream.
  setBusiness((n) =>
    n === 1 ? { delayMs: 1000, headers: { date: new Date().toUTCString() }, body: '{"code":1005,"msg":"timestamp invalid"}' } : { body: '{"code":0,"msg":"ok","data":{}}' },
  );
  const inFlight = rawRequest(gw.proxyUrl, { path: '/ks/open-api/v1/card/list', body: '{}' });
  while (!up.requests.some((r) => r.url === '/open-api/v1/card/list')) await new Promise((r) => setTimeout(r, 10));
  const outcome = await gw.rewrite(keySecureConfig(up.url, 'api-key-new-000002'));
  t.like(outcome, { result: 'success', applied: ['upstreams.ks.apiKey'], restartOnly: [] });
  const res = await inFlight;
  t.is(res.status, 200);
  t.is(res.json().code, 0);
  const business = up.requests.filter((r) => r.url === '/open-api/v1/card/list');
  t.deepEqual(
    business.map((r) => r.headers['api-key']),
    ['api-key-old-000001', 'api-key-old-000001'],
    'both attempts of the request that started before the reload carry the old Api-Key',
  );

  const after = await rawRequest(gw.proxyUrl, { path: '/ks/open-api/v1/card/list', body: '{}' });
  t.is(after.status, 200);
  t.is(up.requests.at(-1)!.headers['api-key'], 'api-key-new-000002');
  // The token service read the new key too: a renewal now fetches with it.
  const renewed = await fetch(`${gw.adminUrl}/admin/upstreams/ks/refresh`, { method: 'POST' });
  t.is(renewed.status, 200);
  const tokenCalls = up.requests.filter((r) => r.url.startsWith('/open-api/v1/merchant/token'));
  t.is(tokenCalls.at(-1)!.headers['api-key'], 'api-key-new-000002');
  t.false(gw.logs.join('\n').includes('api-key-new-000002'), 'the new key is never logged');
});

test('callers, the admin token and limits apply on reload; an added caller entry with the same name is accepted alongside', async (t) => {
  const { up } = await keySecureUpstream(t);
  const callers = (entries: Array<[string, string]>) =>
    `callers:\n${entries.map(([name, token]) => `  - name: ${name}\n    token: ${token}\n    allow: ["ks:*"]\n`).join('')}`;
  const admin = (token: string, maxBody: number) => `admin:\n  token: ${token}\nlimits:\n  maxBodyBytes: ${maxBody}\n`;
  const gw = await fileGateway(t, keySecureConfig(up.url, 'api-key-000001', admin('admin-token-old-0000001', 4096) + callers([['svc', 'caller-token-old-000001']])));
  const call = (token: string, body = '{}') =>
    rawRequest(gw.proxyUrl, { path: '/ks/open-api/v1/card/list', headers: { authorization: `Bearer ${token}` }, body });
  const adminStatus = async (token: string) => (await fetch(`${gw.adminUrl}/admin/tokens`, { headers: { authorization: `Bearer ${token}` } })).status;
  const big = JSON.stringify({ pad: 'x'.repeat(3000) });

  t.is((await call('caller-token-old-000001')).status, 200);
  t.is((await call('caller-token-new-000002')).status, 401);
  t.is((await call('caller-token-old-000001', big)).status, 200);
  t.is(await adminStatus('admin-token-old-0000001'), 200);

  // Overlap: the caller has both tokens; the admin token and the body limit change.
  const overlap = await gw.rewrite(
    keySecureConfig(up.url, 'api-key-000001', admin('admin-token-new-0000002', 1024) + callers([['svc', 'caller-token-old-000001'], ['svc', 'caller-token-new-000002']])),
  );
  t.like(overlap, { result: 'success', restartOnly: [] });
  t.deepEqual([...(overlap as { applied: string[] }).applied].sort(), ['admin.token', 'callers', 'limits.maxBodyBytes']);
  t.is((await call('caller-token-old-000001')).status, 200);
  t.is((await call('caller-token-new-000002')).status, 200);
  t.is((await call('caller-token-new-000002', big)).status, 413);
  t.is(await adminStatus('admin-token-old-0000001'), 401);
  t.is(await adminStatus('admin-token-new-0000002'), 200);

  // The old token removed.
  await gw.rewrite(keySecureConfig(up.url, 'api-key-000001', admin('admin-token-new-0000002', 1024) + callers([['svc', 'caller-token-new-000002']])));
  t.is((await call('caller-token-old-000001')).status, 401);
  t.is((await call('caller-token-new-000002')).status, 200);
  const accessLog = gw.logs.filter((l) => l.includes('"msg":"request"')).map((l) => JSON.parse(l) as { caller?: string; status: number });
  t.true(accessLog.filter((l) => l.status === 200).every((l) => l.caller === 'svc'), 'both tokens name the same caller in the access log');
  const text = gw.logs.join('\n');
  for (const secret of ['caller-token-old-000001', 'caller-token-new-000002', 'admin-token-old-0000001', 'admin-token-new-0000002']) t.false(text.includes(secret), secret);
});

test('an invalid config is refused: the old one stays, the failure is counted and every problem logged by path, never by value', async (t) => {
  const { up } = await keySecureUpstream(t);
  const good = keySecureConfig(up.url, 'api-key-000001', 'callers:\n  - name: svc\n    token: caller-token-good-00001\n    allow: ["ks:*"]\n');
  const gw = await fileGateway(t, good);
  const startedAt = await gw.metric('countersign_config_last_reload_success_timestamp_seconds');
  t.true(Math.abs(startedAt - Date.now() / 1000) < 60, 'set at start');
  t.is(await gw.metric('countersign_config_last_reload_successful'), 1);

  const bad = `${LISTEN}
callers:
  - name: svc
    token: leaked-short
    allow: ["ks:*"]
upstreams:
  ks:
    type: keysecure
    baseUrl: ${up.url}
    apiKey: api-key-should-not-be-logged-77
    timeout: soon
    apiSecretFile: ./no-such-file
`;
  const outcome = await gw.rewrite(bad);
  t.is(outcome.result, 'failure');
  const problems = (outcome as { problems: string[] }).problems;
  t.true(problems.includes('callers[0].token: must be at least 16 characters'), problems.join('\n'));
  t.true(problems.some((p) => p.startsWith('upstreams.ks.timeout: ')), problems.join('\n'));
  t.true(problems.some((p) => p.startsWith('upstreams.ks.apiSecretFile: cannot read')), problems.join('\n'));

  t.is(await gw.metric('countersign_config_reloads_total', { result: 'failure' }), 1);
  t.is(await gw.metric('countersign_config_reloads_total', { result: 'success' }), 0);
  t.is(await gw.metric('countersign_config_last_reload_successful'), 0);
  t.is(await gw.metric('countersign_config_last_reload_success_timestamp_seconds'), startedAt);
  const refused = gw.logs.map((l) => JSON.parse(l) as { msg: string; level: string; problems?: string[] }).find((l) => l.msg.startsWith('config reload refused'));
  t.truthy(refused);
  t.is(refused!.level, 'error');
  t.deepEqual(refused!.problems, problems);
  const text = gw.logs.join('\n');
  t.false(text.includes('leaked-short'));
  t.false(text.includes('api-key-should-not-be-logged-77'));

  // Still running on the old config.
  const res = await rawRequest(gw.proxyUrl, { path: '/ks/open-api/v1/card/list', headers: { authorization: 'Bearer caller-token-good-00001' }, body: '{}' });
  t.is(res.status, 200);
  t.is(up.requests.at(-1)!.headers['api-key'], 'api-key-000001');

  await new Promise((r) => setTimeout(r, 1100));
  t.like(await gw.rewrite(good.replace('api-key-000001', 'api-key-000002')), { result: 'success' });
  t.is(await gw.metric('countersign_config_last_reload_successful'), 1);
  t.is(await gw.metric('countersign_config_reloads_total', { result: 'success' }), 1);
  t.true((await gw.metric('countersign_config_last_reload_success_timestamp_seconds')) > startedAt);
});

test('Keeta tokens survive a reload with no refresh; the new appSecret signs requests and token refreshes', async (t) => {
  const sim = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET });
  t.teardown(() => sim.close());
  const cfg = (secret: string, timeout: string) => `${LISTEN}
upstreams:
  keeta:
    type: keeta
    baseUrl: ${sim.baseUrl}
    appId: ${KEETA_APP_ID}
    appSecret: ${secret}
    timeout: ${timeout}
    tokenErrorCodes: [${KEETA_SIM_CODES.ACCESS_TOKEN_INVALID}]
`;
  const gw = await fileGateway(t, cfg(KEETA_SECRET, '10s'));
  const pair = sim.control.addMerchant({ merchantId: 'brand', shopIds: ['466663'], issuedAtMs: Date.now() - 10 * 60_000 });
  await importPair(gw.adminUrl, 'keeta', 'brand', pair, ['466663']);
  const order = () => rawRequest(gw.proxyUrl, { path: '/keeta/order/get', body: '{"orderViewId":1,"shopId":466663}' });
  t.is((await order()).json().code, 0);

  const NEW = 'keeta-rotated-secret-2b9e';
  sim.control.setAppSecrets([KEETA_SECRET, NEW]);
  t.like(await gw.rewrite(cfg(NEW, '8s')), { result: 'success', restartOnly: [] });
  sim.control.setAppSecrets([NEW]);
  t.is((await order()).json().code, 0, 'signed with the new secret');
  t.is(sim.control.counters().tokenCalls, 0, 'no token call: the reload kept the token');
  t.is(await gw.metric('countersign_token_refreshes_total', { upstream: 'keeta', trigger: 'on_demand', result: 'success' }), 0);
  t.is(gw.app.cache.get('keeta', 'brand')?.accessToken, pair.accessToken);

  // A renewal signs the token call with the new secret as well.
  const refreshed = await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand/refresh`, { method: 'POST' });
  t.is(refreshed.status, 200);
  t.is(sim.control.counters().refreshCalls, 1);
  t.not(gw.app.cache.get('keeta', 'brand')?.accessToken, pair.accessToken);
  t.is((await order()).json().code, 0);
});
