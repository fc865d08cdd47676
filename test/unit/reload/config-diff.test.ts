import test from 'ava';
import { parseConfig, type Config } from '../../../src/config/load.js';
import { changedPaths, planReload, restartUnit } from '../../../src/reload/config-diff.js';

const ENV = { KEETA_APP_SECRET: 'keeta-secret-old-1', KS_KEY: 'ks-api-key-old-1' };

function config(extra: { keeta?: string; ks?: string; top?: string; listen?: string; store?: string; more?: string } = {}, env: Record<string, string> = ENV): Config {
  return parseConfig(
    `listen:
${extra.listen ?? '  proxy: 127.0.0.1:8080\n  admin: 127.0.0.1:9090'}
store:
${extra.store ?? '  type: memory'}
${extra.top ?? ''}
upstreams:
  keeta:
    type: keeta
    baseUrl: http://keeta.test/api/open
    appId: 1
    appSecret: \${KEETA_APP_SECRET}
${extra.keeta ?? ''}
  keysecure-hk:
    type: keysecure
    baseUrl: http://ks.test
    apiKey: \${KS_KEY}
${extra.ks ?? ''}
${extra.more ?? ''}`,
    { env, source: '/etc/countersign/config.yaml' },
  );
}

test('changedPaths walks objects key by key, compares arrays whole, and ignores where the config came from', (t) => {
  t.deepEqual(changedPaths({ a: 1, b: { c: [1, 2], d: 'x' } }, { a: 1, b: { c: [1, 2], d: 'y' } }), [['b', 'd']]);
  t.deepEqual(changedPaths({ a: [1, 2] }, { a: [2, 1] }), [['a']]);
  t.deepEqual(changedPaths({ a: { x: 1 } }, {}), [['a']]);
  t.deepEqual(changedPaths({ source: 'a', files: ['x'], k: 1 }, { source: 'b', files: [], k: 1 }), []);
  t.deepEqual(changedPaths({ o: [{ a: 1 }] }, { o: [{ a: 1 }] }), []);
});

test('restartUnit: listen keys, the whole store, upstream set and type, and the token service timings', (t) => {
  t.deepEqual(restartUnit(['listen', 'proxy']), ['listen', 'proxy']);
  t.deepEqual(restartUnit(['store', 'url']), ['store']);
  t.deepEqual(restartUnit(['upstreams', 'new']), ['upstreams', 'new']);
  t.deepEqual(restartUnit(['upstreams', 'keeta', 'type']), ['upstreams', 'keeta']);
  t.deepEqual(restartUnit(['upstreams', 'keeta', 'refreshBefore']), ['upstreams', 'keeta', 'refreshBefore']);
  for (const p of [['upstreams', 'keeta', 'appSecret'], ['upstreams', 'keeta', 'timeout'], ['callers'], ['admin', 'token'], ['limits', 'maxBodyBytes'], ['upstreams', 'keeta', 'rateLimits']]) {
    t.is(restartUnit(p), undefined, p.join('.'));
  }
});

test('secrets, callers, the admin token, limits and upstream options apply; nothing needs a restart', (t) => {
  const running = config();
  const next = config(
    {
      keeta: '    timeout: 3s\n    tokenErrorCodes: [115000105]',
      ks: '    timestampMargin: 2s',
      top: 'admin:\n  token: admin-token-new-1234567\nlimits:\n  maxBodyBytes: 2048\ncallers:\n  - name: svc\n    token: caller-token-1234567890\n    allow: ["keeta:*"]',
    },
    { KEETA_APP_SECRET: 'keeta-secret-new-2', KS_KEY: 'ks-api-key-new-2' },
  );
  const plan = planReload(running, next);
  t.deepEqual(plan.restartOnly, []);
  t.deepEqual(plan.problems, []);
  t.deepEqual(
    [...plan.applied].sort(),
    [
      'admin.token',
      'callers',
      'limits.maxBodyBytes',
      'upstreams.keeta.appSecret',
      'upstreams.keeta.timeout',
      'upstreams.keeta.tokenErrorCodes',
      'upstreams.keysecure-hk.apiKey',
      'upstreams.keysecure-hk.timestampMargin',
    ].sort(),
  );
  t.deepEqual(plan.config, next);
  t.true(Object.isFrozen(plan.config) && Object.isFrozen(plan.config.upstreams.keeta));
  // Paths only: the plan never carries a value.
  t.false(JSON.stringify([plan.applied, plan.restartOnly]).includes('keeta-secret-new-2'));
});

test('restart-only changes keep their running values while everything else applies', (t) => {
  const running = config();
  const next = config(
    {
      listen: '  proxy: 127.0.0.1:8181\n  admin: 127.0.0.1:9090',
      store: '  type: redis\n  url: redis://10.0.0.1:6379/0',
      keeta: '    refreshBefore: 2d\n    timeout: 4s',
      more: '  extra:\n    type: keysecure\n    baseUrl: http://extra.test\n    apiKey: extra-key-123',
    },
    { KEETA_APP_SECRET: 'keeta-secret-new-2', KS_KEY: 'ks-api-key-old-1' },
  );
  const plan = planReload(running, next);
  t.deepEqual([...plan.restartOnly].sort(), ['listen.proxy', 'store', 'upstreams.extra', 'upstreams.keeta.refreshBefore']);
  t.deepEqual([...plan.applied].sort(), ['upstreams.keeta.appSecret', 'upstreams.keeta.timeout']);
  const c = plan.config;
  t.is(c.listen.proxy, '127.0.0.1:8080');
  t.deepEqual(c.store, { type: 'memory', maxEntries: 100_000 });
  t.deepEqual(Object.keys(c.upstreams), ['keeta', 'keysecure-hk']);
  const keeta = c.upstreams.keeta!;
  t.is(keeta.type, 'keeta');
  if (keeta.type !== 'keeta') return;
  t.is(keeta.refreshBefore, 4 * 86_400_000);
  t.is(keeta.timeout, 4000);
  t.is(keeta.appSecret, 'keeta-secret-new-2');
});

test('a removed upstream keeps running on its config, and a changed type keeps the whole upstream as it was', (t) => {
  const running = config();
  const removed = parseConfig(
    'store:\n  type: memory\nlisten:\n  proxy: 127.0.0.1:8080\n  admin: 127.0.0.1:9090\nupstreams:\n  keeta:\n    type: keeta\n    baseUrl: http://keeta.test/api/open\n    appId: 1\n    appSecret: keeta-secret-old-1\n',
  );
  const plan = planReload(running, removed);
  t.deepEqual(plan.restartOnly, ['upstreams.keysecure-hk']);
  t.deepEqual(plan.config.upstreams['keysecure-hk'], running.upstreams['keysecure-hk']);

  const retyped = parseConfig(
    'store:\n  type: memory\nlisten:\n  proxy: 127.0.0.1:8080\n  admin: 127.0.0.1:9090\nupstreams:\n  keeta:\n    type: keysecure\n    baseUrl: http://elsewhere.test\n    apiKey: some-api-key-1\n  keysecure-hk:\n    type: keysecure\n    baseUrl: http://ks.test\n    apiKey: ks-api-key-old-1\n',
  );
  const plan2 = planReload(running, retyped);
  t.deepEqual(plan2.restartOnly, ['upstreams.keeta']);
  t.deepEqual(plan2.applied, []);
  t.deepEqual(plan2.config.upstreams.keeta, running.upstreams.keeta);
});

test('a plan that would leave an off-loopback admin listener without its token is refused', (t) => {
  const running = config({ listen: '  proxy: 127.0.0.1:8080\n  admin: 0.0.0.0:9090', top: 'admin:\n  token: admin-token-old-1234567' });
  // The new file moves admin to loopback (restart-only) and drops the token (reloadable).
  const plan = planReload(running, config());
  t.deepEqual(plan.problems, ['admin.token: required while the admin listener stays on 0.0.0.0:9090 (listen changes need a restart)']);
});

test('an unchanged config plans nothing', (t) => {
  const plan = planReload(config(), config());
  t.deepEqual(plan, { config: plan.config, applied: [], restartOnly: [], problems: [] });
});
