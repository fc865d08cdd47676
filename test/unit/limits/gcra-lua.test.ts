/**
 * The Redis Lua script is gcra.ts's arithmetic: the same arrivals give the same decisions and
 * the same stored state. Runs against the shared Redis under its own key prefix.
 */
import test from 'ava';
import { Redis } from 'ioredis';
import { gcraReserve, gcraRule } from '../../../src/limits/gcra.js';
import type { LimitKey } from '../../../src/limits/local-limiter.js';
import { GCRA_LUA, GCRA_SHA, runGcra } from '../../../src/limits/shared-limiter.js';
import { SHARED_REDIS_URL, cleanPrefix, uniquePrefix } from '../../helpers/redis-server.js';

async function redisFor(t: any, name: string): Promise<{ client: Redis; prefix: string }> {
  const prefix = uniquePrefix(name);
  const client = new Redis(SHARED_REDIS_URL, { maxRetriesPerRequest: 1 });
  t.teardown(async () => {
    await cleanPrefix(prefix);
    client.disconnect();
  });
  await client.ping();
  return { client, prefix };
}

test('the Lua script and gcraReserve agree on every decision for one rule and for two', async (t) => {
  const { client, prefix } = await redisFor(t, 'gcra-lua');
  const cases: Array<{ name: string; rules: Array<[number, number]>; maxWait: number }> = [
    { name: 'single', rules: [[10, 1]], maxWait: 1000 },
    { name: 'burst', rules: [[20, 4]], maxWait: 300 },
    { name: 'odd-interval', rules: [[3, 2]], maxWait: 700 },
    { name: 'pair', rules: [[10, 1], [2, 3]], maxWait: 1500 },
  ];
  for (const c of cases) {
    const keys: LimitKey[] = c.rules.map(([perSecond, burst], i) => ({ key: `${prefix}ratelimit:{u}:${c.name}-${i}`, ...gcraRule(perSecond, burst) }));
    const tats = keys.map(() => 0);
    let now = 1_764_000_000_000;
    let seed = 11;
    for (let i = 0; i < 120; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      now += seed % 90;
      const expected = gcraReserve(tats, now, keys, c.maxWait);
      const got = await runGcra(client, keys, c.maxWait, now);
      t.is(got.allowed, expected.allowed, `${c.name} #${i} allowed`);
      t.true(Math.abs(got.waitMs - expected.waitMs) < 0.01, `${c.name} #${i} wait ${got.waitMs} vs ${expected.waitMs}`);
      t.is(got.binding, expected.binding, `${c.name} #${i} binding`);
    }
    for (const [i, k] of keys.entries()) {
      const stored = Number(await client.get(k.key));
      t.true(Math.abs(stored - tats[i]!) < 0.01, `${c.name}: stored TAT ${stored} vs ${tats[i]}`);
    }
  }
});

test("with Redis's own clock: slots are spaced by the interval and each key expires once idle", async (t) => {
  const { client, prefix } = await redisFor(t, 'gcra-time');
  const keys: LimitKey[] = [{ key: `${prefix}ratelimit:{u}:r`, ...gcraRule(5, 1) }];
  // One round trip: the five scripts run back to back in Redis, microseconds apart.
  await client.script('LOAD', GCRA_LUA);
  const pipe = client.pipeline();
  for (let i = 0; i < 5; i++) pipe.evalsha(GCRA_SHA, 1, keys[0]!.key, '', 2000, keys[0]!.intervalMs, keys[0]!.toleranceMs);
  const replies = (await pipe.exec())!.map(([err, reply]) => {
    if (err) throw err;
    return reply as [number, string, number];
  });
  for (const [i, [allowed, wait]] of replies.entries()) {
    t.is(allowed, 1);
    t.true(Math.abs(Number(wait) - i * 200) < 5, `wait ${i}: ${wait}`);
  }
  const refused = await runGcra(client, keys, 500);
  t.false(refused.allowed);
  const ttl = await client.pttl(keys[0]!.key);
  t.true(ttl > 0 && ttl <= 1000 + 1000, `expires once the schedule is a second in the past (pttl ${ttl})`);
});
