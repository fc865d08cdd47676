/**
 * RedisStore against the real Redis at 127.0.0.1:6379 (COUNTERSIGN_TEST_REDIS_URL overrides).
 * An unreachable Redis fails these tests; they never skip. Every test uses its own key prefix
 * and deletes its keys afterwards.
 */
import test, { type ExecutionContext } from 'ava';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { RedisStore, redisKeys, type RedisStoreOptions } from '../../../src/tokens/redis-store.js';
import { createStore } from '../../../src/tokens/create-store.js';
import { StoreError, type StoreListener, type TokenRecord } from '../../../src/tokens/types.js';
import { deferred, record, storeContract } from './store-contract.js';
import { TcpProxy } from './tcp-proxy.js';

const REDIS_URL = process.env['COUNTERSIGN_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

const admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
test.before(async () => {
  await admin.connect(); // throws (fails every test) when Redis is not there
});
test.after.always(async () => {
  admin.disconnect();
});

async function deletePrefix(prefix: string): Promise<void> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  if (keys.length > 0) await admin.del(...keys);
}

function uniquePrefix(t: ExecutionContext): string {
  const prefix = `cs-test:${randomUUID()}:`;
  t.teardown(() => deletePrefix(prefix));
  return prefix;
}

async function openRedis(
  t: ExecutionContext,
  options: Partial<RedisStoreOptions> & { keyPrefix: string },
): Promise<RedisStore> {
  const store = new RedisStore({ url: REDIS_URL, ...options });
  t.teardown(() => store.close());
  await store.open();
  return store;
}

storeContract('redis', async (t, options = {}) => openRedis(t, { keyPrefix: uniquePrefix(t), ...options }));

/** A listener that records what it is told. */
function recorder(): StoreListener & {
  changes: Array<[string, string]>;
  resyncs: number;
  nextChange(): Promise<[string, string]>;
  nextResync(): Promise<void>;
} {
  let changeWaiters: Array<(c: [string, string]) => void> = [];
  let resyncWaiters: Array<() => void> = [];
  const r = {
    changes: [] as Array<[string, string]>,
    resyncs: 0,
    changed(upstream: string, merchant: string) {
      r.changes.push([upstream, merchant]);
      const waiters = changeWaiters;
      changeWaiters = [];
      for (const w of waiters) w([upstream, merchant]);
    },
    resync() {
      r.resyncs += 1;
      const waiters = resyncWaiters;
      resyncWaiters = [];
      for (const w of waiters) w();
    },
    nextChange: () => new Promise<[string, string]>((resolve) => changeWaiters.push(resolve)),
    nextResync: () => new Promise<void>((resolve) => resyncWaiters.push(resolve)),
  };
  return r;
}

function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  return Promise.race([
    promise,
    sleep(ms).then(() => {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    }),
  ]);
}

/** The part of a key Redis Cluster hashes (cluster spec: the first {...} with something inside). */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

test('redis: key layout: one key per record plus the upstream indexes; a merchant\'s keys share one hash slot', async (t) => {
  const keyPrefix = uniquePrefix(t);
  const store = await openRedis(t, { keyPrefix });
  t.is(store.kind, 'redis');
  const r = record({ upstream: 'keeta', merchant: 'm:1' });
  await store.put(r);
  const raw = await admin.get(`${keyPrefix}token:{keeta:m%3A1}`);
  t.deepEqual(JSON.parse(raw ?? 'null') as TokenRecord, r);
  t.deepEqual(await admin.smembers(`${keyPrefix}index:{keeta}`), ['m:1']);
  t.deepEqual(await admin.smembers(`${keyPrefix}upstreams`), ['keeta']);
  const held = await store.withLock('keeta', 'm:1', 5000, async () => admin.get(`${keyPrefix}lock:{keeta:m%3A1}`));
  t.true(held.acquired && typeof held.value === 'string' && held.value.length >= 32, 'the lock holds a random owner id');
  await store.delete('keeta', 'm:1');
  t.is(await admin.exists(`${keyPrefix}token:{keeta:m%3A1}`, `${keyPrefix}index:{keeta}`, `${keyPrefix}lock:{keeta:m%3A1}`), 0);
});

test('redis: key names: record and lock of one merchant share a hash tag; braces in names cannot move it', (t) => {
  const keys = redisKeys('countersign:');
  for (const [u, m] of [['keeta', 'brand-1'], ['keeta', 'a}{b'], ['ks', '_'], ['x{y', 'm']] as const) {
    t.is(hashTag(keys.record(u, m)), hashTag(keys.lock(u, m)), `${u}/${m}`);
    t.is(hashTag(keys.record(u, m)), `${encodeURIComponent(u)}:${encodeURIComponent(m)}`);
  }
  t.not(hashTag(keys.record('keeta', 'm1')), hashTag(keys.record('keeta', 'm2')), 'merchants spread over slots');
  t.is(hashTag(keys.index('keeta')), 'keeta');
});

test('redis: two instances: a lock held by one is refused to the other', async (t) => {
  const keyPrefix = uniquePrefix(t);
  const a = await openRedis(t, { keyPrefix });
  const b = await openRedis(t, { keyPrefix });
  const gate = deferred();
  const entered = deferred();
  const held = a.withLock('keeta', 'm1', 1200, async () => {
    entered.resolve();
    await gate.promise;
    return 'a';
  });
  await entered.promise;
  t.true(await b.isLocked('keeta', 'm1'));
  t.deepEqual(await b.withLock('keeta', 'm1', 1200, async () => 'b'), { acquired: false });
  await sleep(4000); // more than three leases: A renews
  t.deepEqual(await b.withLock('keeta', 'm1', 1200, async () => 'b'), { acquired: false });
  gate.resolve();
  t.deepEqual(await held, { acquired: true, value: 'a' });
  t.false(await b.isLocked('keeta', 'm1'));
  t.deepEqual(await b.withLock('keeta', 'm1', 600, async () => 'b'), { acquired: true, value: 'b' });
});

test('redis: a dead holder\'s lock is taken over once its lease runs out, and never deleted early', async (t) => {
  const keyPrefix = uniquePrefix(t);
  const store = await openRedis(t, { keyPrefix });
  const lockKey = `${keyPrefix}lock:{keeta:m1}`;
  await admin.set(lockKey, 'another-replica', 'PX', 4000);
  t.deepEqual(await store.withLock('keeta', 'm1', 1000, async () => 'x'), { acquired: false });
  t.is(await admin.get(lockKey), 'another-replica', 'a refused attempt leaves the lock alone');
  await sleep(4300);
  t.deepEqual(await store.withLock('keeta', 'm1', 1000, async () => 'x'), { acquired: true, value: 'x' });
  t.is(await admin.exists(lockKey), 0, 'released');
});

test('redis: a put from one instance is notified to the other\'s subscriber', async (t) => {
  const keyPrefix = uniquePrefix(t);
  const a = await openRedis(t, { keyPrefix });
  const b = await openRedis(t, { keyPrefix });
  const listener = recorder();
  const active = listener.nextResync();
  const unsubscribe = b.subscribe(listener);
  await within(5000, active, 'the subscription'); // resync once the subscription is active

  const change = listener.nextChange();
  await a.put(record({ merchant: 'm1' }));
  t.deepEqual(await within(5000, change, 'a change'), ['keeta', 'm1']);

  const deletion = listener.nextChange();
  await a.delete('keeta', 'm1');
  t.deepEqual(await within(5000, deletion, 'a deletion'), ['keeta', 'm1']);

  unsubscribe();
  await a.put(record({ merchant: 'm2' }));
  await sleep(200);
  t.is(listener.changes.length, 2, 'nothing after unsubscribe');
});

test('redis: a stale put from a slow replica cannot overwrite a newer record', async (t) => {
  const keyPrefix = uniquePrefix(t);
  const fast = await openRedis(t, { keyPrefix });
  const slow = await openRedis(t, { keyPrefix });
  const newer = record({ issuedAt: 2000, accessToken: 'new-access', refreshToken: 'new-refresh' });
  t.is(await fast.put(newer), 'written');
  t.is(await slow.put(record({ issuedAt: 1000, accessToken: 'old-access', refreshToken: 'old-refresh' })), 'stale');
  t.deepEqual(await fast.get('keeta', 'm1'), newer);
  t.deepEqual(await slow.get('keeta', 'm1'), newer);
});

test('redis: fail fast when Redis is unreachable', async (t) => {
  const seen: boolean[] = [];
  const store = new RedisStore({
    url: 'redis://:hunter2@127.0.0.1:1',
    keyPrefix: `cs-test:${randomUUID()}:`,
    onStatus: (up) => seen.push(up),
  });
  t.teardown(() => store.close());
  let started = Date.now();
  const err = await t.throwsAsync(store.open(), { instanceOf: StoreError });
  t.true(Date.now() - started < 2500, `open() failed after ${Date.now() - started} ms`);
  t.regex(err?.message ?? '', /redis store.*127\.0\.0\.1:1/);
  t.false(err?.message.includes('hunter2'), 'no password in messages');
  t.true(seen.includes(false));
  t.false(seen.includes(true));

  const ops: Array<[string, () => Promise<unknown>]> = [
    ['get', () => store.get('keeta', 'm1')],
    ['list', () => store.list()],
    ['put', () => store.put(record())],
    ['delete', () => store.delete('keeta', 'm1')],
    ['isLocked', () => store.isLocked('keeta', 'm1')],
    ['withLock', () => store.withLock('keeta', 'm1', 1000, async () => 1)],
  ];
  for (const [name, op] of ops) {
    started = Date.now();
    const e = await t.throwsAsync(op(), { instanceOf: StoreError }, name);
    t.true(Date.now() - started < 500, `${name} took ${Date.now() - started} ms`);
    t.true(e?.message.includes(name), e?.message);
    t.false(e?.message.includes('access-secret-1') || e?.message.includes('refresh-secret-1'));
  }
  // A second open() also fails (the client keeps reconnecting in the background).
  await t.throwsAsync(store.open(), { instanceOf: StoreError });
});

test('redis: survives an outage without a restart: fails fast while down, recovers, resyncs', async (t) => {
  t.timeout(30_000);
  const target = new URL(REDIS_URL);
  const proxy = new TcpProxy(target.hostname, Number(target.port || 6379));
  const port = await proxy.start();
  t.teardown(() => proxy.stop());
  const keyPrefix = uniquePrefix(t);
  const seen: boolean[] = [];
  const store = await openRedis(t, {
    keyPrefix,
    onStatus: (up) => seen.push(up),
    url: `redis://127.0.0.1:${port}`,
  });
  const direct = await openRedis(t, { keyPrefix });
  const listener = recorder();
  const firstResync = listener.nextResync();
  store.subscribe(listener);
  await within(5000, firstResync, 'the subscription');
  t.is(await store.put(record({ issuedAt: 1 })), 'written');

  await proxy.stop();
  await sleep(100);
  seen.length = 0;
  const started = Date.now();
  const err = await t.throwsAsync(store.put(record({ issuedAt: 2, accessToken: 'during-outage' })), {
    instanceOf: StoreError,
  });
  // Fails at once instead of waiting for the 2 s command timeout (or queueing until Redis is back).
  t.true(Date.now() - started < 1500);
  t.false(err?.message.includes('during-outage'));
  await t.throwsAsync(store.get('keeta', 'm1'), { instanceOf: StoreError });
  t.is(seen.at(-1), false);
  // The shared store moves on meanwhile: this change is missed by the subscriber.
  await direct.put(record({ issuedAt: 3, accessToken: 'written-meanwhile' }));

  const resynced = listener.nextResync();
  await proxy.start();
  await within(10_000, resynced, 'a resync after reconnecting');
  t.is(listener.resyncs, 2);
  let got: TokenRecord | undefined;
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(100)) {
    try {
      got = await store.get('keeta', 'm1');
      break;
    } catch {
      // still reconnecting
    }
  }
  t.is(got?.accessToken, 'written-meanwhile');
  t.is(seen.at(-1), true);
  const change = listener.nextChange();
  await direct.put(record({ issuedAt: 4 }));
  t.deepEqual(await within(5000, change, 'a change after recovery'), ['keeta', 'm1']);
});

test('redis: a corrupt record is an error, never a token in a message', async (t) => {
  const keyPrefix = uniquePrefix(t);
  const store = await openRedis(t, { keyPrefix });
  await store.put(record());
  await admin.set(`${keyPrefix}token:{keeta:m1}`, '{"accessToken":"leaky-secret",');
  const err = await t.throwsAsync(store.get('keeta', 'm1'), { instanceOf: StoreError });
  t.false(err?.message.includes('leaky-secret'));
  await t.throwsAsync(store.list(), { instanceOf: StoreError });
  // A put with a valid record replaces the unreadable one.
  t.is(await store.put(record({ issuedAt: 1 })), 'written');
  t.is((await store.get('keeta', 'm1'))?.issuedAt, 1);
});

test('redis: list spans upstreams and many merchants', async (t) => {
  const keyPrefix = uniquePrefix(t);
  const store = await openRedis(t, { keyPrefix });
  await Promise.all(
    Array.from({ length: 1200 }, (_, i) => store.put(record({ merchant: `m${i}`, shopIds: [`${i}`] }))),
  );
  await store.put(record({ upstream: 'keysecure', merchant: '_', shopIds: [] }));
  t.is((await store.list('keeta')).length, 1200);
  t.is((await store.list()).length, 1201);
});

test('redis: createStore builds a redis store with the hooks', async (t) => {
  const keyPrefix = uniquePrefix(t);
  const seen: boolean[] = [];
  const store = createStore({ type: 'redis', url: REDIS_URL, keyPrefix }, { onStatus: (up) => seen.push(up) });
  t.teardown(() => store.close());
  t.is(store.kind, 'redis');
  await store.open();
  await store.put(record());
  t.true(seen.includes(true));
  t.is(await admin.exists(`${keyPrefix}token:{keeta:m1}`), 1);
});
