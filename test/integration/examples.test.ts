import test from 'ava';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { ROOT, runCli } from '../helpers/cli.js';

/**
 * The configs in examples/ are valid as shipped: `countersign check-config` accepts each one
 * once its secret files and environment variables exist, and prints none of the secrets.
 */

/** Every `<key>File` path in a parsed config. */
function secretFiles(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => secretFiles(v, found));
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k.endsWith('File') && typeof v === 'string') found.push(v);
      else secretFiles(v, found);
    }
  }
  return found;
}

const secretValue = (name: string) => `${name.replace(/\W/g, '-')}-${randomBytes(12).toString('hex')}`;

async function checkExample(name: string) {
  const text = readFileSync(join(ROOT, 'examples', name), 'utf8');
  const dir = mkdtempSync(join(tmpdir(), 'cs-example-'));
  const config = join(dir, 'config.yaml');
  copyFileSync(join(ROOT, 'examples', name), config);
  const secrets: string[] = [];
  const files = secretFiles(parse(text));
  for (const file of files) {
    const value = secretValue(file);
    // A Redis URL must look like one; its password is the secret part.
    const content = file.includes('redis-url') ? `redis://:${value}@redis.egress.svc:6379/0` : value;
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), `${content}\n`);
    secrets.push(value);
  }
  const env: Record<string, string> = {};
  for (const [, variable] of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) env[variable!] = /APP_ID$/.test(variable!) ? '3340612437' : secretValue(variable!);
  const result = await runCli(['check-config', '--config', config], env);
  return { ...result, files, env, secrets };
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
