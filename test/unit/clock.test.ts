import test from 'ava';
import { ManualClock } from '../../src/core/clock.js';

test('a manual clock is set and advanced by tests', (t) => {
  const clock = new ManualClock(1000);
  t.is(clock.now(), 1000);
  clock.advance(500);
  t.is(clock.now(), 1500);
  clock.set(42);
  t.is(clock.now(), 42);
});
