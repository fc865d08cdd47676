import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKeetaSim } from '../../src/sim/index.js';
import { spawnCli } from '../helpers/cli.js';
import { startGateway } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/http.js';
import { importPair } from '../helpers/keeta-setup.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const APP_ID = '3340612437';
const APP_SECRET = 'access-log-app-secret-61d0c2';
const CALLER_TOKEN = 'access-log-caller-token-9b7e44';
const OTHER_TOKEN = 'access-log-other-token-2f8a13';

test('the access log keeps its fields and never shows a secret, wherever a caller puts one', async (t) => {
  const sim = await startKeetaSim({ appId: APP_ID, appSecret: APP_SECRET });
  const gw = await startGateway(`callers:
  - { name: svc, token: ${CALLER_TOKEN}, allow: ['keeta:*'] }
upstreams:
  keeta: { type: keeta, baseUrl: ${sim.baseUrl}, appId: ${APP_ID}, appSecret: ${APP_SECRET} }
`);
  t.teardown(async () => {
    await gw.close();
    await sim.close();
  });
  const pair = sim.control.addMerchant({ merchantId: 'm1', shopIds: ['466663'], issuedAtMs: Date.now() - 600_000 });
  await importPair(gw.adminUrl, 'keeta', 'm1', pair, ['466663']);
  const secrets = [APP_SECRET, CALLER_TOKEN, OTHER_TOKEN, pair.accessToken, pair.refreshToken];
  const secretHeaders = {
    'access-token': pair.accessToken,
    access_token: pair.accessToken,
    'api-key': APP_SECRET,
    'x-countersign-note': pair.refreshToken,
    cookie: `session=${CALLER_TOKEN}`,
    'x-app-secret': APP_SECRET,
  };
  const secretBody = JSON.stringify({ shopId: 466663, orderViewId: 1, accessToken: pair.accessToken, appSecret: APP_SECRET, note: CALLER_TOKEN, sig: pair.refreshToken });
  const auth = { authorization: `Bearer ${CALLER_TOKEN}` };

  const ok = await rawRequest(gw.proxyUrl, { path: '/keeta/order/get', body: secretBody, headers: { ...auth, ...secretHeaders } });
  t.is(ok.status, 200);
  const sent = [
    ok,
    // Secrets in the query, a wrong caller token, a body that is not JSON, an unknown upstream.
    await rawRequest(gw.proxyUrl, { path: `/keeta/order/get?access_token=${pair.accessToken}&appSecret=${APP_SECRET}`, body: secretBody, headers: auth }),
    await rawRequest(gw.proxyUrl, { path: '/keeta/order/get', body: secretBody, headers: { authorization: `Bearer ${OTHER_TOKEN}`, ...secretHeaders } }),
    await rawRequest(gw.proxyUrl, { path: '/keeta/order/get', body: `{"accessToken":"${pair.accessToken}"`, headers: auth }),
    await rawRequest(gw.proxyUrl, { path: `/nowhere/${'x'}?token=${CALLER_TOKEN}`, body: secretBody, headers: auth }),
  ];
  for (let i = 0; i < 100 && gw.logs.filter((l) => l.includes('"msg":"request"')).length < sent.length; i++) await new Promise((r) => setTimeout(r, 20));
  const access = gw.logs.filter((l) => l.includes('"msg":"request"')).map((l) => JSON.parse(l));
  t.is(access.length, sent.length, 'one access-log line per request');
  const text = gw.logText();
  for (const s of secrets) t.false(text.includes(s), `the log shows ${s.slice(0, 12)}…`);
  t.like(access[0], { level: 'info', service: 'countersign', upstream: 'keeta', method: 'POST', path: '/order/get', status: 200, class: 'success', caller: 'svc' });
  t.regex(access[0].time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.is(access[0].requestId, ok.headers['x-request-id']);
  t.is(typeof access[0].durationMs, 'number');
  t.true(access.slice(2).every((l) => typeof l.error === 'string' && l.status >= 400), 'refusals carry their error code');
});

test('SIGTERM loses no access-log line: the buffered log is written out before the process exits', async (t) => {
  const up = await startRecordingUpstream();
  t.teardown(() => up.close());
  const dir = mkdtempSync(join(tmpdir(), 'cs-access-log-'));
  const config = join(dir, 'countersign.yaml');
  writeFileSync(
    config,
    `listen: { proxy: 127.0.0.1:0, admin: 127.0.0.1:0 }
store: { type: memory }
upstreams:
  keeta: { type: keeta, baseUrl: ${up.url}/api/open, appId: 1, appSecret: access-log-sigterm-secret }
`,
  );
  const child = spawnCli(['serve', '--config', config], { LOG_LEVEL: 'info' });
  let stdout = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  for (let i = 0; i < 1500 && !stdout.includes('countersign listening'); i++) await new Promise((r) => setTimeout(r, 20));
  const proxyUrl = JSON.parse(stdout.split('\n').find((l) => l.includes('countersign listening'))!).proxy as string;

  const N = 200;
  let next = 0;
  const statuses: number[] = [];
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next++ < N) statuses.push((await rawRequest(proxyUrl, { path: '/keeta/base/callback/url/set', body: '{}' })).status);
    }),
  );
  child.kill('SIGTERM');
  t.is(await exited, 0);
  t.is(statuses.length, N);
  t.true(statuses.every((s) => s === 200));
  const lines = stdout.split('\n').filter((l) => l.includes('"msg":"request"'));
  t.is(lines.length, N, 'every answered request has its access-log line');
  t.true(stdout.includes('"msg":"stopped"'), 'the last line of all is written too');
});
