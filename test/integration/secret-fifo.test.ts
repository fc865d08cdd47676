/**
 * A `<key>File` secret that becomes a FIFO (or sits on a stalled mount) must not hang the
 * process during a reload: the reload is refused with a config problem naming the path, and
 * health and proxy keep answering on the old config. In-process over real sockets: a blocking
 * read would stop this very event loop, and with it /healthz.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { buildApp } from '../../src/app/app.js';
import { loadConfig } from '../../src/config/load.js';
import { ConfigReloader } from '../../src/reload/reloader.js';
import { listenApp } from '../../src/app/server.js';
import { startKeetaSim } from '../../src/sim/index.js';
import { MemoryStore } from '../../src/tokens/memory-store.js';
import { rawRequest } from '../helpers/http.js';
import { KEETA_APP_ID, KEETA_SECRET } from '../helpers/keeta-setup.js';
import { captureLogs } from '../helpers/log-capture.js';

test('a FIFO as a secret file: the reload is refused naming the path, /healthz answers within a second and the old config serves', async (t) => {
  const sim = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET });
  t.teardown(() => sim.close());
  const dir = mkdtempSync(join(tmpdir(), 'cs-fifo-reload-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const secret = join(dir, 'app-secret');
  writeFileSync(secret, `${KEETA_SECRET}\n`);
  const file = join(dir, 'countersign.yaml');
  writeFileSync(
    file,
    `listen:\n  proxy: 127.0.0.1:0\n  admin: 127.0.0.1:0\nstore:\n  type: memory\nupstreams:\n  keeta:\n    type: keeta\n    baseUrl: ${sim.baseUrl}\n    appId: ${KEETA_APP_ID}\n    appSecretFile: ${secret}\n`,
  );
  const config = loadConfig(file, {});
  const { log, lines } = captureLogs();
  const app = buildApp({ config, store: new MemoryStore(), registry: new Registry(), logger: log, schedulerIntervalMs: 0 });
  await app.start();
  const listening = await listenApp(app, config.listen);
  t.teardown(() => listening.shutdown(2000));
  // The reloader as `serve` builds it: the default (non-blocking, bounded) loader.
  const reloader = new ConfigReloader({ file, live: app.live, log, metrics: app.metrics });
  const appLevel = () => rawRequest(listening.proxyUrl, { path: '/keeta/base/callback/url/set', body: '{"eventId":1001,"url":"https://x.test/h","isTest":1}' });
  t.is((await appLevel()).status, 200);

  // The secret is replaced by a FIFO nobody writes to (kubelet swapping a mount, an operator's mistake).
  rmSync(secret);
  execFileSync('mkfifo', [secret]);
  const reload = reloader.reload('SIGHUP');
  const t0 = Date.now();
  const health = await rawRequest(listening.adminUrl, { method: 'GET', path: '/healthz' });
  t.is(health.status, 200);
  t.true(Date.now() - t0 < 1000, `healthz took ${Date.now() - t0} ms`);
  const outcome = await reload;
  t.is(outcome.result, 'failure');
  if (outcome.result === 'failure') {
    t.true(
      outcome.problems.some((p) => p.startsWith(`upstreams.keeta.appSecretFile: cannot read ${secret} (not a regular file: it is a FIFO`)),
      outcome.problems.join('\n'),
    );
  }
  t.true(lines.some((l) => l.includes('config reload refused')));
  // The old config (and secret) still serves: the simulator accepts the signature.
  const after = await appLevel();
  t.is(after.status, 200);
  t.is(after.json<{ code: number }>().code, 0, after.body);
  t.is((await rawRequest(listening.adminUrl, { method: 'GET', path: '/healthz' })).status, 200);
});
