import test from 'ava';
import { parseConfig } from '../../../src/config/load.js';
import { LiveConfig } from '../../../src/reload/live-config.js';

const config = (maxBodyBytes: number) =>
  parseConfig(`limits:\n  maxBodyBytes: ${maxBodyBytes}\nupstreams:\n  ks:\n    type: keysecure\n    baseUrl: http://ks.test\n    apiKey: api-key-12345\n`);

test('derived values are built from the config in force and replaced together on apply', (t) => {
  const live = new LiveConfig(config(100));
  const limit = live.derive((c) => ({ max: c.limits.maxBodyBytes }));
  const doubled = live.derive((c) => c.limits.maxBodyBytes * 2);
  const seen: number[] = [];
  live.onApplied((c) => seen.push(c.limits.maxBodyBytes));
  const held = limit.current; // what a request took when it started
  live.apply(config(200));
  t.is(live.current.limits.maxBodyBytes, 200);
  t.deepEqual(limit.current, { max: 200 });
  t.is(doubled.current, 400);
  t.deepEqual(held, { max: 100 }, 'a value already taken is never changed in place');
  t.deepEqual(seen, [200]);
});

test('when one part cannot be built from the new config, nothing changes', (t) => {
  const live = new LiveConfig(config(100));
  const first = live.derive((c) => c.limits.maxBodyBytes);
  live.derive((c) => {
    if (c.limits.maxBodyBytes > 150) throw new Error('too big for this part');
    return c.limits.maxBodyBytes;
  });
  let applied = 0;
  live.onApplied(() => applied++);
  t.throws(() => live.apply(config(200)), { message: 'too big for this part' });
  t.is(first.current, 100);
  t.is(live.current.limits.maxBodyBytes, 100);
  t.is(applied, 0);
});
