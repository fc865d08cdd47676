import test from 'ava';
import { Redis } from 'ioredis';
import { claimOnce, doneValue } from '../../../src/ingress/claims.js';
import { MemoryIngressStore, RedisIngressStore, type IngressStore } from '../../../src/ingress/state-store.js';
import { ManualClock } from '../../../src/core/clock.js';
import { cleanPrefix, SHARED_REDIS_URL, uniquePrefix } from '../../helpers/redis-server.js';

function contract(name: string, make: () => Promise<{ store: IngressStore; advance(ms: number): Promise<void>; done(): Promise<void> }>) {
  test(`${name}: claim, complete, and later arrivals see the payload`, async (t) => {
    const { store, done } = await make();
    t.teardown(done);
    const first = await claimOnce(store, 'k1', { leaseMs: 10_000, waitMs: 0 });
    t.is(first.kind, 'claimed');
    const second = await claimOnce(store, 'k1', { leaseMs: 10_000, waitMs: 0 });
    t.is(second.kind, 'busy');
    if (first.kind !== 'claimed') return;
    t.true(await first.claim.complete('answer', 60_000));
    t.deepEqual(await claimOnce(store, 'k1', { leaseMs: 10_000, waitMs: 0 }), { kind: 'done', payload: 'answer' });
    t.is(await doneValue(store, 'k1'), 'answer');
  });

  test(`${name}: a released claim can be taken again; a waiter gets the first one's outcome`, async (t) => {
    const { store, done } = await make();
    t.teardown(done);
    const first = await claimOnce(store, 'k2', { leaseMs: 10_000, waitMs: 0 });
    if (first.kind !== 'claimed') return t.fail();
    await first.claim.release();
    const again = await claimOnce(store, 'k2', { leaseMs: 10_000, waitMs: 0 });
    if (again.kind !== 'claimed') return t.fail();
    const waiter = claimOnce(store, 'k2', { leaseMs: 10_000, waitMs: 5000, pollMs: 10 });
    setTimeout(() => void again.claim.complete('ok', 60_000), 100);
    t.deepEqual(await waiter, { kind: 'done', payload: 'ok' });
  });

  test(`${name}: take is single-use and values expire`, async (t) => {
    const { store, advance, done } = await make();
    t.teardown(done);
    await store.put('s', 'v', 1000);
    t.is(await store.take('s'), 'v');
    t.is(await store.take('s'), undefined);
    await store.put('e', 'v', 200);
    await advance(400);
    t.is(await store.get('e'), undefined);
    t.true(await store.claim('c', 'a', 10_000));
    t.false(await store.replaceIf('c', 'b', 'x', 10_000));
    t.false(await store.deleteIf('c', 'b'));
    t.true(await store.deleteIf('c', 'a'));
  });
}

contract('memory', async () => {
  const clock = new ManualClock(1_000_000);
  return { store: new MemoryIngressStore(clock), advance: async (ms) => clock.advance(ms), done: async () => {} };
});

contract('redis', async () => {
  const prefix = uniquePrefix('ingress-store');
  const client = new Redis(SHARED_REDIS_URL, { keyPrefix: prefix, maxRetriesPerRequest: 1 });
  const store = new RedisIngressStore(client, { ownsClient: true });
  return {
    store,
    advance: (ms) => new Promise((r) => setTimeout(r, ms)),
    done: async () => {
      await store.close();
      await cleanPrefix(prefix);
    },
  };
});
