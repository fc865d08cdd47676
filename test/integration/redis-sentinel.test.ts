/**
 * Sentinel failover with real servers: a master, a replica and three sentinels (Debian's
 * redis-server and redis-sentinel) on loopback. The master is killed while requests on both
 * upstreams and a Keeta refresh are running.
 */
import test from 'ava';
import { startKeetaSim, startKeySecureSim } from '../../src/sim/index.js';
import { RedisStore } from '../../src/tokens/redis-store.js';
import { startGateway } from '../helpers/gateway.js';
import { postJson } from '../helpers/http.js';
import { KEETA_APP_ID, KEETA_SECRET, importPair } from '../helpers/keeta-setup.js';
import { KS_API_KEY } from '../helpers/keysecure-setup.js';
import { startSentinelSet } from '../helpers/redis-topology.js';

const SHOP = 466663;

async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('Sentinel: the master is killed during traffic and a Keeta refresh; the gateway serves from its cache, follows the new master, and the next refresh works', async (t) => {
  t.timeout(120_000);
  const set = await startSentinelSet();
  t.teardown(() => set.dispose());
  const keeta = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET, refreshSpacingMs: 0 });
  const ks = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY }] });
  t.teardown(async () => {
    await keeta.close();
    await ks.close();
  });
  const keyPrefix = 'cs-sentinel:';
  const storeConfig = { sentinels: set.sentinelAddresses, name: set.name, keyPrefix };
  const gw = await startGateway(
    `store:
  type: redis
  sentinels: [${set.sentinelAddresses.map((a) => `"${a}"`).join(', ')}]
  name: ${set.name}
  keyPrefix: "${keyPrefix}"
upstreams:
  keeta:
    type: keeta
    baseUrl: ${keeta.baseUrl}
    appId: ${KEETA_APP_ID}
    appSecret: ${KEETA_SECRET}
    refreshSpacing: 0s
    timeout: 5s
  ks:
    type: keysecure
    baseUrl: ${ks.baseUrl}
    apiKey: ${KS_API_KEY}
    timeout: 5s
`,
    { store: 'config' },
  );
  t.teardown(() => gw.close());
  const pair = keeta.control.addMerchant({ merchantId: 'brand-1', shopIds: [String(SHOP)], issuedAtMs: Date.now() - 600_000 });
  await importPair(gw.adminUrl, 'keeta', 'brand-1', pair, [String(SHOP)]);
  t.is((await postJson(`${gw.proxyUrl}/ks/open-api/v1/card/list`, {})).json.code, 0);
  const oldMasterPort = await set.currentMasterPort();
  t.is(oldMasterPort, set.master.port);

  // Steady traffic on both upstreams for the whole test.
  let running = true;
  const outcomes: Array<{ upstream: string; ok: boolean; text: string }> = [];
  const loop = async (upstream: 'keeta' | 'ks') => {
    for (let i = 0; running; i++) {
      const res =
        upstream === 'keeta'
          ? await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 1000 + i, shopId: SHOP })
          : await postJson(`${gw.proxyUrl}/ks/open-api/v1/card/list`, { page: 0 });
      outcomes.push({ upstream, ok: res.json?.code === 0, text: res.text });
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const load = Promise.all([loop('keeta'), loop('ks')]);

  // A Keeta refresh in flight (the simulator holds its answer) when the master dies.
  keeta.control.setLatency(800);
  const refreshDuringFailover = fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' });
  await eventually(() => keeta.control.counters().refreshCalls === 1, 'the refresh to reach Keeta', 10_000);
  await set.master.kill();
  const killedAt = Date.now();
  const firstRefresh = await refreshDuringFailover;
  keeta.control.setLatency(0);

  await eventually(async () => (await set.currentMasterPort()) === set.replica.port, 'the sentinels to promote the replica', 60_000);
  await eventually(async () => (await gw.metric('countersign_store_up', { store: 'redis' })) === 1 && gw.app.readiness().store === 'ok', 'the gateway to reach the new master', 30_000);
  t.log(`failover followed ${Date.now() - killedAt} ms after the master was killed; first refresh answered ${firstRefresh.status}`);

  // The refresh under way ended with the new pair in the new master (its write was retried
  // while it held the lock), or it was refused without spending anything twice.
  const check = new RedisStore(storeConfig);
  t.teardown(() => check.close());
  await check.open();
  const rotated = keeta.control.merchant('brand-1')!;
  if (firstRefresh.status === 200) {
    await eventually(async () => (await check.get('keeta', 'brand-1'))?.refreshToken === rotated.refreshToken, 'the rotated pair in the new master');
  }

  // The next refresh works, from the newest refresh token.
  const next = await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' });
  t.is(next.status, 200, await next.clone().text());
  t.is(keeta.control.counters().refreshReuse, 0, 'no refresh token used twice');
  t.is((await check.get('keeta', 'brand-1'))?.accessToken, keeta.control.merchant('brand-1')!.accessToken, 'the new master holds the newest pair');

  // The load keeps going until both upstreams have seen traffic across the failover (how many
  // Keeta requests fit before this point depends on how fast the sentinels promote).
  const count = (u: string) => outcomes.filter((o) => o.upstream === u).length;
  await eventually(() => count('ks') > 10 && count('keeta') > 3, 'requests on both upstreams', 20_000);
  running = false;
  await load;
  const failed = outcomes.filter((o) => !o.ok);
  const served = { ks: count('ks'), keeta: count('keeta') };
  t.log(`${served.ks} KeySecure and ${served.keeta} Keeta requests during the test`);
  t.true(served.ks > 10 && served.keeta > 3, `${served.ks} KeySecure and ${served.keeta} Keeta requests`);
  t.deepEqual(failed, [], 'every request was served from the cache during the failover');
  const res = await postJson(`${gw.proxyUrl}/keeta/order/get`, { orderViewId: 1, shopId: SHOP });
  t.is(res.json.code, 0, 'the refreshed token serves');
});
