/**
 * Token records sealed at rest, over real sockets: gateways on the real Redis (127.0.0.1:6379,
 * own key prefix) or a token file, driven by the Keeta simulator. Fails without Redis.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { parseConfig } from '../../src/config/load.js';
import { planReload } from '../../src/reload/config-diff.js';
import { KEETA_SIM_CODES, startKeetaSim } from '../../src/sim/index.js';
import { redisKeys } from '../../src/tokens/redis-store.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { postJson } from '../helpers/http.js';
import { KEETA_APP_ID, KEETA_SECRET, importPair } from '../helpers/keeta-setup.js';
import { SHARED_REDIS_URL, cleanPrefix, uniquePrefix } from '../helpers/redis-server.js';
import { encryptionYaml, keyDir, tokenForms } from '../helpers/store-keys.js';

const LISTEN = 'listen:\n  proxy: 127.0.0.1:0\n  admin: 127.0.0.1:0\n';

type Sim = Awaited<ReturnType<typeof startKeetaSim>>;

async function keetaSim(t: ExecutionContext): Promise<Sim> {
  const sim = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET });
  t.teardown(() => sim.close());
  return sim;
}

function storeYaml(store: { redis: string } | { file: string }, keys?: Array<[string, string]>, plaintext?: 'migrate' | 'refuse'): string {
  const where = 'redis' in store ? `  type: redis\n  url: ${SHARED_REDIS_URL}\n  keyPrefix: "${store.redis}"\n` : `  type: file\n  path: ${store.file}\n`;
  return `store:\n${where}${keys ? encryptionYaml(keys, '  ', plaintext) : ''}`;
}

function upstreamYaml(sim: Sim): string {
  return `upstreams:\n  keeta:\n    type: keeta\n    baseUrl: ${sim.baseUrl}\n    appId: ${KEETA_APP_ID}\n    appSecret: ${KEETA_SECRET}\n    tokenErrorCodes: [${KEETA_SIM_CODES.ACCESS_TOKEN_INVALID}]\n`;
}

async function gateway(t: ExecutionContext, yaml: string): Promise<TestGateway> {
  const gw = await startGateway(yaml, { store: 'config' });
  let closed = false;
  t.teardown(async () => {
    if (!closed) await gw.close();
  });
  const close = gw.close.bind(gw);
  gw.close = async () => {
    closed = true;
    await close();
  };
  return gw;
}

/** Reload a running gateway's config in place, as SIGHUP or a changed key file does. */
function reload(gw: TestGateway, yaml: string): void {
  const plan = planReload(gw.app.live.current, parseConfig(`${LISTEN}${yaml}`));
  if (plan.problems.length) throw new Error(plan.problems.join('; '));
  gw.app.live.apply(plan.config);
}

async function seed(sim: Sim, gw: TestGateway, merchant: string, shop: string, opts: { expiresInSec?: number } = {}) {
  const pair = sim.control.addMerchant({ merchantId: merchant, shopIds: [shop], issuedAtMs: Date.now() - 600_000, ...opts });
  await importPair(gw.adminUrl, 'keeta', merchant, pair, [shop]);
  return pair;
}

const order = (gw: TestGateway, shop: string, id = 1) => postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: id, shopId: Number(shop) });

async function listing(gw: TestGateway): Promise<Array<{ merchant: string; state: string; encryption?: string; error?: string }>> {
  const body = (await (await fetch(`${gw.adminUrl}/admin/tokens`)).json()) as any;
  return body.upstreams.find((u: any) => u.name === 'keeta').merchants;
}

async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Every Redis key and value under `prefix`, as text. */
async function redisDump(prefix: string): Promise<string> {
  const r = new Redis(SHARED_REDIS_URL);
  try {
    const out: string[] = [];
    for (const k of (await r.keys(`${prefix}*`)).sort()) {
      const type = await r.type(k);
      out.push(k, type === 'string' ? ((await r.get(k)) ?? '') : type === 'set' ? (await r.smembers(k)).join(',') : type);
    }
    return out.join('\n');
  } finally {
    r.disconnect();
  }
}

async function withRedis<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(SHARED_REDIS_URL);
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

function assertNoTokens(t: ExecutionContext, text: string, tokens: Iterable<string>, where: string): void {
  const pairs = [...tokens].filter((s) => s.length >= 8).map((s) => ({ accessToken: s }));
  const leaked = tokenForms(pairs).filter((f) => text.includes(f));
  t.deepEqual(leaked.length, 0, `${where} holds ${leaked.length} token form(s)`);
}

test('rotation under load across two replicas on one Redis: add a key, reload, store rekey, remove the old key: 0 failures, no refresh token reused, no token at rest', async (t) => {
  const prefix = uniquePrefix('rotate');
  t.teardown(() => cleanPrefix(prefix));
  const keys = keyDir(t);
  const k1 = keys.write('k1');
  const sim = await keetaSim(t);
  const yamlWith = (ks: Array<[string, string]>) => `${storeYaml({ redis: prefix }, ks)}${upstreamYaml(sim)}`;
  const a = await gateway(t, yamlWith([['k1', k1]]));
  const b = await gateway(t, yamlWith([['k1', k1]]));
  // Six merchants whose tokens are inside the refresh window: the load makes them refresh.
  const shops = ['501', '502', '503', '504', '505', '506'];
  for (const [i, shop] of shops.entries()) await seed(sim, a, `brand-${i}`, shop, { expiresInSec: 3 * 86_400 });
  await eventually(() => shops.every((_, i) => b.app.cache.get('keeta', `brand-${i}`) !== undefined), 'imports to reach replica b');

  let stop = false;
  let sent = 0;
  const failures: string[] = [];
  const worker = async (w: number) => {
    for (let i = 0; !stop; i++) {
      const gw = (w + i) % 2 === 0 ? a : b;
      const shop = shops[(w + i) % shops.length]!;
      const res = await order(gw, shop, i + 1);
      sent++;
      if (res.status !== 200 || res.json?.code !== 0) failures.push(`${res.status} ${res.text.slice(0, 200)}`);
    }
  };
  const load = Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));

  // 1. A new key first in the list, reloaded into both replicas: new writes use it.
  const k2 = keys.write('k2');
  const config = join(keys.dir, 'config.yaml');
  writeFileSync(config, `${LISTEN}${yamlWith([['k2', k2], ['k1', k1]])}`);
  reload(a, yamlWith([['k2', k2], ['k1', k1]]));
  reload(b, yamlWith([['k2', k2], ['k1', k1]]));
  // 2. Rekey from a separate process, beside both running replicas, while they refresh.
  const rekey = await runCli(['store', 'rekey', '--config', config]);
  t.is(rekey.code, 0, rekey.stderr);
  t.regex(rekey.stdout, /before: k2 \d+, k1 \d+, plaintext 0, undecryptable 0/);
  t.regex(rekey.stdout, /after: k2 6, k1 0, plaintext 0, undecryptable 0/);
  // 3. The old key removed: every record still opens.
  reload(a, yamlWith([['k2', k2]]));
  reload(b, yamlWith([['k2', k2]]));
  await new Promise((r) => setTimeout(r, 1500));
  stop = true;
  await load;

  t.true(sent > 100, `only ${sent} requests were sent`);
  t.deepEqual(failures, [], `${failures.length} of ${sent} requests failed`);
  t.true(sim.control.counters().refreshCalls >= 1, 'the load drove refreshes');
  t.is(sim.control.counters().refreshReuse, 0, 'a refresh token was sent twice');
  for (const [i] of shops.entries()) {
    t.is(a.app.cache.get('keeta', `brand-${i}`)?.accessToken, sim.control.merchant(`brand-${i}`)!.accessToken, `brand-${i} is on its newest pair`);
  }
  const listed = await listing(a);
  t.deepEqual(listed.map((m) => m.encryption), shops.map(() => 'k2'));
  t.is(await a.metric('countersign_store_records', { store: 'redis', encryption: 'k2' }), 6);
  t.is(await a.metric('countersign_store_records', { store: 'redis', encryption: 'undecryptable' }), 0);
  // Nothing at rest shows a token, including the pairs written by the refreshes.
  const dump = await redisDump(prefix);
  t.true(dump.includes('"key":"k2"'));
  assertNoTokens(t, dump, [...a.secrets, ...b.secrets], 'the Redis dump');
  assertNoTokens(t, rekey.stdout + rekey.stderr, [...a.secrets, ...b.secrets], 'the rekey output');
});

test('a sealed record copied under another merchant\'s key: that merchant is undecryptable and refused, the others served, readiness up; a re-import replaces it', async (t) => {
  const prefix = uniquePrefix('copied');
  t.teardown(() => cleanPrefix(prefix));
  const keys = keyDir(t);
  const k1 = keys.write('k1');
  const sim = await keetaSim(t);
  const yaml = `${storeYaml({ redis: prefix }, [['k1', k1]])}${upstreamYaml(sim)}`;
  const first = await gateway(t, yaml);
  await seed(sim, first, 'brand-a', '601');
  const victim = await seed(sim, first, 'brand-b', '602');
  await first.close();

  const rk = redisKeys(prefix);
  await withRedis(async (r) => r.set(rk.record('keeta', 'brand-b'), (await r.get(rk.record('keeta', 'brand-a')))!));

  // At startup: brand-b is quarantined, brand-a served, the process ready.
  const gw = await gateway(t, yaml);
  t.is((await fetch(`${gw.adminUrl}/readyz`)).status, 200);
  t.is((await order(gw, '601')).json.code, 0);
  const refused = await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 1 }, { 'x-countersign-merchant': 'brand-b' });
  t.is(refused.status, 503);
  t.is(refused.json.error.code, 'TOKEN_UNAVAILABLE');
  t.regex(refused.json.error.message, /brand-b.*cannot be used: it names another upstream or merchant/);
  const list = await listing(gw);
  t.deepEqual(list.find((m) => m.merchant === 'brand-b')?.state, 'undecryptable');
  t.deepEqual(list.find((m) => m.merchant === 'brand-b')?.encryption, 'undecryptable');
  t.deepEqual(list.find((m) => m.merchant === 'brand-a')?.encryption, 'k1');
  t.is(await gw.metric('countersign_store_records', { store: 'redis', encryption: 'undecryptable' }), 1);
  t.is(await gw.metric('countersign_store_records', { store: 'redis', encryption: 'k1' }), 1);
  const logged = gw.logs.map((l) => JSON.parse(l)).filter((l) => /token record cannot be used/.test(l.msg));
  t.is(logged.length, 1, 'logged once');
  t.is(logged[0].merchant, 'brand-b');
  // Never overwritten by a renewal: the admin refresh is refused and the record is unchanged.
  const before = await withRedis((r) => r.get(rk.record('keeta', 'brand-b')));
  const renew = await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-b/refresh`, { method: 'POST' });
  t.is(renew.status, 503);
  t.is(await withRedis((r) => r.get(rk.record('keeta', 'brand-b'))), before);
  t.is(sim.control.counters().refreshCalls, 0);

  // The operator imports the pair again: it replaces the record and is served.
  await importPair(gw.adminUrl, 'keeta', 'brand-b', victim, ['602']);
  t.is((await order(gw, '602')).json.code, 0);
  t.is((await listing(gw)).find((m) => m.merchant === 'brand-b')?.encryption, 'k1');
  t.is(await gw.metric('countersign_store_records', { store: 'redis', encryption: 'undecryptable' }), 0);

  // On a pub/sub reload: a record copied over a served merchant, then announced, is refused.
  await withRedis(async (r) => {
    await r.set(rk.record('keeta', 'brand-a'), (await r.get(rk.record('keeta', 'brand-b')))!);
    await r.publish(rk.channel(), JSON.stringify({ upstream: 'keeta', merchant: 'brand-a' }));
  });
  await eventually(() => gw.app.cache.get('keeta', 'brand-a') === undefined, 'brand-a to be dropped');
  const dropped = await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 1 }, { 'x-countersign-merchant': 'brand-a' });
  t.is(dropped.json.error.code, 'TOKEN_UNAVAILABLE');
  t.is((await order(gw, '602')).json.code, 0, 'the other merchant keeps working');
  t.is((await fetch(`${gw.adminUrl}/readyz`)).status, 200);
});

test('one malformed Redis record no longer keeps the store "unreachable at start" forever: the gateway opens, serves the others and is ready', async (t) => {
  const prefix = uniquePrefix('malformed');
  t.teardown(() => cleanPrefix(prefix));
  const sim = await keetaSim(t);
  const yaml = `${storeYaml({ redis: prefix })}${upstreamYaml(sim)}`;
  const first = await gateway(t, yaml);
  await seed(sim, first, 'brand-a', '701');
  await seed(sim, first, 'brand-b', '702');
  await first.close();
  const rk = redisKeys(prefix);
  await withRedis((r) => r.set(rk.record('keeta', 'brand-b'), '{"accessToken":"torn-'));

  const gw = await gateway(t, yaml);
  t.is((await fetch(`${gw.adminUrl}/readyz`)).status, 200);
  t.false(gw.logText().includes('token store unreachable at start'), 'no retry loop');
  t.is((await order(gw, '701')).json.code, 0);
  // Its shops are inside the record, so by shop it is an unknown shop; by merchant it is refused.
  t.is((await order(gw, '702')).status, 400);
  const byHeader = await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 1 }, { 'x-countersign-merchant': 'brand-b' });
  t.is(byHeader.json.error.code, 'TOKEN_UNAVAILABLE');
  t.is((await listing(gw)).find((m) => m.merchant === 'brand-b')?.state, 'undecryptable');
  t.is((await listing(gw)).find((m) => m.merchant === 'brand-a')?.encryption, 'plaintext');
  t.is(await gw.metric('countersign_store_records', { store: 'redis', encryption: 'plaintext' }), 1);
  t.is(await withRedis((r) => r.get(rk.record('keeta', 'brand-b'))), '{"accessToken":"torn-', 'left untouched');
});

test('file store: a plaintext file is migrated when encryption is turned on (at start and by a reload)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-enc-file-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'tokens.json');
  const keys = keyDir(t);
  const k1 = keys.write('k1');
  const sim = await keetaSim(t);
  const plain = await gateway(t, `${storeYaml({ file })}${upstreamYaml(sim)}`);
  const pair = await seed(sim, plain, 'brand-a', '801');
  t.true(readFileSync(file, 'utf8').includes(pair.refreshToken), 'plaintext before');
  t.is((await listing(plain)).find((m) => m.merchant === 'brand-a')?.encryption, 'plaintext');
  // Turned on by a reload: the running gateway reseals its file.
  reload(plain, `${storeYaml({ file }, [['k1', k1]])}${upstreamYaml(sim)}`);
  await eventually(() => !readFileSync(file, 'utf8').includes(pair.refreshToken), 'the file to be resealed');
  assertNoTokens(t, readFileSync(file, 'utf8'), [pair.accessToken, pair.refreshToken], 'the token file');
  await eventually(async () => (await listing(plain)).find((m) => m.merchant === 'brand-a')?.encryption === 'k1', 'the listing to show k1');
  const second = await seed(sim, plain, 'brand-b', '802');
  await plain.close();

  // Turned on at start: a plaintext record written meanwhile is migrated when the file is opened.
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  doc.records.push({ upstream: 'keeta', merchant: 'brand-c', accessToken: 'plain-access-c-123', refreshToken: 'plain-refresh-c-456', issuedAt: Date.now() - 1000, expiresAt: Date.now() + 80 * 86_400_000, refreshedAt: Date.now() - 1000, shopIds: ['803'] });
  writeFileSync(file, JSON.stringify(doc));
  const gw = await gateway(t, `${storeYaml({ file }, [['k1', k1]])}${upstreamYaml(sim)}`);
  assertNoTokens(t, readFileSync(file, 'utf8'), [pair.accessToken, pair.refreshToken, second.accessToken, second.refreshToken, 'plain-access-c-123', 'plain-refresh-c-456'], 'the token file');
  t.deepEqual((await listing(gw)).map((m) => m.encryption), ['k1', 'k1', 'k1']);
  t.is((await order(gw, '801')).json.code, 0);
  t.is(await gw.metric('countersign_store_records', { store: 'file', encryption: 'k1' }), 3);
});

test('only an unknown key configured: merchants refused, the process keeps running; with the right key (reload) the records are intact', async (t) => {
  const prefix = uniquePrefix('lostkey');
  t.teardown(() => cleanPrefix(prefix));
  const keys = keyDir(t);
  const right = keys.write('right');
  const wrong = keys.write('wrong');
  const sim = await keetaSim(t);
  const first = await gateway(t, `${storeYaml({ redis: prefix }, [['k1', right]])}${upstreamYaml(sim)}`);
  const pair = await seed(sim, first, 'brand-a', '901');
  await first.close();
  const sealedBefore = await redisDump(prefix);

  const gw = await gateway(t, `${storeYaml({ redis: prefix }, [['k9', wrong]])}${upstreamYaml(sim)}`);
  t.is((await fetch(`${gw.adminUrl}/readyz`)).status, 200, 'the process runs and is ready');
  const refused = await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 1 }, { 'x-countersign-merchant': 'brand-a' });
  t.is(refused.json.error.code, 'TOKEN_UNAVAILABLE');
  t.regex(refused.json.error.message, /no configured key opens it \(sealed with key "k1"; configured: k9\)/);
  t.is((await listing(gw))[0]?.state, 'undecryptable');
  t.is(await redisDump(prefix), sealedBefore, 'nothing was rewritten');

  reload(gw, `${storeYaml({ redis: prefix }, [['k9', wrong], ['k1', right]])}${upstreamYaml(sim)}`);
  await eventually(() => gw.app.cache.get('keeta', 'brand-a') !== undefined, 'the record to open with the right key');
  t.is(gw.app.cache.get('keeta', 'brand-a')?.refreshToken, pair.refreshToken, 'the record is intact');
  t.is((await order(gw, '901')).json.code, 0);
  t.is((await listing(gw))[0]?.encryption, 'k1');
});

test('check-config and serve warn once when records would be stored in plaintext; not with a key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-enc-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const keys = keyDir(t);
  const k1 = keys.write('k1');
  const upstreams = 'upstreams:\n  ks:\n    type: keysecure\n    baseUrl: http://127.0.0.1:1\n    apiKey: warn-test-api-key\n';
  const plain = join(dir, 'plain.yaml');
  writeFileSync(plain, `${LISTEN}store:\n  type: file\n  path: ${join(dir, 'tokens.json')}\n${upstreams}`);
  const sealed = join(dir, 'sealed.yaml');
  writeFileSync(sealed, `${LISTEN}store:\n  type: file\n  path: ${join(dir, 'tokens.json')}\n${encryptionYaml([['k1', k1]])}${upstreams}`);

  const warned = await runCli(['check-config', '--config', plain]);
  t.is(warned.code, 0);
  t.is(warned.stderr.match(/warning: store\.encryption is not set: token records are stored in plaintext in the file store/g)?.length, 1, warned.stderr);
  const quiet = await runCli(['check-config', '--config', sealed]);
  t.is(quiet.code, 0);
  t.is(quiet.stderr, '');
  t.regex(quiet.stdout, /encryption keys \[k1\] \(plaintext: migrate\)/);

  const child = spawnCli(['serve', '--config', plain]);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  t.teardown(() => void child.kill('SIGKILL'));
  await eventually(() => out.includes('countersign listening'), 'serve to start', 20_000);
  child.kill('SIGTERM');
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; level: number | string });
  t.is(lines.filter((l) => /token records are stored in plaintext/.test(l.msg)).length, 1);

  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, `${LISTEN}store:\n  type: file\n${encryptionYaml([['k1', join(dir, 'nope')]])}${upstreams}`);
  const refused = await runCli(['check-config', '--config', bad]);
  t.is(refused.code, 2);
  t.true(refused.stderr.includes(`store.encryption.keys[0].keyFile: cannot read ${join(dir, 'nope')} (ENOENT)`), refused.stderr);
});
