import test from 'ava';
import { MemoryStore } from '../../../src/tokens/memory-store.js';
import { record, storeContract } from './store-contract.js';

storeContract('memory', async (t, options = {}) => {
  const store = new MemoryStore(options);
  await store.open();
  t.teardown(() => store.close());
  return store;
});

test('memory: bounded by max, least recently used dropped first', async (t) => {
  const store = new MemoryStore({ max: 2 });
  await store.open();
  await store.put(record({ merchant: 'a' }));
  await store.put(record({ merchant: 'b' }));
  await store.get('keeta', 'a'); // a is now more recent than b
  await store.put(record({ merchant: 'c' }));
  t.deepEqual((await store.list()).map((r) => r.merchant), ['a', 'c']);
});

test('memory: kind and onStatus', async (t) => {
  const seen: boolean[] = [];
  const store = new MemoryStore({ onStatus: (up) => seen.push(up) });
  t.is(store.kind, 'memory');
  await store.open();
  await store.put(record());
  t.true(seen.length > 0 && seen.every((up) => up));
});

test('memory: max must be a positive integer', (t) => {
  t.throws(() => new MemoryStore({ max: 0 }), { instanceOf: TypeError });
});
