import test from 'ava';
import { KEETA_SIM_CODES, startKeetaSim, startKeySecureSim } from '../../src/sim/index.js';
import { RedisStore } from '../../src/tokens/redis-store.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { postJson } from '../helpers/http.js';
import { KEETA_APP_ID, KEETA_SECRET, importPair } from '../helpers/keeta-setup.js';
import { KS_API_KEY } from '../helpers/keysecure-setup.js';
import { SHARED_REDIS_URL, cleanPrefix, startPrivateRedis, uniquePrefix } from '../helpers/redis-server.js';

const SHOP = '466663';

async function replicas(t: any, n: number, redisUrl: string, prefix: string, keetaBase: string, ksBase: string): Promise<TestGateway[]> {
  const out: TestGateway[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      await startGateway(`store:
  type: redis
  url: ${redisUrl}
  keyPrefix: "${prefix}"
upstreams:
  keeta:
    type: keeta
    baseUrl: ${keetaBase}
    appId: ${KEETA_APP_ID}
    appSecret: ${KEETA_SECRET}
    tokenErrorCodes: [${KEETA_SIM_CODES.ACCESS_TOKEN_INVALID}]
  ks:
    type: keysecure
    baseUrl: ${ksBase}
    apiKey: ${KS_API_KEY}
`, { store: 'config' }),
    );
  }
  t.teardown(async () => {
    for (const gw of out) await gw.close();
  });
  return out;
}

/** Both simulators for one test, closed in its teardown. */
async function simulators(t: any) {
  const keeta = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET });
  const ks = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY }] });
  t.teardown(async () => {
    await keeta.close();
    await ks.close();
  });
  return { keeta, ks };
}

/** A merchant seeded in the Keeta simulator and imported through a replica's admin API. */
async function seedMerchant(keeta: Awaited<ReturnType<typeof startKeetaSim>>, adminUrl: string, opts: { expiresInSec?: number } = {}) {
  const pair = keeta.control.addMerchant({ merchantId: 'brand-1', shopIds: [SHOP], issuedAtMs: Date.now() - 600_000, ...opts });
  await importPair(adminUrl, 'keeta', 'brand-1', pair, [SHOP]);
  return pair;
}

async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('three replicas on one Redis: a cold KeySecure burst makes one token call; a Keeta burst in the window makes one refresh; imports are shared', async (t) => {
  const prefix = uniquePrefix('replicas');
  t.teardown(() => cleanPrefix(prefix));
  const { keeta, ks } = await simulators(t);
  const gws = await replicas(t, 3, SHARED_REDIS_URL, prefix, keeta.baseUrl, ks.baseUrl);

  // 150 concurrent cold KeySecure calls spread over the three replicas.
  const ksResults = await Promise.all(
    Array.from({ length: 150 }, (_, i) => postJson(`${gws[i % 3]!.proxyUrl}/ks/open-api/v1/card/list`, { page: 0 })),
  );
  t.true(ksResults.every((r) => r.json?.code === 0), 'every call succeeds');
  t.is(ks.control.counters().tokenCalls, 1, 'one token call across all replicas');

  // A merchant imported through replica 0, with its token inside the 4-day refresh window.
  const pair = await seedMerchant(keeta, gws[0]!.adminUrl, { expiresInSec: 3 * 86_400 });
  await eventually(() => gws.every((g) => g.app.cache.get('keeta', 'brand-1') !== undefined), 'the import to reach every replica');
  const served = await postJson(`${gws[2]!.proxyUrl}/keeta/order/get`, { orderViewId: 1, shopId: Number(SHOP) });
  t.is(served.json.code, 0, 'a merchant imported through one replica is served by another');

  const keetaResults = await Promise.all(
    Array.from({ length: 150 }, (_, i) => postJson(`${gws[i % 3]!.proxyUrl}/keeta/order/get`, { orderViewId: 100 + i, shopId: Number(SHOP) })),
  );
  t.true(keetaResults.every((r) => r.json?.code === 0), 'every Keeta call succeeds');
  const rotated = () => keeta.control.merchant('brand-1')!.accessToken !== pair.accessToken;
  await eventually(rotated, 'the refresh');
  await eventually(() => gws.every((g) => g.app.cache.get('keeta', 'brand-1')!.accessToken === keeta.control.merchant('brand-1')!.accessToken), 'every replica to use the new pair');
  await new Promise((r) => setTimeout(r, 200));
  t.is(keeta.control.counters().refreshCalls, 1, 'one refresh across all replicas');
  t.is(keeta.control.counters().refreshReuse, 0, 'no refresh token sent twice');
  let refreshes = 0;
  for (const g of gws) refreshes += await g.metric('countersign_token_refreshes_total', { upstream: 'keeta', trigger: 'on_demand', result: 'success' });
  t.is(refreshes, 1);
});

test('Redis stopped mid-test: cached tokens serve, readiness stays up with the store unavailable, the gauge is 0; Redis back: the next refresh works', async (t) => {
  const redis = await startPrivateRedis();
  t.teardown(() => redis.dispose());
  const prefix = uniquePrefix('outage');
  const { keeta, ks } = await simulators(t);
  const [gw] = await replicas(t, 1, redis.url, prefix, keeta.baseUrl, ks.baseUrl);
  await seedMerchant(keeta, gw!.adminUrl);
  t.is((await postJson(`${gw!.proxyUrl}/ks/open-api/v1/card/list`, {})).json.code, 0);
  t.is(await gw!.metric('countersign_store_up', { store: 'redis' }), 1);

  await redis.stop();
  await eventually(async () => (await gw!.metric('countersign_store_up', { store: 'redis' })) === 0, 'the gauge to drop');
  t.is((await postJson(`${gw!.proxyUrl}/keeta/order/get`, { orderViewId: 1, shopId: Number(SHOP) })).json.code, 0, 'cached Keeta token serves');
  t.is((await postJson(`${gw!.proxyUrl}/ks/open-api/v1/card/list`, {})).json.code, 0, 'cached KeySecure token serves');
  const ready = await fetch(`${gw!.adminUrl}/readyz`);
  t.is(ready.status, 200);
  t.deepEqual(await ready.json(), { status: 'ready', store: 'unavailable' });
  const needsStore = await postJson(`${gw!.proxyUrl}/keeta/order/get`, { orderViewId: 1 }, { 'x-countersign-merchant': 'not-cached' });
  t.is(needsStore.status, 503);
  t.is(needsStore.json.error.code, 'STORE_UNAVAILABLE');

  await redis.start();
  const refreshed = await (async () => {
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${gw!.adminUrl}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' });
      if (res.status === 200) return res;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('refresh never succeeded after Redis came back');
  })();
  t.is(refreshed.status, 200);
  t.is(keeta.control.counters().refreshCalls, 1);
  t.is(keeta.control.counters().refreshReuse, 0);
  await eventually(async () => (await gw!.metric('countersign_store_up', { store: 'redis' })) === 1, 'the gauge to recover');
  const stored = await new RedisStore({ url: redis.url, keyPrefix: prefix });
  await stored.open();
  t.is((await stored.get('keeta', 'brand-1'))!.accessToken, keeta.control.merchant('brand-1')!.accessToken, 'the rotated pair is in Redis');
  await stored.close();
});

test('a Redis that comes back empty gets the newest pair back from a replica that holds it', async (t) => {
  const redis = await startPrivateRedis({ persist: false });
  t.teardown(() => redis.dispose());
  const prefix = uniquePrefix('empty');
  const { keeta, ks } = await simulators(t);
  const [gw] = await replicas(t, 1, redis.url, prefix, keeta.baseUrl, ks.baseUrl);
  const pair = await seedMerchant(keeta, gw!.adminUrl);
  await redis.stop();
  await redis.start(); // no persistence: everything is gone
  const check = new RedisStore({ url: redis.url, keyPrefix: prefix });
  await check.open();
  t.teardown(() => check.close());
  await eventually(async () => (await check.get('keeta', 'brand-1'))?.refreshToken === pair.refreshToken, 'the pair to be written back', 10_000);
  t.deepEqual((await check.get('keeta', 'brand-1'))!.shopIds, [SHOP]);
  t.regex(gw!.logText(), /written back/);
  t.false(gw!.logText().includes(pair.refreshToken));
});

test('/readyz is 503 "starting" until the store has answered once, then 200', async (t) => {
  const redis = await startPrivateRedis({ persist: false });
  t.teardown(() => redis.dispose());
  await redis.stop();
  const ks = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY }] });
  t.teardown(() => ks.close());
  const gw = await startGateway(
    `store:
  type: redis
  url: ${redis.url}
  keyPrefix: "${uniquePrefix('starting')}"
upstreams:
  ks:
    type: keysecure
    baseUrl: ${ks.baseUrl}
    apiKey: ${KS_API_KEY}
`,
    { store: 'config' },
  );
  t.teardown(() => gw.close());
  const before = await fetch(`${gw.adminUrl}/readyz`);
  t.is(before.status, 503);
  t.deepEqual(await before.json(), { status: 'starting', store: 'unavailable' });
  t.is((await fetch(`${gw.adminUrl}/healthz`)).status, 200, 'alive while not ready');
  await redis.start();
  await eventually(async () => (await fetch(`${gw.adminUrl}/readyz`)).status === 200, 'readiness once Redis answers', 15_000);
  t.deepEqual(await (await fetch(`${gw.adminUrl}/readyz`)).json(), { status: 'ready', store: 'ok' });
});
