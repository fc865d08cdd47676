import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/cli.js';
import { startDemo } from '../helpers/demo.js';

const run = promisify(execFile);

test('npm run demo prints curl commands that each answer as printed, shows a merchant connected and pushes delivered; Ctrl-C stops everything', async (t) => {
  const demo = await startDemo(t);
  // Done at startup: a merchant connected through the authorize page, an order webhook and a
  // KeySecure Auth callback verified and delivered to the demo's target.
  t.regex(demo.out, /connected "Sim Chain Burgers" with 450 shops/);
  t.regex(demo.out, /Keeta order webhook 1001 \(shop \d+\) answered \{"code":0,"message":"Success"\}/);
  t.regex(demo.out, /\[demo target\] POST \/keeta\/orders {2}upstream=keeta event=1001 message=\d+ merchant=brand-\d+ verified=true/);
  t.regex(demo.out, /KeySecure Auth callback answered \{"code":0,"message":""\} in [\d.]+ ms/);
  t.regex(demo.out, /\[demo target\] POST \/keysecure\/auth {2}upstream=keysecure-hk event=Auth message=\w+ merchant=- verified=true/);

  const curls = demo.out.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('curl'));
  const authorization = curls.filter((c) => c.includes('/admin/upstreams/keeta/authorizations'));
  const pushes = curls.filter((c) => c.includes('/_sim/'));
  const proxied = curls.filter((c) => !authorization.includes(c) && !pushes.includes(c));
  t.true(proxied.length >= 5, demo.out);
  for (const cmd of proxied) {
    const { stdout } = await run('bash', ['-c', cmd]);
    t.regex(stdout, /^\{"code":0,/, `${cmd}\n→ ${stdout}`);
  }

  // The printed way to connect a merchant: the link, then what the browser does on Keeta's page.
  t.is(authorization.length, 1, demo.out);
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
  t.is(pushes.length, 2, demo.out);
  for (const cmd of pushes) {
    const { stdout } = await run('bash', ['-c', cmd]);
    t.regex(stdout, /"accepted":true/, `${cmd}\n→ ${stdout}`);
  }
  const deadline = Date.now() + 10_000;
  while (!(demo.out.includes('event=1002') && demo.out.includes('event=Card_update')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.regex(demo.out, /\[demo target\] POST \/keeta\/orders {2}upstream=keeta event=1002 .* verified=true/);
  t.regex(demo.out, /\[demo target\] POST \/keysecure\/events {2}upstream=keysecure-hk event=Card_update .* verified=true/);

  const views = [...demo.out.matchAll(/^\s+(http:\/\/\S+)\s{2,}/gm)].map((m) => m[1]!);
  t.is(views.length, 4, demo.out);
  t.true(views.some((url) => url.endsWith('/console')), `the operators' console is among the printed views\n${demo.out}`);
  for (const url of views) t.is((await fetch(url)).status, 200, url);
  t.is(await demo.stop(), 0);
});

test('a second npm run demo beside a running one leaves the first one intact: taken ports fail before .demo/ is touched, free ports get a directory of their own', async (t) => {
  const first = await startDemo(t);
  const files = ['countersign.yaml', 'tokens.json'].map((f) => join(first.dir, f));
  const before = files.map((f) => readFileSync(f, 'utf8'));
  const port = (url: string) => new URL(url).port;

  // The same ports: refused with a clear line, nothing under the directory changed.
  const second = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/demo.ts'], {
      cwd: ROOT,
      env: { ...process.env, PORT: port(first.proxy), ADMIN_PORT: port(first.admin), INGRESS_PORT: '0', COUNTERSIGN_DEMO_DIR: first.dir, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
  t.is(second.code, 1, second.out);
  t.regex(second.out, new RegExp(`127\\.0\\.0\\.1:${port(first.proxy)} \\(PORT\\), 127\\.0\\.0\\.1:${port(first.admin)} \\(ADMIN_PORT\\) already in use`));
  t.regex(second.out, /PORT=0 ADMIN_PORT=0 INGRESS_PORT=0 npm run demo/);
  t.deepEqual(files.map((f) => readFileSync(f, 'utf8')), before);

  // Free ports, same directory: the second demo runs from a directory of its own.
  const third = await startDemo(t, process.env, { dir: first.dir });
  t.regex(third.out, /belongs to the demo running as pid \d+; this demo uses /);
  t.regex(third.out, new RegExp(`config: ${first.dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-\\d+/countersign\\.yaml`));
  t.deepEqual(files.map((f) => readFileSync(f, 'utf8')), before);

  // The first demo still answers, with its own config and tokens.
  const { stdout } = await run('bash', ['-c', `curl -s -X POST ${first.proxy}/keeta/order/get -H 'content-type: application/json' -d '{"orderViewId": 1, "shopId": 466663}'`]);
  t.regex(stdout, /^\{"code":0,/, stdout);
  const ownDir = /this demo uses (\S+)/.exec(third.out)![1]!;
  t.true(existsSync(join(ownDir, 'countersign.yaml')));
  t.is(await third.stop(), 0);
  t.false(existsSync(ownDir), 'the second demo removes its own directory at exit');
  t.true(existsSync(files[0]!));
  t.is(await first.stop(), 0);
});
