/**
 * Chaos: three gateway processes on one private Redis, under steady load on both upstreams,
 * while one replica is killed with SIGKILL and restarted, Redis stalls (SIGSTOP) just as
 * KeySecure revokes every token, Redis restarts empty, and KeySecure revokes again.
 *
 * Required: >= 99% of the requests to live replicas succeed, none is held by a gateway longer
 * than its upstream's timeout + 1 s (the gateways' own access logs say how long), no refresh
 * token is used twice, and every Keeta merchant can still be called and refreshed afterwards.
 */
import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { startKeetaSim, startKeySecureSim } from '../../src/sim/index.js';
import { spawnCli } from '../helpers/cli.js';
import { KEETA_APP_ID, KEETA_SECRET, importPair } from '../helpers/keeta-setup.js';
import { KS_API_KEY } from '../helpers/keysecure-setup.js';
import { startPrivateRedis, uniquePrefix } from '../helpers/redis-server.js';

const TIMEOUT_MS = 3000;
const MERCHANTS = ['brand-1', 'brand-2', 'brand-3', 'brand-4'];
const shopOf = (m: string) => 466660 + Number(m.split('-')[1]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Replica {
  child: ChildProcess;
  proxy: string;
  admin: string;
  alive: boolean;
  generation: number;
  output: string;
}

/** `countersign serve` in its own process; resolves once it listens and /readyz is 200. */
async function serve(configFile: string, generation: number): Promise<Replica> {
  const child = spawnCli(['serve', '--config', configFile], { LOG_LEVEL: 'info' });
  const rep: Replica = { child, proxy: '', admin: '', alive: true, generation, output: '' };
  child.stdout!.on('data', (c: Buffer) => (rep.output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (rep.output += c.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${rep.output}`)), 60_000);
    const check = () => {
      const line = rep.output.split('\n').find((l) => l.includes('countersign listening'));
      if (!line) return;
      clearTimeout(timer);
      child.stdout!.off('data', check);
      const { proxy, admin } = JSON.parse(line) as { proxy: string; admin: string };
      rep.proxy = proxy;
      rep.admin = admin;
      resolve();
    };
    child.stdout!.on('data', check);
    child.once('exit', () => reject(new Error(`serve exited:\n${rep.output}`)));
  });
  for (let i = 0; (await fetch(`${rep.admin}/readyz`).then((r) => r.status, () => 0)) !== 200; i++) {
    if (i > 300) throw new Error('replica never became ready');
    await sleep(100);
  }
  return rep;
}

function kill9(child: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) return r();
    child.once('exit', () => r());
    child.kill('SIGKILL');
  });
}

interface Outcome {
  upstream: 'keeta' | 'ks';
  ok: boolean;
  counted: boolean;
  detail: string;
}

test('chaos: replica SIGKILL and restart, Redis stalled while KeySecure revokes, Redis restarted empty, KeySecure revokes again', async (t) => {
  t.timeout(180_000);
  const redis = await startPrivateRedis({ persist: false });
  t.teardown(() => redis.dispose());
  const keeta = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET, refreshSpacingMs: 0 });
  const ks = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY }] });
  t.teardown(async () => {
    await keeta.close();
    await ks.close();
  });
  const dir = mkdtempSync(join(tmpdir(), 'cs-chaos-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const configFile = join(dir, 'countersign.yaml');
  writeFileSync(
    configFile,
    `listen:
  proxy: 127.0.0.1:0
  admin: 127.0.0.1:0
store:
  type: redis
  url: ${redis.url}
  keyPrefix: "${uniquePrefix('chaos')}"
upstreams:
  keeta:
    type: keeta
    baseUrl: ${keeta.baseUrl}
    appId: ${KEETA_APP_ID}
    appSecret: ${KEETA_SECRET}
    refreshSpacing: 0s
    timeout: ${TIMEOUT_MS}ms
  ks:
    type: keysecure
    baseUrl: ${ks.baseUrl}
    apiKey: ${KS_API_KEY}
    timeout: ${TIMEOUT_MS}ms
`,
  );

  const replicas: Replica[] = await Promise.all([0, 1, 2].map(() => serve(configFile, 1)));
  const everyProcess: Replica[] = [...replicas];
  t.teardown(async () => {
    for (const r of everyProcess) await kill9(r.child);
  });
  for (const m of MERCHANTS) {
    const pair = keeta.control.addMerchant({ merchantId: m, shopIds: [String(shopOf(m))], issuedAtMs: Date.now() - 600_000 });
    await importPair(replicas[0]!.admin, 'keeta', m, pair, [String(shopOf(m))]);
  }

  // Steady, bounded load: four workers, each one request at a time, to a random live replica.
  const dispatcher = new Agent({ connections: 8 });
  t.teardown(() => dispatcher.close());
  const outcomes: Outcome[] = [];
  let running = true;
  const worker = async (w: number) => {
    for (let i = 0; running; i++) {
      const live = replicas.filter((r) => r.alive);
      const rep = live[(i + w) % live.length]!;
      const generation = rep.generation;
      const upstream = (i + w) % 2 === 0 ? 'keeta' : 'ks';
      const merchant = MERCHANTS[(i + w) % MERCHANTS.length]!;
      const url = upstream === 'keeta' ? `${rep.proxy}/keeta/order/get` : `${rep.proxy}/ks/open-api/v1/card/list`;
      const body = upstream === 'keeta' ? `{"orderViewId":${1000 + i},"shopId":${shopOf(merchant)}}` : '{"page":0}';
      let ok = false;
      let detail = '';
      try {
        const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, dispatcher });
        detail = await res.body.text();
        ok = res.statusCode === 200 && (JSON.parse(detail) as { code?: unknown }).code === 0;
      } catch (err) {
        detail = (err as Error).message;
      }
      // A request counts when its replica stayed alive (the same process) until it was answered.
      outcomes.push({ upstream, ok, counted: rep.alive && rep.generation === generation, detail: `${upstream} ${detail.slice(0, 200)}` });
      await sleep(15);
    }
  };
  const load = Promise.all([0, 1, 2, 3].map(worker));
  const phase = (name: string) => t.log(`${name}: ${outcomes.length} requests so far`);

  await sleep(2000);
  phase('steady');

  // One replica killed with SIGKILL, and restarted (it joins the load once ready).
  const victim = replicas[1]!;
  victim.alive = false;
  await kill9(victim.child);
  const restarted = serve(configFile, 2).then((r) => {
    replicas[1] = r;
    everyProcess.push(r);
    return r;
  });
  await sleep(2000);
  phase('replica killed');

  // Redis stalls just as KeySecure revokes every token.
  redis.pause();
  ks.control.revokeTokens();
  await sleep(5000);
  redis.resume();
  phase('redis stalled');
  await sleep(2000);

  // Redis restarts empty.
  await redis.stop();
  await sleep(500);
  await redis.start();
  phase('redis restarted empty');
  await sleep(3000);

  // KeySecure revokes again.
  ks.control.revokeTokens();
  await sleep(3000);
  const back = await restarted;
  await sleep(1000);
  running = false;
  await load;
  phase('done');

  const counted = outcomes.filter((o) => o.counted);
  const failed = counted.filter((o) => !o.ok);
  const ratio = (counted.length - failed.length) / counted.length;
  t.log(`${counted.length} counted requests, ${failed.length} failed (${(ratio * 100).toFixed(2)}% succeeded)`);
  if (failed.length) t.log(failed.slice(0, 10).map((f) => f.detail).join('\n'));
  t.true(counted.length > 100, `enough load: ${counted.length}`);
  t.true(counted.some((o) => o.upstream === 'keeta') && counted.some((o) => o.upstream === 'ks'));
  t.true(ratio >= 0.99, `${(ratio * 100).toFixed(2)}% succeeded`);

  // How long each gateway held each request, from its own access log.
  let longest = 0;
  let logged = 0;
  for (const r of everyProcess) {
    for (const line of r.output.split('\n')) {
      if (!line.includes('"durationMs"')) continue;
      const entry = JSON.parse(line) as { durationMs: number; upstream?: string };
      logged++;
      longest = Math.max(longest, entry.durationMs);
    }
  }
  t.log(`longest request held ${longest} ms over ${logged} access-log lines`);
  t.true(logged > 100);
  t.true(longest <= TIMEOUT_MS + 1000, `a request was held ${longest} ms`);

  t.true(back.output.includes('token store open'), 'the restarted replica opened the store');
  t.is(keeta.control.counters().refreshReuse, 0, 'no refresh token used twice');

  // Every Keeta merchant can still be called and refreshed, through any replica.
  for (const [i, m] of MERCHANTS.entries()) {
    const rep = replicas[i % replicas.length]!;
    const call = () =>
      fetch(`${rep.proxy}/keeta/order/get`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"orderViewId":7,"shopId":${shopOf(m)}}` }).then((r) => r.json() as Promise<{ code: number }>);
    t.is((await call()).code, 0, `${m} can be called`);
    const refreshed = await fetch(`${rep.admin}/admin/upstreams/keeta/merchants/${m}/refresh`, { method: 'POST' });
    t.is(refreshed.status, 200, `${m} refreshed: ${await refreshed.clone().text()}`);
    t.is((await call()).code, 0, `${m} can be called with its new token`);
  }
  t.is(keeta.control.counters().refreshCalls, MERCHANTS.length, 'one refresh per merchant');
  t.is(keeta.control.counters().refreshReuse, 0, 'no refresh token used twice');
});
