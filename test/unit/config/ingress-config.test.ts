import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, summarizeConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/core/errors.js';

const ENV = { KEETA_APP_SECRET: 'keeta-secret-value', KS_SECRET: 'ks-api-secret-value', CB_APP: 'callback-app-id-value' };

function config(keetaExtra: string, ksExtra = '', top = '') {
  return `${top}
upstreams:
  keeta:
    type: keeta
    baseUrl: https://open.mykeeta.com/api/open
    appId: 3340612437
    appSecret: \${KEETA_APP_SECRET}
${keetaExtra}
  keysecure-hk:
    type: keysecure
    baseUrl: https://openplatform.keysecure.io
    apiKey: ks-api-key-value
    apiSecret: \${KS_SECRET}
${ksExtra}`;
}

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, { env: ENV });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const WEBHOOKS = `    webhooks:
      url: https://hooks.example.com/hooks/keeta
      deliver:
        - events: [1001, 1002]
          url: http://orders.internal/keeta/events?team=a
        - events: ["*"]
          url: http://events.internal/keeta
`;
const CALLBACKS = `    callbacks:
      appId: \${CB_APP}
      deliver:
        - actions: [Auth]
          url: http://card-authz.internal/authorize
        - actions: ["*"]
          url: http://card-events.internal/keysecure
`;

test('ingress is off by default; oauth, webhooks and callbacks get their defaults', (t) => {
  t.is(parseConfig(config(''), { env: ENV }).listen.ingress, undefined);
  const cfg = parseConfig(
    config(`    oauth:
      authorizeUrl: https://merchant.mykeeta.com/m/web/openapi/authorize
      redirectUri: https://hooks.example.com/oauth/keeta/callback
${WEBHOOKS}`, CALLBACKS, 'listen:\n  ingress: 0.0.0.0:8443\n'),
    { env: ENV },
  );
  t.is(cfg.listen.ingress, '0.0.0.0:8443');
  const k = cfg.upstreams.keeta!;
  if (k.type !== 'keeta') return t.fail();
  t.is(k.oauth?.redirectUri, 'https://hooks.example.com/oauth/keeta/callback');
  t.is(k.webhooks?.verify, 'observe');
  t.deepEqual(k.webhooks?.recipes, ['url-query', 'url-concat', 'sorted', 'query']);
  t.is(k.webhooks?.timestampWindow, 300_000);
  t.is(k.webhooks?.sourceIps, 'documented');
  t.deepEqual(k.webhooks?.trustedProxies, []);
  t.is(k.webhooks?.dedupeFor, 86_400_000);
  t.deepEqual(k.webhooks?.authorizationEvents, { added: 1301, cancelled: 1302, revoked: 1303 });
  t.is(k.webhooks?.timeout, 4000);
  t.deepEqual(k.webhooks?.deliver[0], { events: [1001, 1002], url: 'http://orders.internal/keeta/events?team=a' });
  const ks = cfg.upstreams['keysecure-hk']!;
  if (ks.type !== 'keysecure') return t.fail();
  t.is(ks.callbacks?.verify, 'enforce');
  t.is(ks.callbacks?.appId, 'callback-app-id-value');
  t.is(ks.callbacks?.secret, undefined, 'the secret defaults to apiSecret at run time');
  t.is(ks.callbacks?.deliver[0]?.timeout, 700, 'Auth budget');
  t.is(ks.callbacks?.deliver[1]?.timeout, 5000);
  const summary = summarizeConfig(cfg);
  t.regex(summary, /ingress 0\.0\.0\.0:8443/);
  t.regex(summary, /webhooks: https:\/\/hooks\.example\.com\/hooks\/keeta, verify observe/);
  for (const secret of Object.values(ENV)) t.false(summary.includes(secret), 'no secret in the summary');
});

test('the webhook url is kept exactly as written (recipes sign it)', (t) => {
  const cfg = parseConfig(config(WEBHOOKS.replace('https://hooks.example.com/hooks/keeta', 'https://hooks.example.com/hooks/keeta/')), { env: ENV });
  const k = cfg.upstreams.keeta!;
  t.is(k.type === 'keeta' ? k.webhooks?.url : '', 'https://hooks.example.com/hooks/keeta/');
});

test('callbacks appId and secret may come from files', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-ingress-cfg-'));
  writeFileSync(join(dir, 'app'), 'file-app-id\n');
  writeFileSync(join(dir, 'secret'), 'file-secret\n');
  const cfg = parseConfig(config('', CALLBACKS.replace('appId: ${CB_APP}', `appIdFile: ${join(dir, 'app')}\n      secretFile: ${join(dir, 'secret')}`)), { env: ENV });
  const ks = cfg.upstreams['keysecure-hk']!;
  if (ks.type !== 'keysecure') return t.fail();
  t.is(ks.callbacks?.appId, 'file-app-id');
  t.is(ks.callbacks?.secret, 'file-secret');
});

test('every ingress mistake is reported with its path', (t) => {
  const problems = problemsOf(
    config(
      `    oauth:
      authorizeUrl: merchant.mykeeta.com/authorize
      redirectUri: https://hooks.example.com/oauth/keeta/callback?x=1
    webhooks:
      url: https://hooks.example.com/hooks/keeta
      verify: strict
      recipes: [url-query, hmac, url-query]
      sourceIps: [43.135.86.188, 10.0.0.0/33, nonsense]
      trustedProxies: [300.1.1.1]
      timestampWindow: 5 minutes
      deliver:
        - events: [1001, "all"]
          url: http://orders.internal/a
        - events: ["*"]
          url: http://a.internal/
        - events: ["*"]
          url: http://b.internal/
      extra: 1
`,
      `    callbacks:
      deliver:
        - actions: [Auth]
          url: http://card-authz.internal/authorize
          timeout: 900ms
`,
    ).replace('    apiSecret: ${KS_SECRET}\n', ''),
  );
  const expected = [
    'upstreams.keeta.oauth.authorizeUrl: expected an absolute URL',
    'upstreams.keeta.oauth.redirectUri: must not contain a query',
    'upstreams.keeta.webhooks.verify: expected enforce, observe or off',
    'upstreams.keeta.webhooks.recipes[1]: expected one of url-query, url-concat, sorted, query',
    'upstreams.keeta.webhooks.sourceIps[1]: expected an IP address or CIDR, e.g. 43.135.86.188 or 10.0.0.0/8',
    'upstreams.keeta.webhooks.sourceIps[2]: expected an IP address or CIDR, e.g. 43.135.86.188 or 10.0.0.0/8',
    'upstreams.keeta.webhooks.trustedProxies[0]: expected an IP address or CIDR, e.g. 43.135.86.188 or 10.0.0.0/8',
    'upstreams.keeta.webhooks.timestampWindow: "5 minutes" is not a duration above 0 (use 250ms, 10s, 5m, 2h, 4d)',
    'upstreams.keeta.webhooks.deliver[0].events[1]: expected an event id (a whole number) or "*"',
    'upstreams.keeta.webhooks.extra: unknown key',
    'upstreams.keysecure-hk.callbacks.appId: required to verify callbacks (or set verify: off)',
    'upstreams.keysecure-hk.callbacks.deliver[0].timeout: must be below 800ms: KeySecure wants an Auth answer within 800 ms',
  ];
  for (const p of expected) t.true(problems.includes(p), `${p}\n---\n${problems.join('\n')}`);
});

test('a second "*" rule and a KeySecure upstream without any secret are refused', (t) => {
  const problems = problemsOf(
    config(
      WEBHOOKS.replace('events: [1001, 1002]', 'events: ["*"]'),
      CALLBACKS,
    ).replace('    apiSecret: ${KS_SECRET}\n', ''),
  );
  t.true(problems.includes('upstreams.keeta.webhooks.deliver: "*" may appear in one rule only'), problems.join('\n'));
  t.true(problems.includes('upstreams.keysecure-hk.callbacks.secret: required to verify callbacks (or set apiSecret, the default)'), problems.join('\n'));
});
