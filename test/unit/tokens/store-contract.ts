/**
 * The TokenStore contract, run against every store. Each store's test file calls
 * `storeContract(name, openStore)`; `openStore` returns an opened, empty store and registers
 * its own cleanup with `t.teardown`.
 */
import test, { type ExecutionContext } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TokenRecord, TokenStore } from '../../../src/tokens/types.js';

export interface OpenOptions {
  lockRenewEveryMs?: number;
}

export type OpenStore = (t: ExecutionContext, options?: OpenOptions) => Promise<TokenStore>;

export const BIG_SHOP = '1234567890123456789'; // > 2^53: must survive exactly

export function record(overrides: Partial<TokenRecord> = {}): TokenRecord {
  return {
    upstream: 'keeta',
    merchant: 'm1',
    accessToken: 'access-secret-1',
    refreshToken: 'refresh-secret-1',
    issuedAt: 1_767_225_600_000,
    expiresAt: 1_767_225_600_000 + 90 * 86_400_000,
    refreshedAt: 1_767_225_600_000,
    shopIds: [BIG_SHOP, '9007199254740993'],
    ...overrides,
  };
}

export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export function storeContract(name: string, openStore: OpenStore): void {
  const it = (title: string, fn: (t: ExecutionContext) => Promise<void>): void => {
    test(`${name} contract: ${title}`, fn);
  };

  it('a revoked mark survives a write and a read, and a metadata write with the same issuedAt sets it', async (t) => {
    const store = await openStore(t);
    await store.put(record());
    t.is((await store.get('keeta', 'm1'))?.revokedAt, undefined);
    t.is(await store.put(record({ revokedAt: 1_767_300_000_000 })), 'written');
    t.is((await store.get('keeta', 'm1'))?.revokedAt, 1_767_300_000_000);
    t.is((await store.list())[0]?.revokedAt, 1_767_300_000_000);
  });

  it('get/put/list/delete round-trip keeps shopIds exactly', async (t) => {
    const store = await openStore(t);
    t.is(await store.get('keeta', 'm1'), undefined);
    const r = record();
    t.is(await store.put(r), 'written');
    const got = await store.get('keeta', 'm1');
    t.deepEqual(got, r);
    t.deepEqual(got?.shopIds, [BIG_SHOP, '9007199254740993']);
    t.deepEqual(await store.list(), [r]);
    await store.delete('keeta', 'm1');
    t.is(await store.get('keeta', 'm1'), undefined);
    t.deepEqual(await store.list(), []);
  });

  it('a record without refreshToken (KeySecure) round-trips without one', async (t) => {
    const store = await openStore(t);
    const { refreshToken: _omit, ...ks } = record({ upstream: 'keysecure', merchant: '_', shopIds: [] });
    await store.put(ks);
    const got = await store.get('keysecure', '_');
    t.deepEqual(got, ks);
    t.false(got !== undefined && 'refreshToken' in got);
  });

  it('names with odd characters are kept apart', async (t) => {
    const store = await openStore(t);
    await store.put(record({ upstream: 'a:b', merchant: 'c', accessToken: 'x1' }));
    await store.put(record({ upstream: 'a', merchant: 'b:c', accessToken: 'x2' }));
    await store.put(record({ upstream: 'ü p', merchant: 'm/%20"', accessToken: 'x3' }));
    t.is((await store.get('a:b', 'c'))?.accessToken, 'x1');
    t.is((await store.get('a', 'b:c'))?.accessToken, 'x2');
    t.is((await store.get('ü p', 'm/%20"'))?.accessToken, 'x3');
    t.is((await store.list()).length, 3);
    t.deepEqual(
      (await store.list('a')).map((r) => r.merchant),
      ['b:c'],
    );
  });

  it('newer wins: an older put is stale and changes nothing; equal issuedAt overwrites', async (t) => {
    const store = await openStore(t);
    const current = record({ issuedAt: 2000, accessToken: 'new' });
    t.is(await store.put(current), 'written');
    t.is(await store.put(record({ issuedAt: 1000, accessToken: 'old' })), 'stale');
    t.deepEqual(await store.get('keeta', 'm1'), current);

    const sameAge = record({ issuedAt: 2000, accessToken: 'new', shopIds: ['42'] });
    t.is(await store.put(sameAge), 'written');
    t.deepEqual(await store.get('keeta', 'm1'), sameAge);

    const newer = record({ issuedAt: 3000, accessToken: 'newer' });
    t.is(await store.put(newer), 'written');
    t.deepEqual(await store.get('keeta', 'm1'), newer);
  });

  it('concurrent puts: the newest issuedAt is what stays', async (t) => {
    const store = await openStore(t);
    const ages = Array.from({ length: 30 }, (_, i) => 1000 + i).sort(() => Math.random() - 0.5);
    const results = await Promise.all(
      ages.map((issuedAt) => store.put(record({ issuedAt, accessToken: `a${issuedAt}` }))),
    );
    t.true(results.includes('written'));
    const got = await store.get('keeta', 'm1');
    t.is(got?.issuedAt, 1029);
    t.is(got?.accessToken, 'a1029');
  });

  it('list is filtered by upstream', async (t) => {
    const store = await openStore(t);
    await store.put(record({ upstream: 'keeta', merchant: 'b' }));
    await store.put(record({ upstream: 'keeta', merchant: 'a' }));
    await store.put(record({ upstream: 'keysecure', merchant: '_' }));
    const keeta = await store.list('keeta');
    t.deepEqual(keeta.map((r) => r.merchant).sort(), ['a', 'b']);
    t.true(keeta.every((r) => r.upstream === 'keeta'));
    t.deepEqual((await store.list('keysecure')).map((r) => r.merchant), ['_']);
    t.deepEqual(await store.list('nobody'), []);
    t.is((await store.list()).length, 3);
    await store.delete('keysecure', '_');
    t.deepEqual(await store.list('keysecure'), []);
    t.is((await store.list()).length, 2);
  });

  it('deleting a missing record is fine', async (t) => {
    const store = await openStore(t);
    await t.notThrowsAsync(store.delete('keeta', 'nobody'));
    await t.notThrowsAsync(store.delete('nobody', 'nobody'));
  });

  it('records handed in and out are copies', async (t) => {
    const store = await openStore(t);
    const r = record();
    await store.put(r);
    r.accessToken = 'mutated';
    r.shopIds.push('1');
    const out = await store.get('keeta', 'm1');
    t.truthy(out);
    t.is(out?.accessToken, 'access-secret-1');
    t.deepEqual(out?.shopIds, [BIG_SHOP, '9007199254740993']);
    out!.shopIds.length = 0;
    out!.accessToken = 'mutated again';
    const listed = await store.list();
    listed[0]!.shopIds.push('2');
    const again = await store.get('keeta', 'm1');
    t.is(again?.accessToken, 'access-secret-1');
    t.deepEqual(again?.shopIds, [BIG_SHOP, '9007199254740993']);
  });

  it('a malformed record is refused without quoting secrets', async (t) => {
    const store = await openStore(t);
    const bad = { ...record(), shopIds: [123] } as unknown as TokenRecord;
    const err = await t.throwsAsync(store.put(bad), { instanceOf: TypeError });
    t.false(err?.message.includes('access-secret-1'));
    t.is(await store.get('keeta', 'm1'), undefined);
  });

  it('withLock excludes a second holder and releases after fn settles', async (t) => {
    const store = await openStore(t);
    const gate = deferred();
    const entered = deferred();
    const first = store.withLock('keeta', 'm1', 5000, async () => {
      entered.resolve();
      await gate.promise;
      return 'one';
    });
    await entered.promise;
    t.true(await store.isLocked('keeta', 'm1'));
    let ran = false;
    const started = Date.now();
    t.deepEqual(
      await store.withLock('keeta', 'm1', 5000, async () => {
        ran = true;
      }),
      { acquired: false },
    );
    t.true(Date.now() - started < 1000, 'refused at once');
    t.false(ran);
    // another merchant is independent
    t.deepEqual(await store.withLock('keeta', 'm2', 5000, async () => 'other'), {
      acquired: true,
      value: 'other',
    });
    gate.resolve();
    t.deepEqual(await first, { acquired: true, value: 'one' });
    t.false(await store.isLocked('keeta', 'm1'));
    t.deepEqual(await store.withLock('keeta', 'm1', 5000, async () => 'two'), {
      acquired: true,
      value: 'two',
    });
  });

  it('withLock releases when fn throws and rethrows its error', async (t) => {
    const store = await openStore(t);
    const boom = new Error('boom');
    const err = await t.throwsAsync(
      store.withLock('keeta', 'm1', 5000, async () => {
        throw boom;
      }),
    );
    t.is(err, boom);
    t.false(await store.isLocked('keeta', 'm1'));
    t.deepEqual(await store.withLock('keeta', 'm1', 5000, async () => 1), {
      acquired: true,
      value: 1,
    });
  });

  it('isLocked is false when nobody holds the lock', async (t) => {
    const store = await openStore(t);
    t.false(await store.isLocked('keeta', 'm1'));
  });

  it('withLock refuses a nonsensical lease', async (t) => {
    const store = await openStore(t);
    await t.throwsAsync(store.withLock('keeta', 'm1', 0, async () => 1), { instanceOf: TypeError });
    await t.throwsAsync(store.withLock('keeta', 'm1', Number.NaN, async () => 1), {
      instanceOf: TypeError,
    });
    t.false(await store.isLocked('keeta', 'm1'));
  });

  it('the lease is renewed while fn runs', async (t) => {
    const store = await openStore(t);
    const gate = deferred();
    const entered = deferred();
    const first = store.withLock('keeta', 'm1', 1200, async () => {
      entered.resolve();
      await gate.promise;
    });
    await entered.promise;
    await sleep(4000); // more than three leases later
    t.true(await store.isLocked('keeta', 'm1'));
    t.deepEqual(await store.withLock('keeta', 'm1', 1200, async () => 'x'), { acquired: false });
    gate.resolve();
    t.deepEqual(await first, { acquired: true, value: undefined });
    t.false(await store.isLocked('keeta', 'm1'));
  });

  it('an expired lease can be taken over, and the old holder cannot release the new lock', async (t) => {
    // Renewal off: the holder behaves like one that died (its lease is never extended).
    const store = await openStore(t, { lockRenewEveryMs: 0 });
    const oldGate = deferred();
    const oldEntered = deferred();
    const oldHolder = store.withLock('keeta', 'm1', 1000, async () => {
      oldEntered.resolve();
      await oldGate.promise;
      return 'old';
    });
    await oldEntered.promise;
    t.deepEqual(await store.withLock('keeta', 'm1', 1000, async () => 'early'), { acquired: false });
    await sleep(1300);
    t.false(await store.isLocked('keeta', 'm1'), 'lease ran out');

    const newGate = deferred();
    const newEntered = deferred();
    const newHolder = store.withLock('keeta', 'm1', 5000, async () => {
      newEntered.resolve();
      await newGate.promise;
      return 'new';
    });
    await newEntered.promise;
    oldGate.resolve();
    t.deepEqual(await oldHolder, { acquired: true, value: 'old' });
    t.true(await store.isLocked('keeta', 'm1'), 'the old holder did not release the new lock');
    t.deepEqual(await store.withLock('keeta', 'm1', 5000, async () => 'x'), { acquired: false });
    newGate.resolve();
    t.deepEqual(await newHolder, { acquired: true, value: 'new' });
    t.false(await store.isLocked('keeta', 'm1'));
  });

  it('subscribe returns an unsubscribe function', async (t) => {
    const store = await openStore(t);
    const unsubscribe = store.subscribe({ changed() {}, resync() {} });
    t.is(typeof unsubscribe, 'function');
    t.notThrows(() => unsubscribe());
  });
}
