import test from 'ava';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { rawRequest } from '../helpers/http.js';
import { ROOT, runCli, spawnCli } from '../helpers/cli.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

function tempConfig(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-cli-'));
  const file = join(dir, 'countersign.yaml');
  writeFileSync(file, text);
  return file;
}

test('check-config on a config with several mistakes exits 2 and names each with its path', async (t) => {
  const file = tempConfig(`
listen:
  proxy: 8080
store:
  type: file
  bogus: true
upstreams:
  keeta:
    type: keeta
    baseUrl: https://open.mykeeta.com/api/open
    appId: 3340612437
    appSecret: \${KEETA_SECRET_NOT_SET}
    timeout: soon
  keysecure-hk:
    type: keysecure
    baseUrl: https://openplatform.keysecure.io
`);
  const { code, stderr, stdout } = await runCli(['check-config', '--config', file]);
  t.is(code, 2);
  t.is(stdout, '');
  for (const expected of [
    'listen.proxy: expected host:port',
    'store.bogus: unknown key',
    'upstreams.keeta.appSecret: environment variable KEETA_SECRET_NOT_SET is not set',
    'upstreams.keeta.timeout: "soon" is not a duration',
    'upstreams.keysecure-hk.apiKey: required',
  ]) {
    t.true(stderr.includes(expected), `expected "${expected}" in:\n${stderr}`);
  }
});

test('check-config on a valid config prints a summary without secrets and exits 0', async (t) => {
  const file = tempConfig(`
upstreams:
  keeta:
    type: keeta
    baseUrl: https://open.mykeeta.com/api/open
    appId: 3340612437
    appSecret: \${KEETA_APP_SECRET}
`);
  const { code, stdout } = await runCli(['check-config', '--config', file], { KEETA_APP_SECRET: 'cli-secret-abcdef' });
  t.is(code, 0);
  t.regex(stdout, /config OK/);
  t.regex(stdout, /keeta: keeta https:\/\/open\.mykeeta\.com\/api\/open appId 3340612437/);
  t.false(stdout.includes('cli-secret-abcdef'));
});

test('serve with COUNTERSIGN_CONFIG; SIGTERM during a slow request lets it complete, then exits 0', async (t) => {
  const up = await startRecordingUpstream();
  t.teardown(() => up.close());
  up.respond(() => ({ delayMs: 1200, body: '{"code":0,"message":"slow but fine"}' }));
  const dir = mkdtempSync(join(tmpdir(), 'cs-serve-'));
  const file = tempConfig(`
listen:
  proxy: 127.0.0.1:0
  admin: 127.0.0.1:0
store:
  type: file
  path: ${join(dir, 'tokens.json')}
upstreams:
  keeta:
    type: keeta
    baseUrl: ${up.url}/api/open
    appId: 1
    appSecret: serve-secret-123456
`);
  const child = spawnCli([], { COUNTERSIGN_CONFIG: file, LOG_LEVEL: 'info' });
  // A failed assertion must not leave the gateway running: its pipes would keep this worker alive.
  t.teardown(() => void child.kill('SIGKILL'));
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const listening = await new Promise<{ proxy: string; admin: string }>((resolve, reject) => {
    // Generous: tsx compiles the sources first, slowly on a loaded machine (not a speed check).
    const timer = setTimeout(() => reject(new Error(`no listening line:\n${out}`)), 45_000);
    child.stdout!.on('data', () => {
      const line = out.split('\n').find((l) => l.includes('countersign listening'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line));
      }
    });
  });
  const ready = await fetch(`${listening.admin}/readyz`);
  t.is(ready.status, 200);

  const slow = rawRequest(listening.proxy, { path: '/keeta/base/callback/url/set', body: '{}' });
  // Wait until the upstream has the request, then ask the process to stop.
  while (up.requests.length === 0) await new Promise((r) => setTimeout(r, 20));
  const signalled = Date.now();
  child.kill('SIGTERM');
  // While the slow request drains, readiness says so (the admin listener closes last).
  let draining: Response | undefined;
  for (let i = 0; i < 50 && draining?.status !== 503; i++) {
    draining = await fetch(`${listening.admin}/readyz`).catch(() => undefined);
    if (draining?.status !== 503) await new Promise((r) => setTimeout(r, 10));
  }
  t.is(draining?.status, 503);
  t.like(await draining!.json(), { status: 'draining' });
  const res = await slow;
  t.is(res.status, 200);
  t.is(res.json().message, 'slow but fine');
  t.is(await exited, 0);
  // It exits when the request is done, not when the 25 s grace period runs out.
  t.true(Date.now() - signalled < 15_000, `exit took ${Date.now() - signalled} ms`);
  t.regex(out, /shutting down/);
  t.false(out.includes('serve-secret-123456'));
});

test('sign for a KeySecure upstream says signing is not available, exit 2', async (t) => {
  const file = tempConfig(`
upstreams:
  ks:
    type: keysecure
    baseUrl: https://openplatform.keysecure.io
    apiKey: key-1234567890
`);
  const { code, stderr } = await runCli(['sign', '--config', file, '--upstream', 'ks', '--path', '/x', '--body', '{}']);
  t.is(code, 2);
  t.regex(stderr, /signing is not available for ks/);
});

test('sign for Keeta prints the exact pre-hash with <appSecret> and <accessToken>, and the official signature', async (t) => {
  const { FileStore } = await import('../../src/tokens/file-store.js');
  const dir = mkdtempSync(join(tmpdir(), 'cs-sign-'));
  const store = new FileStore({ path: join(dir, 'tokens.json') });
  await store.open();
  await store.put({ upstream: 'keeta', merchant: 'm1', accessToken: 'abc', refreshToken: 'r', issuedAt: 1, expiresAt: 2, refreshedAt: 1, shopIds: ['123'] });
  await store.close();
  const file = join(dir, 'countersign.yaml');
  writeFileSync(
    file,
    `store:\n  type: file\n  path: ./tokens.json\nupstreams:\n  keeta:\n    type: keeta\n    baseUrl: https://open.mykeeta.com/api/open\n    appId: 123\n    appSecret: abc\n`,
  );
  const body = '{"shopId": 123, "shopCategory": {"id":123,"name":"test","type":0,"description":null}}';
  const { code, stdout } = await runCli(['sign', '--config', file, '--upstream', 'keeta', '--path', '/product/shopcategory/update', '--body', body, '--merchant', 'm1', '--timestamp', '1682566749']);
  t.is(code, 0);
  t.true(
    stdout.includes(
      'https://open.mykeeta.com/api/open/product/shopcategory/update?accessToken=<accessToken>&appId=123&shopCategory={"id":123,"name":"test","type":0,"description":null}&shopId=123&timestamp=1682566749<appSecret>',
    ),
    stdout,
  );
  t.regex(stdout, /sig: 48eb6d562bb0673e3db753831f032be237fc19d1e5c33fcb5386d89c0eebca86/);

  // An app-level path is signed without accessToken even when a merchant is named, as the proxy does.
  const appLevel = await runCli(['sign', '--config', file, '--upstream', 'keeta', '--path', '/base/callback/url/set', '--body', '{"eventId":1}', '--merchant', 'm1', '--timestamp', '1682566749']);
  t.is(appLevel.code, 0);
  const preHash = appLevel.stdout.split('\n')[1]!;
  t.true(preHash.startsWith('https://open.mykeeta.com/api/open/base/callback/url/set?appId=123&eventId=1&timestamp=1682566749<appSecret>'), preHash);
  t.regex(appLevel.stdout, /app-level path/);
  const noMerchant = await runCli(['sign', '--config', file, '--upstream', 'keeta', '--path', '/order/get', '--body', '{"orderViewId":1}']);
  t.regex(noMerchant.stdout, /pass --merchant ID to include it/);

  const bad = await runCli(['sign', '--config', file, '--upstream', 'keeta', '--path', '/x', '--body', '{"a":']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--body is not valid JSON/);

  // A path without its leading slash is named as such, with the fix.
  const slashless = await runCli(['sign', '--config', file, '--upstream', 'keeta', '--path', 'order/get', '--body', '{}']);
  t.is(slashless.code, 2);
  t.regex(slashless.stderr, /--path must start with "\/" \(the path below baseUrl\): did you mean --path \/order\/get\?/);
});

test('serve on a port already in use logs one clear line naming the address and exits 1, before touching the store', async (t) => {
  const busy = createNetServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  t.teardown(() => busy.close());
  const port = (busy.address() as AddressInfo).port;
  const dir = mkdtempSync(join(tmpdir(), 'cs-busy-'));
  for (const [which, listen] of [
    ['proxy', `proxy: 127.0.0.1:${port}\n  admin: 127.0.0.1:0`],
    ['admin', `proxy: 127.0.0.1:0\n  admin: 127.0.0.1:${port}`],
  ] as const) {
    const file = join(dir, `${which}.yaml`);
    // A Redis that nobody serves: touching the store would log "token store unreachable".
    writeFileSync(file, `listen:\n  ${listen}\nstore:\n  type: redis\n  url: redis://127.0.0.1:1/0\nupstreams:\n  ks:\n    type: keysecure\n    baseUrl: http://127.0.0.1:1\n    apiKey: busy-port-api-key\n`);
    const { code, stdout, stderr } = await runCli(['serve', '--config', file]);
    t.is(code, 1, which);
    const lines = (stdout + stderr).trim().split('\n');
    t.is(lines.length, 1, `${which}: ${stdout}${stderr}`);
    const line = JSON.parse(lines[0]!);
    t.is(line.msg, `cannot listen on 127.0.0.1:${port}: the address is already in use`);
    t.is(line.level, 'fatal');
    t.false(/\n\s+at |token store/.test(stdout + stderr), which);
  }
});

test('the built CLI is executable (npm run build marks it), so npx countersign and the bin link can run it', (t) => {
  const mode = statSync(join(ROOT, 'dist/cli/main.js')).mode;
  t.true((mode & 0o111) === 0o111, `dist/cli/main.js mode ${(mode & 0o777).toString(8)}`);
  t.true(readFileSync(join(ROOT, 'dist/cli/main.js'), 'utf8').startsWith('#!/usr/bin/env node'), 'it starts with a node shebang');
});
