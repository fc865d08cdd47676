import test from 'ava';
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, runCli } from '../helpers/cli.js';
import { prepareExample } from '../helpers/examples.js';

/**
 * The configs in examples/ are valid as shipped: `countersign check-config` accepts each one
 * once its secret files and environment variables exist, and prints none of the secrets.
 * (test/integration/production-layout.test.ts runs the same check with the compiled CLI.)
 */

async function checkExample(name: string) {
  const example = prepareExample(name);
  const result = await runCli(['check-config', '--config', example.config], example.env);
  return { ...result, ...example };
}

test('examples/config.yaml (central egress, Redis, every secret a file) passes check-config without printing a secret', async (t) => {
  const { code, stdout, stderr, files, secrets } = await checkExample('config.yaml');
  t.is(code, 0, stderr);
  t.regex(stdout, /config OK/);
  t.regex(stdout, /store: redis/);
  t.regex(stdout, /listen: proxy 0\.0\.0\.0:8080, admin 0\.0\.0\.0:9090 \(admin token set\)/);
  t.regex(stdout, /callers: order-service .*; card-service/);
  t.regex(stdout, /keeta: keeta https:\/\/open\.mykeeta\.com\/api\/open/);
  t.regex(stdout, /keysecure-hk: keysecure https:\/\/openplatform\.keysecure\.io/);
  // Every secret kind is read from a file: admin token, Redis URL, caller tokens, app secret, API key and secret.
  t.deepEqual(files.map((f) => f.replace(/^secrets\//, '')).sort(), [
    'admin-token',
    'caller-card-service',
    'caller-order-service',
    'keeta-app-secret',
    'keysecure-api-key',
    'keysecure-api-secret',
    'redis-url',
  ]);
  t.false(readFileSync(join(ROOT, 'examples/config.yaml'), 'utf8').includes('${'), 'no secret from the environment');
  for (const s of secrets) t.false(`${stdout}${stderr}`.includes(s), 'a secret was printed');
});

test('examples/sidecar.yaml (loopback, file store in the image volume) passes check-config without printing a secret', async (t) => {
  const { code, stdout, stderr, env, secrets } = await checkExample('sidecar.yaml');
  t.is(code, 0, stderr);
  t.regex(stdout, /config OK/);
  t.regex(stdout, /listen: proxy 127\.0\.0\.1:8080, admin 127\.0\.0\.1:9090/);
  t.regex(stdout, /store: file at \/var\/lib\/countersign\/tokens\.json/);
  t.deepEqual(Object.keys(env), ['KEETA_APP_ID']);
  t.regex(stdout, /appId 3340612437/);
  t.true(secrets.length >= 2);
  for (const s of secrets) t.false(`${stdout}${stderr}`.includes(s), 'a secret was printed');
});

test('an example with a secret file missing fails check-config, naming the key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-example-'));
  copyFileSync(join(ROOT, 'examples/sidecar.yaml'), join(dir, 'config.yaml'));
  const { code, stderr } = await runCli(['check-config', '--config', join(dir, 'config.yaml')], { KEETA_APP_ID: '1' });
  t.is(code, 2);
  t.regex(stderr, /upstreams\.keeta\.appSecretFile: cannot read .*secrets\/keeta-app-secret \(ENOENT\)/);
});

test('bash examples/check.sh checks every shipped example from a clone, with placeholder secrets, and prints no placeholder', async (t) => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { stdout } = await promisify(execFile)('bash', [join(ROOT, 'examples/check.sh')], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } });
  const checked = [...stdout.matchAll(/^== examples\/(\S+)$/gm)].map((m) => m[1]);
  const { readdirSync } = await import('node:fs');
  t.deepEqual(checked, readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.yaml')).sort());
  t.is(stdout.match(/^config OK$/gm)?.length, checked.length, stdout);
  t.false(stdout.includes('placeholder-'), 'a placeholder secret was printed');
});
