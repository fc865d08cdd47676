import test from 'ava';
import { ManualClock } from '../../../src/core/clock.js';
import { gcraReserve, gcraRule, retryAfterSeconds } from '../../../src/limits/gcra.js';
import { LocalLimiter, type LimitKey } from '../../../src/limits/local-limiter.js';

const key = (name: string, perSecond: number, burst = 1): LimitKey => ({ key: name, ...gcraRule(perSecond, burst) });

test('gcraRule: 10/s is one request every 100 ms; burst 5 may run 400 ms ahead', (t) => {
  t.deepEqual(gcraRule(10, 1), { intervalMs: 100, toleranceMs: 0 });
  t.deepEqual(gcraRule(10, 5), { intervalMs: 100, toleranceMs: 400 });
  t.deepEqual(gcraRule(0.5, 1), { intervalMs: 2000, toleranceMs: 0 });
});

test('burst 1: requests arriving together are given slots one interval apart, until the wait bound', (t) => {
  const clock = new ManualClock(1_000_000);
  const limiter = new LocalLimiter(clock);
  const rule = [key('a', 10)];
  const waits = [];
  for (let i = 0; i < 12; i++) waits.push(limiter.reserve('u', rule, 1000));
  t.deepEqual(
    waits.map((d) => [d.allowed, Math.round(d.waitMs)]),
    [[true, 0], [true, 100], [true, 200], [true, 300], [true, 400], [true, 500], [true, 600], [true, 700], [true, 800], [true, 900], [true, 1000], [false, 1100]],
  );
  // A refusal reserves nothing: the next request gets the same answer.
  t.deepEqual([limiter.reserve('u', rule, 1000).allowed, Math.round(limiter.reserve('u', rule, 1000).waitMs)], [false, 1100]);
});

test('time passing frees the slots: after the backlog drains, a request goes at once', (t) => {
  const clock = new ManualClock(0);
  const limiter = new LocalLimiter(clock);
  const rule = [key('a', 10)];
  for (let i = 0; i < 5; i++) limiter.reserve('u', rule, 1000); // slots at 0..400 ms
  clock.advance(250);
  t.is(Math.round(limiter.reserve('u', rule, 1000).waitMs), 250, 'next slot at 500 ms');
  clock.advance(1000);
  t.deepEqual(limiter.reserve('u', rule, 1000), { allowed: true, waitMs: 0, binding: 0 });
});

test('burst: up to `burst` requests go at once after an idle period, then one per interval', (t) => {
  const clock = new ManualClock(0);
  const limiter = new LocalLimiter(clock);
  const rule = [key('a', 10, 3)];
  const waits = Array.from({ length: 5 }, () => Math.round(limiter.reserve('u', rule, 10_000).waitMs));
  t.deepEqual(waits, [0, 0, 0, 100, 200]);
});

test('at most t/interval + burst requests in any window of t, for any arrival pattern', (t) => {
  const clock = new ManualClock(0);
  const limiter = new LocalLimiter(clock);
  const rule = [key('a', 20, 4)]; // 50 ms, burst 4
  const sentAt: number[] = [];
  // Pseudo-random arrivals over 10 s; each admitted request is "sent" at now + wait.
  let seed = 7;
  for (let now = 0; now < 10_000; ) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    now += seed % 40;
    clock.set(now);
    const d = limiter.reserve('u', rule, 300);
    if (d.allowed) sentAt.push(now + d.waitMs);
  }
  sentAt.sort((a, b) => a - b);
  for (const windowMs of [100, 1000, 3000]) {
    let worst = 0;
    for (let i = 0, j = 0; i < sentAt.length; i++) {
      while (sentAt[i]! - sentAt[j]! >= windowMs) j++;
      worst = Math.max(worst, i - j + 1);
    }
    t.true(worst <= windowMs / 50 + 4, `window ${windowMs} ms: ${worst} requests`);
  }
  // Sent over 10.3 s at most (arrivals for 10 s, each waiting up to 300 ms): 10300 / 50 + 4.
  t.true(sentAt.length >= 190 && sentAt.length <= 210, `${sentAt.length} admitted over 10 s at 20/s`);
});

test('two rules: the longer wait wins, names the binding rule, and both reserve the slot actually used', (t) => {
  const tats = [0, 0];
  const rules = [gcraRule(10, 1), gcraRule(2, 1)]; // 100 ms and 500 ms
  t.deepEqual(gcraReserve(tats, 1000, rules, 5000), { allowed: true, waitMs: 0, binding: 0 });
  t.deepEqual(tats, [1100, 1500]);
  const second = gcraReserve(tats, 1000, rules, 5000);
  t.deepEqual(second, { allowed: true, waitMs: 500, binding: 1 });
  t.deepEqual(tats, [1600, 2000], 'the 10/s rule counts the request at 1500, when it is sent');
  const refused = gcraReserve(tats, 1000, rules, 800);
  t.deepEqual(refused, { allowed: false, waitMs: 1000, binding: 1 });
  t.deepEqual(tats, [1600, 2000], 'a refusal leaves the state as it was');
});

test('Retry-After: whole seconds until the request could be admitted, at least 1', (t) => {
  t.is(retryAfterSeconds({ allowed: false, waitMs: 1100, binding: 0 }, 1000), 1);
  t.is(retryAfterSeconds({ allowed: false, waitMs: 5200, binding: 0 }, 1000), 5);
  t.is(retryAfterSeconds({ allowed: false, waitMs: 5001, binding: 0 }, 0), 6);
});

test('the local limiter keeps budgets apart by key', (t) => {
  const limiter = new LocalLimiter(new ManualClock(0));
  t.is(limiter.reserve('u', [key('a', 1)], 0).allowed, true);
  t.is(limiter.reserve('u', [key('a', 1)], 0).allowed, false);
  t.is(limiter.reserve('u', [key('b', 1)], 0).allowed, true);
});
