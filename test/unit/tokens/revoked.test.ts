import test from 'ava';
import { ManualClock } from '../../../src/core/clock.js';
import { createMetrics } from '../../../src/observability/metrics.js';
import { MemoryStore } from '../../../src/tokens/memory-store.js';
import { TokenCache } from '../../../src/tokens/token-cache.js';
import { TokenService, type TokenSource } from '../../../src/tokens/token-service.js';
import type { TokenRecord } from '../../../src/tokens/types.js';
import { captureLogs } from '../../helpers/log-capture.js';

const DAY = 86_400_000;

function service(clock: ManualClock) {
  const store = new MemoryStore();
  const cache = new TokenCache();
  let obtained = 0;
  const source: TokenSource = {
    obtainsFromNothing: false,
    async obtain(merchant, current) {
      obtained++;
      return { ...current!, merchant, accessToken: `a${obtained}-renewed-token`, refreshToken: `r${obtained}-renewed-token`, issuedAt: clock.now(), expiresAt: clock.now() + 90 * DAY, refreshedAt: clock.now() };
    },
  };
  const tokens = new TokenService({
    upstream: 'keeta',
    store,
    cache,
    clock,
    metrics: createMetrics({ collectDefaults: false }),
    log: captureLogs().log,
    source,
    refreshBeforeMs: 4 * DAY,
    spacingMs: 0,
  });
  return { store, cache, tokens, obtained: () => obtained };
}

function rec(clock: ManualClock, merchant: string, extra: Partial<TokenRecord> = {}): TokenRecord {
  const issuedAt = clock.now() - 88 * DAY; // inside the 4-day refresh window
  return { upstream: 'keeta', merchant, accessToken: `${merchant}-access-token`, refreshToken: `${merchant}-refresh-token`, issuedAt, expiresAt: issuedAt + 90 * DAY, refreshedAt: issuedAt, shopIds: ['1'], ...extra };
}

test('a revoked merchant is never renewed by the scheduler, reports "revoked", and refuses requests', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1));
  const s = service(clock);
  const live = rec(clock, 'live');
  const gone = rec(clock, 'gone', { revokedAt: clock.now() - 1000, shopIds: ['2'] });
  for (const r of [live, gone]) {
    await s.store.put(r);
    s.cache.set(r);
  }
  await s.tokens.tick();
  t.is(s.obtained(), 1, 'only the live merchant was renewed');
  t.is(s.tokens.state(s.cache.get('keeta', 'gone')!), 'revoked');
  t.is(s.tokens.state(s.cache.get('keeta', 'live')!), 'valid');
  const err = await t.throwsAsync(s.tokens.current('gone'));
  t.regex(err?.message ?? '', /revoked its authorization/);
  t.is((err as { code?: string }).code, 'TOKEN_UNAVAILABLE');
});

test('fresh() hands out only a cached token outside its refresh window, and never renews', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1));
  const s = service(clock);
  const outside = rec(clock, 'outside', { issuedAt: clock.now() - DAY, expiresAt: clock.now() + 89 * DAY });
  const inWindow = rec(clock, 'window');
  const gone = rec(clock, 'gone', { issuedAt: clock.now() - DAY, expiresAt: clock.now() + 89 * DAY, revokedAt: clock.now() - 1000 });
  for (const r of [outside, inWindow, gone]) s.cache.set(r);
  t.is(s.tokens.fresh('outside')?.accessToken, 'outside-access-token');
  t.is(s.tokens.fresh('window'), undefined, 'inside the window: current() decides (and renews)');
  t.is(s.tokens.fresh('gone'), undefined, 'revoked');
  t.is(s.tokens.fresh('nobody'), undefined, 'not cached');
  clock.advance(89 * DAY - 4 * DAY);
  t.is(s.tokens.fresh('outside'), undefined, 'the window reached by the clock');
  t.is(s.obtained(), 0, 'fresh() renews nothing');
});
