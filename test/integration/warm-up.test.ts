import test from 'ava';
import { Registry } from 'prom-client';
import { buildApp } from '../../src/app/app.js';
import { parseConfig } from '../../src/config/load.js';
import { MemoryStore } from '../../src/tokens/memory-store.js';
import { metricValue } from '../helpers/gateway.js';
import { captureLogs } from '../helpers/log-capture.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

test('readiness waits for the warm-up, whose requests never reach a real upstream, metric or log line', async (t) => {
  const keeta = await startRecordingUpstream();
  const keysecure = await startRecordingUpstream();
  const config = parseConfig(
    `listen: { proxy: 127.0.0.1:0, admin: 127.0.0.1:0 }
callers:
  - { name: svc, token: warm-up-test-caller-token-1234, allow: ['*:*'] }
upstreams:
  keeta: { type: keeta, baseUrl: ${keeta.url}/api/open, appId: 1, appSecret: warm-up-test-secret }
  ks: { type: keysecure, baseUrl: ${keysecure.url}, apiKey: warm-up-test-api-key, timezone: UTC+8 }
`,
    { env: {} },
  );
  const { log, lines } = captureLogs('info');
  const registry = new Registry();
  const app = buildApp({ config, store: new MemoryStore(), registry, logger: log, schedulerIntervalMs: 0, warmUpRequests: 20, warmUpMaxMs: 60_000 });
  t.teardown(async () => {
    await app.close();
    await keeta.close();
    await keysecure.close();
  });

  let readyBeforeWarm = false;
  let polls = 0;
  const warmed = () => lines.some((l) => l.includes('"msg":"hot path warmed"'));
  const poll = setInterval(() => {
    polls++;
    if (app.readiness().ready && !warmed()) readyBeforeWarm = true;
  }, 2);
  const starting = app.start();
  t.false(app.readiness().ready, 'not ready while warming up');
  t.is(app.readiness().status, 'starting');
  await starting;
  clearInterval(poll);

  t.true(polls > 0);
  t.false(readyBeforeWarm, 'ready only once the warm-up is done');
  t.true(app.readiness().ready);
  const line = JSON.parse(lines.find((l) => l.includes('"msg":"hot path warmed"'))!);
  t.is(line.requests, 20);
  t.is(line.ok, 20, 'every warm-up request went through the whole pipeline and succeeded');
  t.is(keeta.requests.length, 0, 'no warm-up request reached the real Keeta upstream');
  t.is(keysecure.requests.length, 0, 'no warm-up request reached the real KeySecure upstream');
  const metrics = await registry.metrics();
  for (const upstream of ['keeta', 'ks']) {
    t.is(metricValue(metrics, 'countersign_requests_total', { upstream }), 0);
    t.is(metricValue(metrics, 'countersign_upstream_duration_seconds_count', { upstream }), 0);
  }
  t.false(metrics.includes('warm-up'), 'nothing of the warm-up app in the real registry');
  t.false(lines.some((l) => l.includes('"msg":"request"')), 'no access-log line for warm-up traffic');
});

test('without warmUpRequests the app starts without a warm-up', async (t) => {
  const config = parseConfig('listen: { proxy: 127.0.0.1:0, admin: 127.0.0.1:0 }\nupstreams:\n  ks: { type: keysecure, baseUrl: http://127.0.0.1:9, apiKey: k, timezone: UTC+8 }\n', { env: {} });
  const { log, lines } = captureLogs('info');
  const app = buildApp({ config, store: new MemoryStore(), registry: new Registry(), logger: log, schedulerIntervalMs: 0 });
  t.teardown(() => app.close());
  await app.start();
  t.true(app.readiness().ready);
  t.false(lines.some((l) => l.includes('hot path warmed')));
});
