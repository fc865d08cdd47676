import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/cli.js';

const run = promisify(execFile);

test('npm run demo prints curl commands that each answer as printed, shows a merchant connected and pushes delivered; Ctrl-C stops everything', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/demo.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', ADMIN_PORT: '0', INGRESS_PORT: '0', COUNTERSIGN_DEMO_DIR: mkdtempSync(join(tmpdir(), 'cs-demo-')), NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => void child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not start:\n${out}`)), 50_000);
    child.stdout.on('data', () => {
      if (out.includes('Ctrl-C stops everything')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  // Done at startup: a merchant connected through the authorize page, an order webhook and a
  // KeySecure Auth callback verified and delivered to the demo's target.
  t.regex(out, /connected "Sim Chain Burgers" with 450 shops/);
  t.regex(out, /Keeta order webhook 1001 \(shop \d+\) answered \{"code":0,"message":"Success"\}/);
  t.regex(out, /\[demo target\] POST \/keeta\/orders {2}upstream=keeta event=1001 message=\d+ merchant=brand-\d+ verified=true/);
  t.regex(out, /KeySecure Auth callback answered \{"code":0,"message":""\} in [\d.]+ ms/);
  t.regex(out, /\[demo target\] POST \/keysecure\/auth {2}upstream=keysecure-hk event=Auth message=\w+ merchant=- verified=true/);

  const curls = out.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('curl'));
  const authorization = curls.filter((c) => c.includes('/admin/upstreams/keeta/authorizations'));
  const pushes = curls.filter((c) => c.includes('/_sim/'));
  const proxied = curls.filter((c) => !authorization.includes(c) && !pushes.includes(c));
  t.true(proxied.length >= 5, out);
  for (const cmd of proxied) {
    const { stdout } = await run('bash', ['-c', cmd]);
    t.regex(stdout, /^\{"code":0,/, `${cmd}\n→ ${stdout}`);
  }

  // The printed way to connect a merchant: the link, then what the browser does on Keeta's page.
  t.is(authorization.length, 1, out);
  const link = JSON.parse((await run('bash', ['-c', authorization[0]!])).stdout) as { url: string };
  const page = await fetch(link.url);
  t.is(page.status, 200);
  t.regex(await page.text(), /Sim Corner Cafe/);
  const form = new URLSearchParams(new URL(link.url).search);
  form.set('merchantId', 'demo-store');
  form.set('decision', 'authorize');
  const decided = await fetch(link.url.split('?')[0]!, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  t.is(decided.status, 302);
  const connected = await (await fetch(decided.headers.get('location')!)).text();
  t.regex(connected, /<h1>Connected<\/h1>/);
  t.regex(connected, /Sim Corner Cafe/);
  t.regex(connected, /1 shop</);

  // The printed pushes are accepted and the target prints their delivery.
  t.is(pushes.length, 2, out);
  for (const cmd of pushes) {
    const { stdout } = await run('bash', ['-c', cmd]);
    t.regex(stdout, /"accepted":true/, `${cmd}\n→ ${stdout}`);
  }
  const deadline = Date.now() + 10_000;
  while (!(out.includes('event=1002') && out.includes('event=Card_update')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.regex(out, /\[demo target\] POST \/keeta\/orders {2}upstream=keeta event=1002 .* verified=true/);
  t.regex(out, /\[demo target\] POST \/keysecure\/events {2}upstream=keysecure-hk event=Card_update .* verified=true/);

  const views = [...out.matchAll(/^\s+(http:\/\/\S+)\s{2,}/gm)].map((m) => m[1]!);
  t.is(views.length, 3, out);
  for (const url of views) t.is((await fetch(url)).status, 200, url);
  child.kill('SIGINT');
  t.is(await exited, 0);
});
