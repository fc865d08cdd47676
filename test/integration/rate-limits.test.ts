/**
 * Rate limits over real sockets: two replicas sharing one budget through the real Redis, the
 * RATE_LIMITED refusal, the per-process fallback while Redis is down, and the cooldown after
 * KeySecure's 1009.
 */
import test from 'ava';
import { Agent, request } from 'node:http';
import { Redis } from 'ioredis';
import { KEETA_SIM_CODES, startKeetaSim, startKeySecureSim } from '../../src/sim/index.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { postJson } from '../helpers/http.js';
import { KEETA_APP_ID, KEETA_SECRET, importPair } from '../helpers/keeta-setup.js';
import { KS_API_KEY, businessCodes, keySecureSetup } from '../helpers/keysecure-setup.js';
import { SHARED_REDIS_URL, cleanPrefix, startPrivateRedis, uniquePrefix } from '../helpers/redis-server.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A lean JSON POST (node:http, keep-alive): on a busy machine fetch's own cost would set the pace. */
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}
const SHOP = 466663;

async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Two gateways on one Redis store, Keeta in front of one simulator, one merchant imported. */
async function twoKeetaReplicas(t: any, rules: string) {
  const prefix = uniquePrefix('rate-limits');
  t.teardown(() => cleanPrefix(prefix));
  const keeta = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET });
  t.teardown(() => keeta.close());
  const gws: TestGateway[] = [];
  t.teardown(async () => {
    for (const gw of gws) await gw.close();
  });
  for (let i = 0; i < 2; i++) {
    gws.push(
      await startGateway(
        `store:
  type: redis
  url: ${SHARED_REDIS_URL}
  keyPrefix: "${prefix}"
upstreams:
  keeta:
    type: keeta
    baseUrl: ${keeta.baseUrl}
    appId: ${KEETA_APP_ID}
    appSecret: ${KEETA_SECRET}
    tokenErrorCodes: [${KEETA_SIM_CODES.ACCESS_TOKEN_INVALID}]
    rateLimits:
${rules}`,
        { store: 'config' },
      ),
    );
  }
  const pair = keeta.control.addMerchant({ merchantId: 'brand-1', shopIds: [String(SHOP)], issuedAtMs: Date.now() - 600_000 });
  await importPair(gws[0]!.adminUrl, 'keeta', 'brand-1', pair, [String(SHOP)]);
  // Replica 1 learns the merchant through the store's change notification.
  await eventually(() => gws[1]!.app.cache.merchantForShop('keeta', String(SHOP)) !== undefined, 'the import to reach replica 1');
  return { keeta, gws, prefix };
}

test('two replicas share one budget: the rate reaching the upstream stays within 10% of the configured 5/s', async (t) => {
  const { keeta, gws, prefix } = await twoKeetaReplicas(
    t,
    `      - name: orders
        paths: ["/order/get"]
        perSecond: 5
        maxWait: 30s
`,
  );
  keeta.control.reset();
  // 60 callers at once, half on each replica: 12 s of budget. Every one waits for its slot
  // (none is refused), so the shared budget, not the callers, sets the pace. (5/s rather than
  // more: each request costs this one test process 7-10 ms of CPU, and on a machine loaded with
  // other work the process must still keep up with the rate it measures; the arithmetic at
  // higher rates is covered by the unit tests.)
  const N = 60;
  const pending = Promise.all(
    Array.from({ length: N }, (_, i) => post(`${gws[i % 2]!.proxyUrl}/keeta/order/get`, { orderViewId: 1000 + i, shopId: SHOP })),
  );
  // While the queue drains: one budget, in Redis, under the store's prefix with a hash tag per upstream.
  await sleep(1500);
  const redis = new Redis(SHARED_REDIS_URL);
  t.teardown(() => redis.disconnect());
  t.deepEqual(await redis.keys(`${prefix}ratelimit:*`), [`${prefix}ratelimit:{keeta}:orders`]);
  const results = await pending;
  t.true(results.every((r) => r.json?.code === 0), `every request succeeded: ${[...new Set(results.map((r) => r.status))].join(', ')}`);
  const arrivals = keeta.control
    .counters()
    .requests.filter((r) => r.path === '/api/open/order/get')
    .map((r) => r.at)
    .sort((a, b) => a - b);
  t.is(arrivals.length, N);
  // The measured window is first to last arrival at the simulator (about 12 s). The rate is the
  // least-squares slope of arrival count over time, so a late timer at either end of the
  // window (a busy machine) does not decide the result.
  const rate = slopePerSecond(arrivals);
  const endToEnd = ((N - 1) * 1000) / (arrivals.at(-1)! - arrivals[0]!);
  const local = (await gws[0]!.metric('countersign_rate_limit_local_decisions_total', { upstream: 'keeta' })) + (await gws[1]!.metric('countersign_rate_limit_local_decisions_total', { upstream: 'keeta' }));
  t.log(`rate at the simulator: ${rate.toFixed(2)}/s fitted, ${endToEnd.toFixed(2)}/s first to last (configured 5/s, two replicas; ${local} local decisions)`);
  t.true(rate >= 4.5 && rate <= 5.5, `fitted rate ${rate.toFixed(2)}/s`);
  // Both replicas took part, and each counted waits under the rule.
  for (const gw of gws) t.true((await gw.metric('countersign_rate_limit_waits_total', { upstream: 'keeta', rule: 'orders' })) > 5);
  for (const gw of gws) t.is(await gw.metric('countersign_rate_limit_local_decisions_total', { upstream: 'keeta' }), 0);
});

/** Least-squares slope of "i-th arrival" against its time, in arrivals per second. */
function slopePerSecond(times: number[]): number {
  const n = times.length;
  const mt = times.reduce((a, b) => a + b, 0) / n;
  const mi = (n - 1) / 2;
  let num = 0;
  let den = 0;
  times.forEach((x, i) => {
    num += (x - mt) * (i - mi);
    den += (x - mt) ** 2;
  });
  return (num / den) * 1000;
}

test('a caller over the bound gets 429 RATE_LIMITED with Retry-After, on either replica, and nothing is forwarded for it', async (t) => {
  const { keeta, gws } = await twoKeetaReplicas(
    t,
    `      - name: cancels
        paths: ["/order/cancel"]
        perSecond: 0.5
        maxWait: 100ms
`,
  );
  keeta.control.reset();
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => postJson(`${gws[i % 2]!.proxyUrl}/keeta/order/cancel`, { orderViewId: 1, shopId: SHOP }, { 'x-request-id': `burst-${i}` })),
  );
  const refused = results.filter((r) => r.status === 429);
  const forwarded = results.filter((r) => r.status === 200);
  t.is(refused.length + forwarded.length, 20);
  // One every 2 s with 100 ms of waiting: one request at once, the next 2 s later is beyond the
  // bound. Only requests arriving 2 s apart can pass, so even on a slow machine very few do.
  t.true(forwarded.length >= 1 && forwarded.length <= 4, `${forwarded.length} forwarded`);
  t.is(keeta.control.counters().requests.filter((r) => r.path === '/api/open/order/cancel').length, forwarded.length);
  for (const r of refused) {
    t.is(r.json.error.code, 'RATE_LIMITED');
    t.regex(r.json.error.message, /keeta allows 0.5\/s under rule "cancels"/);
    t.regex(r.json.error.requestId, /^burst-\d+$/);
    t.regex(r.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    t.regex(r.headers.get('content-type') ?? '', /^application\/json/);
  }
  let refusedCount = 0;
  for (const gw of gws) {
    refusedCount += await gw.metric('countersign_rate_limited_total', { upstream: 'keeta', rule: 'cancels' });
    t.is(await gw.metric('countersign_rate_limited_total', { upstream: 'keeta', rule: 'cancels' }), await gw.metric('countersign_requests_total', { upstream: 'keeta', class: 'rejected' }));
  }
  t.is(refusedCount, refused.length);
  const line = gws.flatMap((gw) => gw.logs).find((l) => l.includes('"error":"RATE_LIMITED"'));
  t.like(JSON.parse(line ?? '{}'), { status: 429, class: 'rejected', upstream: 'keeta' });
});

test('while Redis is down each replica limits on its own, logged and counted; shared again once Redis answers', async (t) => {
  const redis = await startPrivateRedis({ persist: false });
  t.teardown(() => redis.dispose());
  const prefix = uniquePrefix('rate-fallback');
  const ks = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY }] });
  t.teardown(() => ks.close());
  // A password in the URL (this Redis needs none and ignores it) must never be logged.
  const password = 'limiter-redis-password-7f3a';
  const gw = await startGateway(
    `store:
  type: redis
  url: ${redis.url.replace('redis://', `redis://:${password}@`)}
  keyPrefix: "${prefix}"
upstreams:
  ks:
    type: keysecure
    baseUrl: ${ks.baseUrl}
    apiKey: ${KS_API_KEY}
    rateLimits:
      - name: cards
        paths: ["/open-api/v1/card/list"]
        perSecond: 0.5
        maxWait: 100ms
`,
    { store: 'config' },
  );
  t.teardown(() => gw.close());
  const cards = () => postJson(`${gw.proxyUrl}/ks/open-api/v1/card/list`, {});
  t.is((await cards()).json.code, 0);
  const local = () => gw.metric('countersign_rate_limit_local_decisions_total', { upstream: 'ks' });
  t.is(await local(), 0, 'decided in Redis while it is up');

  // The hot path: a path under no rule makes no Redis call; a limited one makes one per attempt.
  const probe = new Redis(redis.url, { lazyConnect: true });
  await probe.connect();
  const scriptCalls = async () => {
    const info = await probe.info('commandstats');
    return [...info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  };
  const before = await scriptCalls();
  for (let i = 0; i < 10; i++) t.is((await postJson(`${gw.proxyUrl}/ks/open-api/v1/_echo`, {})).json.code, 0);
  t.is(await scriptCalls(), before, 'no Redis call for a path without a limit');
  await sleep(2100);
  t.is((await cards()).json.code, 0);
  t.is(await scriptCalls(), before + 1, 'one script call for a limited request');
  probe.disconnect();

  await redis.stop();
  await sleep(2100); // the budget used above has refilled
  ks.control.reset();
  const burst = await Promise.all(Array.from({ length: 16 }, () => cards()));
  const passed = burst.filter((r) => r.json?.code === 0).length;
  const refused = burst.filter((r) => r.status === 429 && r.json?.error?.code === 'RATE_LIMITED').length;
  t.is(passed + refused, 16, 'served from the cached token, limited per process');
  t.true(passed >= 1 && passed <= 4, `${passed} passed at one per 2 s with 100 ms of waiting`);
  t.is(businessCodes(ks).length, passed);
  t.true((await local()) >= 16);
  t.true(gw.logs.filter((l) => l.includes('Redis unreachable; each replica now limits on its own')).length >= 1, 'logged');

  await redis.start();
  await eventually(async () => {
    await cards();
    return gw.logText().includes('rate limits are shared through Redis again');
  }, 'the limiter to use Redis again');
  const localAfter = await local();
  await sleep(2100);
  t.is((await cards()).json.code, 0);
  t.is(await local(), localAfter, 'decided in Redis again');
  t.false(gw.logText().includes(password));
});

test('KeySecure 1009: passed through unchanged and not retried, then the upstream is paced for the cooldown', async (t) => {
  const { sim, gw } = await keySecureSetup(t, {
    upstreamExtra: `    onRateLimited:
      cooldown: 5s
      perSecond: 4
      maxWait: 3s
`,
  });
  const cards = () => postJson(`${gw.proxyUrl}/keysecure-hk/open-api/v1/card/list`, { page: 0 });
  t.is((await cards()).json.code, 0);
  const span = () => {
    const at = sim.control.counters().requests.filter((r) => r.path === '/open-api/v1/card/list').map((r) => r.at);
    return Math.max(...at) - Math.min(...at);
  };

  sim.control.reset();
  sim.control.failNext(1, { code: 1009 });
  const limited = await cards();
  const hitAt = Date.now();
  t.is(limited.status, 200);
  t.is(limited.text, '{"code":1009,"msg":"Operation too frequent, please try again later"}', 'the answer as KeySecure gave it');
  t.deepEqual(businessCodes(sim), [1009], 'no retry');
  t.regex(gw.logText(), /answered \\"too frequent\\"; pacing it for the cooldown/);

  // Inside the cooldown: 6 requests at once reach KeySecure at 4/s, 250 ms apart.
  sim.control.reset();
  const paced = await Promise.all(Array.from({ length: 6 }, () => cards()));
  t.true(paced.every((r) => r.json.code === 0));
  t.true(span() >= 900, `6 paced requests spread over ${span()} ms (5 x 250 ms expected)`);
  t.is(await gw.metric('countersign_rate_limit_cooldowns_total', { upstream: 'keysecure-hk' }), 1);
  // Each of them went through the cooldown budget (on a busy machine some arrive late enough
  // not to need a wait; the spacing above holds either way).
  t.true((await gw.metric('countersign_rate_limit_wait_seconds_count', { upstream: 'keysecure-hk', rule: 'cooldown' })) >= 6);

  // After the cooldown: full speed again, nothing is held back.
  await sleep(Math.max(0, hitAt + 5200 - Date.now()));
  const pacedCount = await gw.metric('countersign_rate_limit_wait_seconds_count', { upstream: 'keysecure-hk', rule: 'cooldown' });
  t.true(pacedCount >= 6);
  const free = await Promise.all(Array.from({ length: 6 }, () => cards()));
  t.true(free.every((r) => r.json.code === 0));
  t.is(await gw.metric('countersign_rate_limit_wait_seconds_count', { upstream: 'keysecure-hk', rule: 'cooldown' }), pacedCount, 'none of them went through the limiter');
  t.is(await gw.metric('countersign_requests_total', { upstream: 'keysecure-hk', class: 'rate_limited' }), 1);
});
