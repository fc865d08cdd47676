import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatDuration, parseDuration } from '../../../src/config/duration.js';
import { parseConfig, summarizeConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/core/errors.js';
import { createCallerAuthenticator } from '../../../src/edge/callers.js';

const VALID = `
upstreams:
  keeta:
    type: keeta
    baseUrl: https://open.mykeeta.com/api/open
    appId: 3340612437
    appSecret: \${KEETA_APP_SECRET}
  keysecure-hk:
    type: keysecure
    baseUrl: https://openplatform.keysecure.io
    apiKey: \${KEYSECURE_API_KEY}
    apiSecret: s3cr3t-api-secret
    timezone: UTC+8
`;
const ENV = { KEETA_APP_SECRET: 'keeta-secret-value', KEYSECURE_API_KEY: 'ks-api-key-value' };

function problemsOf(text: string, env: Record<string, string> = ENV): string[] {
  try {
    parseConfig(text, { env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

test('durations parse and format', (t) => {
  t.is(parseDuration('250ms'), 250);
  t.is(parseDuration('10s'), 10_000);
  t.is(parseDuration('5m'), 300_000);
  t.is(parseDuration('2h'), 7_200_000);
  t.is(parseDuration('4d'), 345_600_000);
  t.is(parseDuration('4 days'), undefined);
  t.is(parseDuration('-1s'), undefined);
  t.is(formatDuration(345_600_000), '4d');
  t.is(formatDuration(90_000), '90s');
  t.is(formatDuration(250), '250ms');
});

test('a valid config gets its defaults and is frozen', (t) => {
  const cfg = parseConfig(VALID, { env: ENV });
  t.is(cfg.listen.proxy, '0.0.0.0:8080');
  t.is(cfg.listen.admin, '127.0.0.1:9090');
  t.is(cfg.store.type, 'file');
  t.is(cfg.limits.maxBodyBytes, 1_048_576);
  const keeta = cfg.upstreams.keeta!;
  t.is(keeta.type, 'keeta');
  if (keeta.type !== 'keeta') return;
  t.is(keeta.appId, '3340612437');
  t.is(keeta.appSecret, 'keeta-secret-value');
  t.is(keeta.refreshBefore, 4 * 86_400_000);
  t.is(keeta.refreshSpacing, 60_000);
  t.deepEqual([...keeta.appLevelPaths], ['/base/callback/url/set']);
  t.is(keeta.timeout, 10_000);
  const ks = cfg.upstreams['keysecure-hk']!;
  if (ks.type !== 'keysecure') return t.fail();
  t.is(ks.refreshBefore, 300_000);
  t.is(ks.timestampMargin, 1000);
  t.true(Object.isFrozen(cfg));
  t.true(Object.isFrozen(cfg.upstreams.keeta));
});

test('every mistake is reported at once, each with its path', (t) => {
  const problems = problemsOf(`
listen:
  proxy: not-a-hostport
bogus: 1
store:
  type: sqlite
limits:
  maxBodyBytes: -5
upstreams:
  keeta:
    type: keeta
    baseUrl: ftp://example.com
    appId: 12
    refreshBefore: 4 days
    colour: blue
  other:
    type: nope
  ks:
    type: keysecure
    baseUrl: https://x.example
    apiKey: \${MISSING_KEY}
`);
  const expect = [
    'listen.proxy: expected host:port',
    'bogus: unknown key',
    'store.type: type must be one of: memory, file, redis',
    'limits.maxBodyBytes: must be greater than 0',
    'upstreams.keeta.baseUrl: expected an http:// or https:// URL',
    'upstreams.keeta.appSecret: required',
    'upstreams.keeta.refreshBefore: "4 days" is not a duration',
    'upstreams.keeta.colour: unknown key',
    'upstreams.other.type: type must be one of: keeta, keysecure',
    'upstreams.ks.apiKey: environment variable MISSING_KEY is not set',
  ];
  for (const e of expect) t.true(problems.some((p) => p.startsWith(e)), `missing problem "${e}" in:\n${problems.join('\n')}`);
});

test('a missing ${VAR} is named with its path', (t) => {
  const problems = problemsOf(VALID, { KEYSECURE_API_KEY: 'x' });
  t.deepEqual(problems, ['upstreams.keeta.appSecret: environment variable KEETA_APP_SECRET is not set']);
});

test('<key>File reads a secret from a file, and both forms together are refused', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-cfg-'));
  writeFileSync(join(dir, 'secret'), 'from-a-file\n');
  const text = VALID.replace('appSecret: ${KEETA_APP_SECRET}', 'appSecretFile: ./secret');
  const cfg = parseConfig(text, { env: ENV, baseDir: dir });
  const keeta = cfg.upstreams.keeta!;
  t.is(keeta.type === 'keeta' ? keeta.appSecret : '', 'from-a-file');

  const both = VALID.replace('appSecret: ${KEETA_APP_SECRET}', 'appSecret: x\n    appSecretFile: ./secret');
  t.throws(() => parseConfig(both, { env: ENV, baseDir: dir }), { message: /upstreams\.keeta\.appSecretFile: give either appSecret or appSecretFile/ });
  const missing = VALID.replace('appSecret: ${KEETA_APP_SECRET}', 'appSecretFile: ./nope');
  t.throws(() => parseConfig(missing, { env: ENV, baseDir: dir }), { message: /upstreams\.keeta\.appSecretFile: cannot read .*nope \(ENOENT\)/ });
});

test('callers: allow rules must name configured upstreams; tokens are long and unique', (t) => {
  const problems = problemsOf(
    `${VALID}
callers:
  - name: order-service
    token: short
    allow: ["keeta:/order/*", "nosuch:*", "bad rule"]
  - name: order-service
    token: short
    allow: ["*:*"]
`,
  );
  t.true(problems.includes('callers[0].token: must be at least 16 characters'));
  t.true(problems.includes('callers[0].allow[1]: names unknown upstream "nosuch"'));
  t.true(problems.some((p) => p.startsWith('callers[0].allow[2]: expected "upstream:/path/glob"')));
  t.true(problems.includes('callers[1].token: the same token is given to two callers'));
});

test('one caller may have two entries with different tokens (token rotation), and both authenticate as it', (t) => {
  const cfg = parseConfig(
    `${VALID}
callers:
  - name: order-service
    token: old-order-token-1234567890
    allow: ["keeta:/order/*"]
  - name: order-service
    token: new-order-token-1234567890
    allow: ["keeta:/order/*"]
`,
    { env: ENV },
  );
  const callers = createCallerAuthenticator(cfg.callers);
  t.is(callers.authenticate('Bearer old-order-token-1234567890')?.name, 'order-service');
  t.is(callers.authenticate('Bearer new-order-token-1234567890')?.name, 'order-service');
  t.throws(() => callers.authenticate('Bearer other-order-token-123456'), { message: /matches no configured caller/ });
});

test('the config lists every secret file it read, so a reload can watch them', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-files-'));
  writeFileSync(join(dir, 'app-secret'), 'keeta-secret-from-file\n');
  const cfg = parseConfig(VALID.replace('appSecret: ${KEETA_APP_SECRET}', 'appSecretFile: ./app-secret'), { env: ENV, baseDir: dir });
  t.is(cfg.upstreams.keeta?.type === 'keeta' ? cfg.upstreams.keeta.appSecret : '', 'keeta-secret-from-file');
  t.deepEqual(cfg.files, [join(dir, 'app-secret')]);
});

test('an admin listener off loopback requires the admin token', (t) => {
  const problems = problemsOf(`${VALID}\nlisten:\n  admin: 0.0.0.0:9090\n`);
  t.true(problems.some((p) => p.startsWith('admin.token: required when the admin listener is not on loopback')));
  t.notThrows(() => parseConfig(`${VALID}\nlisten:\n  admin: '[::1]:9090'\n`, { env: ENV }));
});

test('YAML duplicate keys and syntax errors are reported', (t) => {
  t.throws(() => parseConfig('upstreams:\n  a: 1\n  a: 2\n', { env: ENV }), { instanceOf: ConfigError, message: /yaml: .*[Uu]nique|yaml: .*duplicate/i });
});

test('a YAML syntax error names its line and column', (t) => {
  const problems = problemsOf('upstreams:\n  keeta:\n    type: keeta\n    appId: [1\n');
  t.deepEqual(problems, ['yaml: line 5, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]']);
  const indented = problemsOf('listen:\n  proxy: 127.0.0.1:8080\n   admin: x\n');
  t.true(indented.length > 0);
  for (const p of indented) t.regex(p, /^yaml: line 2, column 10: /);
});

test('one error per problem: a missing variable or an unreadable secret file is not reported again by the schema', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-cfg-'));
  const text = VALID.replace('appId: 3340612437', 'appId: ${KEETA_APP_ID}')
    .replace('appSecret: ${KEETA_APP_SECRET}', 'appSecretFile: ./missing-secret')
    .concat('callers:\n  - name: svc\n    tokenFile: ./missing-token\n    allow: ["keeta:*"]\n');
  const problems = (() => {
    try {
      parseConfig(text, { env: ENV, baseDir: dir });
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
    }
    throw new Error('expected a ConfigError');
  })();
  t.is(problems.length, 3, problems.join('\n'));
  t.is(problems[0], 'upstreams.keeta.appId: environment variable KEETA_APP_ID is not set');
  t.regex(problems[1]!, /^upstreams\.keeta\.appSecretFile: cannot read .*missing-secret \(ENOENT\)$/);
  t.regex(problems[2]!, /^callers\[0\]\.tokenFile: cannot read .*missing-token \(ENOENT\)$/);
  // A problem of its own at another path is still reported.
  const more = text.replace('timezone: UTC+8', 'timezone: Mars/Olympus');
  t.throws(() => parseConfig(more, { env: ENV, baseDir: dir }), { message: /upstreams\.keysecure-hk\.timezone/ });
});

test('the summary never shows a secret', (t) => {
  const cfg = parseConfig(`${VALID}\ncallers:\n  - name: svc\n    token: caller-token-1234567890\n    allow: ["keeta:*"]\n`, { env: ENV });
  const summary = summarizeConfig(cfg);
  for (const secret of ['keeta-secret-value', 'ks-api-key-value', 's3cr3t-api-secret', 'caller-token-1234567890']) {
    t.false(summary.includes(secret), `summary leaks ${secret}`);
  }
  t.regex(summary, /keeta: keeta https:\/\/open\.mykeeta\.com\/api\/open appId 3340612437/);
});
