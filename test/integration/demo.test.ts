import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
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
  t.is(views.length, 3, demo.out);
  for (const url of views) t.is((await fetch(url)).status, 200, url);
  t.is(await demo.stop(), 0);
});
