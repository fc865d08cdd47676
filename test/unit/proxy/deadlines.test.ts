import test from 'ava';
import { DeadlineSweeper } from '../../../src/proxy/deadlines.js';

test('fires each deadline once when it has passed, never before, and not after it is cleared', (t) => {
  let now = 1000;
  const sweeper = new DeadlineSweeper(10_000, () => now);
  const fired: string[] = [];
  sweeper.add(100, () => fired.push('a'));
  const b = sweeper.add(200, () => fired.push('b'));
  sweeper.add(300, () => fired.push('c'));
  now = 1099;
  sweeper.sweep();
  t.deepEqual(fired, []);
  now = 1100;
  sweeper.sweep();
  t.deepEqual(fired, ['a']);
  sweeper.clear(b);
  now = 5000;
  sweeper.sweep();
  sweeper.sweep();
  t.deepEqual(fired, ['a', 'c']);
  t.is(sweeper.size, 0);
});

test('its one timer fires deadlines by itself, at most a tick late, and stops when nothing is pending', async (t) => {
  const sweeper = new DeadlineSweeper(10);
  // The sweeper's timer is unref'd (in the proxy, in-flight sockets keep the process alive).
  const keepAlive = setTimeout(() => {}, 10_000);
  const t0 = performance.now();
  const late = await new Promise<number>((resolve) => sweeper.add(50, () => resolve(performance.now() - t0)));
  clearTimeout(keepAlive);
  t.true(late >= 50, `fired after ${late} ms`);
  // Generous margin for a loaded machine; the point is that nothing else arms a timer.
  t.true(late < 2000, `fired after ${late} ms`);
  t.is(sweeper.size, 0);
  await new Promise((r) => setTimeout(r, 50));
  t.is((sweeper as unknown as { timer: unknown }).timer, undefined, 'the interval stops once idle');
});
