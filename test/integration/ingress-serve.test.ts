/**
 * `countersign serve` binds the ingress listener when listen.ingress is set, says where, serves
 * only the ingress routes there, and stops it on SIGTERM.
 */
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnCli } from '../helpers/cli.js';
import { rawRequest } from '../helpers/http.js';

test('serve binds listen.ingress; its health check answers and the proxy route does not exist there', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-ingress-serve-'));
  const file = join(dir, 'countersign.yaml');
  writeFileSync(
    file,
    `listen:
  proxy: 127.0.0.1:0
  admin: 127.0.0.1:0
  ingress: 127.0.0.1:0
store:
  type: memory
upstreams:
  keeta:
    type: keeta
    baseUrl: http://127.0.0.1:9/api/open
    appId: 1
    appSecret: serve-ingress-secret-4242
    webhooks:
      url: https://hooks.example.com/hooks/keeta
      deliver:
        - events: ["*"]
          url: http://127.0.0.1:9/events
`,
  );
  const child = spawnCli(['serve', '--config', file], { LOG_LEVEL: 'info' });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const listening = await new Promise<{ proxy: string; admin: string; ingress: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line:\n${out}`)), 45_000);
    child.stdout!.on('data', () => {
      const line = out.split('\n').find((l) => l.includes('countersign listening'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line));
      }
    });
  });
  t.regex(listening.ingress, /^http:\/\/127\.0\.0\.1:\d+$/);
  const health = await rawRequest(listening.ingress, { method: 'GET', path: '/healthz' });
  t.deepEqual([health.status, health.json()], [200, { status: 'ok' }]);
  const proxied = await rawRequest(listening.ingress, { path: '/keeta/order/get', body: '{}' });
  t.is(proxied.status, 404);
  const forged = await rawRequest(listening.ingress, { path: '/hooks/keeta', headers: { 'content-type': 'application/json' }, body: '{"eventId":1001,"messageId":"1","timestamp":1,"sig":"x"}' });
  t.is(forged.status, 403, 'loopback is not a documented Keeta source');
  child.kill('SIGTERM');
  t.is(await exited, 0);
  t.false(out.includes('serve-ingress-secret-4242'));
});
