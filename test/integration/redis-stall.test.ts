/**
 * A Redis that stalls (SIGSTOP) while renewals take the lock, then resumes (SIGCONT).
 *
 * The lock's `SET NX PX` times out on the client but Redis executes it when it resumes: a lock
 * nobody believes they hold. The store releases such an acquisition (compare-and-delete of its
 * own owner value) as soon as Redis answers, so service returns within a few seconds of CONT.
 * While Redis is stalled: KeySecure renews without the cross-replica lock and writes its token
 * once Redis answers again; Keeta never refreshes without the lock and keeps its token.
 */
import test from 'ava';
import { Redis } from 'ioredis';
import { startKeetaSim, startKeySecureSim } from '../../src/sim/index.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { postJson } from '../helpers/http.js';
import { KEETA_APP_ID, KEETA_SECRET, importPair } from '../helpers/keeta-setup.js';
import { KS_API_KEY } from '../helpers/keysecure-setup.js';
import { SHARED_REDIS_URL, cleanPrefix, startPrivateRedis, uniquePrefix } from '../helpers/redis-server.js';

const SHOP = 466663;
const TIMEOUT_MS = 3000;

async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A request and how long the gateway held it. */
async function timed<T>(p: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await p();
  return { value, ms: Date.now() - started };
}

test.serial('Redis stalled while renewals take the lock: KeySecure renews without it, Keeta keeps its token; after CONT the orphaned locks are gone at once and renewals work', async (t) => {
  t.timeout(90_000);
  const redis = await startPrivateRedis({ persist: false });
  t.teardown(() => redis.dispose());
  const prefix = uniquePrefix('stall');
  const keeta = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET, refreshSpacingMs: 0 });
  const ks = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY }] });
  t.teardown(async () => {
    await keeta.close();
    await ks.close();
  });
  const config = `store:
  type: redis
  url: ${redis.url}
  keyPrefix: "${prefix}"
upstreams:
  keeta:
    type: keeta
    baseUrl: ${keeta.baseUrl}
    appId: ${KEETA_APP_ID}
    appSecret: ${KEETA_SECRET}
    refreshSpacing: 0s
    timeout: 8s
  ks:
    type: keysecure
    baseUrl: ${ks.baseUrl}
    apiKey: ${KS_API_KEY}
    timeout: ${TIMEOUT_MS}ms
`;
  const gws: TestGateway[] = [];
  for (let i = 0; i < 2; i++) gws.push(await startGateway(config, { store: 'config' }));
  t.teardown(async () => {
    for (const g of gws) await g.close();
  });
  const [a, b] = gws as [TestGateway, TestGateway];
  const pair = keeta.control.addMerchant({ merchantId: 'brand-1', shopIds: [String(SHOP)], issuedAtMs: Date.now() - 600_000 });
  await importPair(a.adminUrl, 'keeta', 'brand-1', pair, [String(SHOP)]);
  await eventually(() => b.app.cache.get('keeta', 'brand-1') !== undefined, 'the import to reach replica b');
  for (const g of gws) t.is((await postJson(`${g.proxyUrl}/ks/open-api/v1/card/list`, {})).json.code, 0, 'warm: KeySecure token cached');
  const ksCalls = ks.control.counters().tokenCalls;

  // ---- Redis stalls; KeySecure revokes every token.
  redis.pause();
  ks.control.revokeTokens();
  const during = await Promise.all(
    Array.from({ length: 12 }, (_, i) => timed(() => postJson(`${gws[i % 2]!.proxyUrl}/ks/open-api/v1/card/list`, { page: 0 }))),
  );
  for (const r of during) {
    t.is(r.value.json?.code, 0, `KeySecure served while Redis is stalled: ${r.value.text}`);
    t.true(r.ms <= TIMEOUT_MS + 1000, `held ${r.ms} ms`);
  }
  t.true(ks.control.counters().tokenCalls - ksCalls <= 2, 'one renewal per replica (in-process single flight)');
  // Keeta: the cached token serves; a refresh is refused without the lock.
  const keetaDuring = await timed(() => postJson(`${a.proxyUrl}/keeta/order/get`, { orderViewId: 1, shopId: SHOP }));
  t.is(keetaDuring.value.json.code, 0, 'Keeta serves its current token');
  const refreshDuring = await timed(() => fetch(`${a.adminUrl}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' }));
  t.is(refreshDuring.value.status, 503, 'no Keeta refresh without the lock');
  t.is(keeta.control.counters().refreshCalls, 0, 'the refresh token was not spent');
  t.true((await a.metric('countersign_store_degraded_total', { upstream: 'ks', action: 'renewed_without_lock' })) >= 1);
  t.true((await a.metric('countersign_store_degraded_total', { upstream: 'keeta', action: 'kept_current_token' })) >= 1);
  t.regex(a.logText(), /"merchant":"brand-1".*no refresh without the cross-replica lock/);
  t.regex(a.logText(), /"upstream":"ks".*renewing without the cross-replica lock/);

  // ---- Redis resumes: the SET NX sent during the stall run now, and are released at once.
  await new Promise((r) => setTimeout(r, 1500));
  redis.resume();
  const resumedAt = Date.now();
  const direct = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  t.teardown(() => direct.disconnect());
  await direct.ping();
  // Their leases would keep them 5 s (KeySecure) and 10 s (Keeta: timeout 8 s + 2 s) after CONT.
  await eventually(async () => (await direct.keys(`${prefix}lock:*`)).length === 0, 'no lock left behind', 4000);
  t.true(Date.now() - resumedAt < 4500, `locks gone ${Date.now() - resumedAt} ms after CONT`);

  // A token renewed without the lock reaches the store once it answers again, and every
  // replica converges on the newest one.
  await eventually(async () => {
    const raw = await direct.get(`${prefix}token:{ks:_}`);
    return raw !== null && gws.every((g) => g.app.cache.get('ks', '_')?.accessToken === (JSON.parse(raw) as { accessToken: string }).accessToken);
  }, 'every replica on the token in the store', 5000);
  // KeySecure revokes again: renewals take the lock and work right away.
  ks.control.revokeTokens();
  const after = await Promise.all(
    Array.from({ length: 8 }, (_, i) => timed(() => postJson(`${gws[i % 2]!.proxyUrl}/ks/open-api/v1/card/list`, { page: 0 }))),
  );
  for (const r of after) {
    t.is(r.value.json?.code, 0, `KeySecure served after CONT: ${r.value.text}`);
    t.true(r.ms <= TIMEOUT_MS + 1000, `held ${r.ms} ms`);
  }
  // Keeta refreshes under the lock, once, with no refresh token sent twice.
  const refreshed = await fetch(`${b.adminUrl}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' });
  t.is(refreshed.status, 200, await refreshed.clone().text());
  t.true(Date.now() - resumedAt < 8000, 'service returned within a few seconds of CONT');
  t.is(keeta.control.counters().refreshCalls, 1);
  t.is(keeta.control.counters().refreshReuse, 0);
  for (const g of gws) {
    const text = g.logText();
    t.false(text.includes(pair.accessToken) || text.includes(pair.refreshToken), 'no token in logs');
  }
});

test.serial('a caller waits for another replica\'s renewal at most its upstream\'s timeout, then gets TOKEN_UNAVAILABLE with Retry-After', async (t) => {
  const prefix = uniquePrefix('wait-bound');
  t.teardown(() => cleanPrefix(prefix));
  const ks = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY }] });
  t.teardown(() => ks.close());
  const gw = await startGateway(
    `store:
  type: redis
  url: ${SHARED_REDIS_URL}
  keyPrefix: "${prefix}"
upstreams:
  ks:
    type: keysecure
    baseUrl: ${ks.baseUrl}
    apiKey: ${KS_API_KEY}
    timeout: 1500ms
`,
    { store: 'config' },
  );
  t.teardown(() => gw.close());
  // Another replica holds the renewal lock and never finishes (its lease is long).
  const direct = new Redis(SHARED_REDIS_URL, { maxRetriesPerRequest: 1 });
  t.teardown(() => direct.disconnect());
  await direct.set(`${prefix}lock:{ks:_}`, 'another-replica', 'PX', 30_000);

  const waited = await timed(() => postJson(`${gw.proxyUrl}/ks/open-api/v1/card/list`, {}));
  t.is(waited.value.status, 503);
  t.is(waited.value.json.error.code, 'TOKEN_UNAVAILABLE');
  t.regex(waited.value.headers.get('retry-after') ?? '', /^\d+$/);
  // Bounded by the 1.5 s timeout, not by the other replica's 30 s lease (generous margin: a
  // loaded machine runs timers late).
  t.true(waited.ms >= 1400 && waited.ms < 8000, `held ${waited.ms} ms`);
  t.is(ks.control.counters().tokenCalls, 0, 'no renewal beside the lock holder');
  t.is(await direct.get(`${prefix}lock:{ks:_}`), 'another-replica', 'the other replica\'s lock is left alone');

  // The holder is gone (its lease ended): the next request renews.
  await direct.del(`${prefix}lock:{ks:_}`);
  const served = await postJson(`${gw.proxyUrl}/ks/open-api/v1/card/list`, {});
  t.is(served.json.code, 0, served.text);
  t.is(ks.control.counters().tokenCalls, 1);
});
