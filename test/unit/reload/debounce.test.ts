import test from 'ava';
import { debounce, type Timers } from '../../../src/reload/debounce.js';

/** Timers driven by hand: advance(ms) runs what falls due. */
function manualTimers(): Timers & { advance(ms: number): void; pending(): number } {
  let now = 0;
  let nextId = 1;
  const queue = new Map<number, { at: number; fn: () => void }>();
  return {
    setTimeout(fn, ms) {
      const id = nextId++;
      queue.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(id) {
      queue.delete(id as number);
    },
    advance(ms) {
      now += ms;
      for (const [id, t] of [...queue].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at <= now) {
          queue.delete(id);
          t.fn();
        }
      }
    },
    pending: () => queue.size,
  };
}

test('a burst of triggers runs once, the wait after the last of them', (t) => {
  const timers = manualTimers();
  let runs = 0;
  const d = debounce(() => runs++, 300, timers);
  d.trigger();
  timers.advance(200);
  d.trigger();
  timers.advance(200);
  d.trigger();
  timers.advance(299);
  t.is(runs, 0);
  timers.advance(1);
  t.is(runs, 1);
  t.is(timers.pending(), 0);
});

test('triggers after a run start a new wait; cancel drops a pending run', (t) => {
  const timers = manualTimers();
  let runs = 0;
  const d = debounce(() => runs++, 100, timers);
  d.trigger();
  timers.advance(100);
  d.trigger();
  timers.advance(100);
  t.is(runs, 2);
  d.trigger();
  d.cancel();
  timers.advance(1000);
  t.is(runs, 2);
});

test('with real timers a burst runs once', async (t) => {
  let runs = 0;
  const d = debounce(() => runs++, 50);
  for (let i = 0; i < 5; i++) d.trigger();
  await new Promise((r) => setTimeout(r, 300));
  t.is(runs, 1);
});
