import test from 'ava';
import { systemClock } from '../../../src/core/clock.js';
import { ShopRereads } from '../../../src/ingress/shop-rereads.js';

function limiter(burst: number, intervalMs: number, readMs = 20) {
  const starts: Array<{ merchant: string; at: number; revokeIfEmpty: boolean }> = [];
  const r = new ShopRereads({
    limit: { burst, intervalMs },
    clock: systemClock,
    read: async (merchant, revokeIfEmpty) => {
      starts.push({ merchant, at: Date.now(), revokeIfEmpty });
      await new Promise((res) => setTimeout(res, readMs));
      return starts.length;
    },
  });
  return { r, starts };
}

test('requests made while a re-read runs share the next one, which starts after them', async (t) => {
  const { r, starts } = limiter(5, 1000);
  const first = r.request('m');
  const later = Array.from({ length: 10 }, (_, i) => r.request('m', i === 3));
  t.is(await first, 1);
  t.deepEqual(await Promise.all(later), Array(10).fill(2));
  t.is(starts.length, 2);
  t.true(starts[1]!.revokeIfEmpty, 'one request asked for it');
  t.false(starts[0]!.revokeIfEmpty);
  r.close();
});

test('past the burst, a merchant is re-read once per interval; other merchants are not held up', async (t) => {
  const { r, starts } = limiter(1, 300, 5);
  // The limiter's timers do not hold the process open (a server does): this test does.
  const keepAlive = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(keepAlive));
  const t0 = Date.now();
  await r.request('a');
  const second = r.request('a');
  await r.request('b');
  t.is(starts.filter((s) => s.merchant === 'b').length, 1);
  await second;
  const aStarts = starts.filter((s) => s.merchant === 'a');
  t.is(aStarts.length, 2);
  t.true(aStarts[1]!.at - t0 >= 280, `second re-read of a after ${aStarts[1]!.at - t0} ms`);
  r.close();
});

test('a failed re-read rejects its requests; close() rejects what is still waiting', async (t) => {
  const r = new ShopRereads({ limit: { burst: 1, intervalMs: 60_000 }, clock: systemClock, read: async () => Promise.reject(new Error('keeta down')) });
  await t.throwsAsync(r.request('m'), { message: 'keeta down' });
  const waiting = r.request('m');
  r.close();
  await t.throwsAsync(waiting, { message: /shutting down/ });
});
