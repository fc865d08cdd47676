import test from 'ava';
import { FairShare } from '../../../src/proxy/fair-share.js';

const callers = [{ name: 'flood' }, { name: 'quiet' }];

test('a flooding caller is held below the capacity, so another caller finds a slot at once', (t) => {
  const share = new FairShare(16, callers, 'up');
  const flood = share.slotOf('flood');
  let taken = 0;
  const waits: Array<Promise<void>> = [];
  for (let i = 0; i < 40; i++) {
    const w = share.acquire(flood, 200);
    if (w === undefined) taken++;
    else waits.push(w.catch(() => {}));
  }
  // Guarantee 8, then borrowing while more than the reserve (16/8 = 2) stays free: 14.
  t.is(taken, 14);
  const quiet = share.slotOf('quiet');
  t.is(share.acquire(quiet, 60_000), undefined, 'the quiet caller is not queued');
  t.is(share.acquire(quiet, 60_000), undefined);
  t.is(share.inFlight, 16);
  return Promise.all(waits);
});

test('a freed slot goes to a waiting caller under its guarantee before a borrower', async (t) => {
  const share = new FairShare(4, callers, 'up');
  const flood = share.slotOf('flood');
  const quiet = share.slotOf('quiet');
  // flood: guarantee 2, may borrow while more than 1 slot stays free → 3.
  for (let i = 0; i < 3; i++) t.is(share.acquire(flood, 60_000), undefined);
  const floodWait = share.acquire(flood, 60_000);
  t.truthy(floodWait);
  t.is(share.acquire(quiet, 60_000), undefined);
  const quietWait = share.acquire(quiet, 60_000);
  t.truthy(quietWait, 'no slot free: the quiet caller waits too');
  const order: string[] = [];
  void quietWait!.then(() => order.push('quiet'));
  void floodWait!.then(() => order.push('flood'));
  share.release(flood);
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, ['quiet'], 'the caller under its guarantee is served first');
  t.is(quiet.inFlight, 2);
  share.release(quiet);
  share.release(quiet);
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, ['quiet', 'flood']);
});

test('maxInFlight caps a caller even with slots free; a wait that outlasts its deadline is UPSTREAM_TIMEOUT "no connection free"', async (t) => {
  const share = new FairShare(10, [{ name: 'a', maxInFlight: 1 }, { name: 'b' }], 'up');
  const a = share.slotOf('a');
  t.is(share.acquire(a, 50), undefined);
  const wait = share.acquire(a, 50);
  t.truthy(wait);
  const err = (await t.throwsAsync(wait!)) as { code?: string; message: string };
  t.is(err.code, 'UPSTREAM_TIMEOUT');
  t.regex(err.message, /^no connection free within 50 ms to up/);
  t.is(share.inFlight, 1, 'the timed-out wait holds nothing');
  share.release(a);
  t.is(share.acquire(a, 50), undefined);
});

test('without configured callers the one anonymous caller may use every slot', (t) => {
  const share = new FairShare(5, undefined, 'up');
  const anon = share.slotOf(undefined);
  for (let i = 0; i < 5; i++) t.is(share.acquire(anon, 1000), undefined);
  const w = share.acquire(anon, 10);
  t.truthy(w);
  return t.throwsAsync(w!);
});

test('weights set the guarantees', (t) => {
  const share = new FairShare(100, [{ name: 'big', weight: 3 }, { name: 'small', weight: 1 }], 'up');
  t.is(share.slotOf('big').guaranteed, 75);
  t.is(share.slotOf('small').guaranteed, 25);
});
