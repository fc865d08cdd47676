/**
 * The redis store over TLS (rediss:// with a self-signed certificate made by openssl) and on a
 * Redis Cluster (one node owning every slot: the cluster's rules, no command across slots,
 * apply as on a big one).
 */
import test from 'ava';
import { startKeySecureSim } from '../../src/sim/index.js';
import { RedisStore } from '../../src/tokens/redis-store.js';
import { StoreError, type TokenRecord } from '../../src/tokens/types.js';
import { startGateway } from '../helpers/gateway.js';
import { postJson } from '../helpers/http.js';
import { KS_API_KEY } from '../helpers/keysecure-setup.js';
import { startOneNodeCluster, startTlsRedis } from '../helpers/redis-topology.js';

function record(merchant: string, issuedAt: number): TokenRecord {
  return {
    upstream: 'keeta',
    merchant,
    accessToken: `access-${merchant}-${issuedAt}`,
    refreshToken: `refresh-${merchant}-${issuedAt}`,
    issuedAt,
    expiresAt: issuedAt + 86_400_000,
    refreshedAt: issuedAt,
    shopIds: [`${issuedAt}`],
  };
}

async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every store operation the gateway uses, on one store, with a second store listening. */
async function exercise(t: any, open: () => RedisStore): Promise<void> {
  const a = open();
  const b = open();
  t.teardown(() => a.close());
  t.teardown(() => b.close());
  await a.open();
  await b.open();
  const changes: string[] = [];
  let resyncs = 0;
  b.subscribe({ changed: (u, m) => changes.push(`${u}/${m}`), resync: () => void resyncs++ });
  await eventually(() => resyncs > 0, 'the subscription');

  t.is(await a.put(record('m1', 2000)), 'written');
  t.is(await a.put(record('m1', 1000)), 'stale', 'newer wins');
  await Promise.all(Array.from({ length: 50 }, (_, i) => a.put(record(`bulk-${i}`, 3000 + i))));
  t.is((await b.get('keeta', 'm1'))?.accessToken, 'access-m1-2000');
  t.is((await b.list('keeta')).length, 51);
  t.is((await b.list()).length, 51);
  await eventually(() => changes.includes('keeta/m1'), 'the change to reach the other store');

  const held = await a.withLock('keeta', 'm1', 5000, async (lock) => {
    t.true(await b.isLocked('keeta', 'm1'));
    t.deepEqual(await b.withLock('keeta', 'm1', 5000, async () => 'b'), { acquired: false });
    await lock.confirm();
    return 'a';
  });
  t.deepEqual(held, { acquired: true, value: 'a' });
  t.false(await b.isLocked('keeta', 'm1'));

  await a.delete('keeta', 'm1');
  t.is(await b.get('keeta', 'm1'), undefined);
  t.is((await b.list('keeta')).length, 50);
}

test('TLS: rediss:// with the server\'s CA: every store operation works; without the CA the server is refused', async (t) => {
  const redis = await startTlsRedis();
  t.teardown(() => redis.dispose());
  const keyPrefix = 'cs-tls:';
  await exercise(t, () => new RedisStore({ url: redis.url, tls: { caFile: redis.caFile }, keyPrefix }));

  const untrusted = new RedisStore({ url: redis.url, keyPrefix });
  t.teardown(() => untrusted.close());
  const err = await t.throwsAsync(untrusted.open(), { instanceOf: StoreError });
  t.regex(err?.message ?? '', /self[- ]signed|certificate/i, 'the certificate is verified');
  const plain = new RedisStore({ url: redis.url.replace('rediss:', 'redis:'), keyPrefix });
  t.teardown(() => plain.close());
  await t.throwsAsync(plain.open(), { instanceOf: StoreError }, 'a TLS port does not speak plain Redis');
});

test('TLS: a gateway configured with rediss:// and tls.caFile serves and stores its KeySecure token there', async (t) => {
  const redis = await startTlsRedis();
  t.teardown(() => redis.dispose());
  const ks = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY }] });
  t.teardown(() => ks.close());
  const gw = await startGateway(
    `store:
  type: redis
  url: ${redis.url}
  tls:
    caFile: ${redis.caFile}
  keyPrefix: "cs-tls-gw:"
upstreams:
  ks:
    type: keysecure
    baseUrl: ${ks.baseUrl}
    apiKey: ${KS_API_KEY}
`,
    { store: 'config' },
  );
  t.teardown(() => gw.close());
  t.deepEqual(await (await fetch(`${gw.adminUrl}/readyz`)).json(), { status: 'ready', store: 'ok' });
  t.is((await postJson(`${gw.proxyUrl}/ks/open-api/v1/card/list`, {})).json.code, 0);
  const check = new RedisStore({ url: redis.url, tls: { caFile: redis.caFile }, keyPrefix: 'cs-tls-gw:' });
  t.teardown(() => check.close());
  await check.open();
  t.truthy(await check.get('ks', '_'), 'the token is in the TLS Redis');
});

test('Cluster: every store operation works on a cluster (no command or script spans two slots)', async (t) => {
  const cluster = await startOneNodeCluster();
  t.teardown(() => cluster.dispose());
  await exercise(t, () => new RedisStore({ nodes: [cluster.node], keyPrefix: 'cs-cluster:' }));
});
