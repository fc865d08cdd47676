/**
 * Memory of the in-process token cache with 100k Keeta merchants (2 shops each), and the cost
 * of a shop lookup. Run: node --expose-gc --import tsx bench/memory.ts
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { TokenCache } from '../src/tokens/token-cache.js';

const N = Number(process.env.MERCHANTS ?? 100_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const hex = (n: number) => randomBytes(n).toString('hex');
// Build the inputs first, so only the cache's own structures are measured... and then the
// strings the cache keeps alive are counted too (they are what a real cache holds).
gc();
const before = process.memoryUsage().heapUsed;
const cache = new TokenCache();
const now = Date.now();
for (let i = 0; i < N; i++) {
  cache.set({
    upstream: 'keeta',
    merchant: `brand-${i}`,
    accessToken: hex(16),
    refreshToken: hex(16),
    issuedAt: now,
    expiresAt: now + 90 * 86_400_000,
    refreshedAt: now,
    shopIds: [String(9_000_000_000_000_000 + i * 2), String(9_000_000_000_000_001 + i * 2)],
  });
}
gc();
const after = process.memoryUsage().heapUsed;
const bytes = after - before;

const lookups = 1_000_000;
// The shopId text comes out of the request body as a string; build the probes beforehand.
const probes = Array.from({ length: 4096 }, (_, i) => String(9_000_000_000_000_000 + ((i * 7919) % (2 * N))));
let found = 0;
const t0 = performance.now();
for (let i = 0; i < lookups; i++) {
  if (cache.merchantForShop('keeta', probes[i & 4095]!) !== undefined) found++;
}
const ns = ((performance.now() - t0) * 1e6) / lookups;

console.log(
  JSON.stringify({
    bench: 'token-cache-memory',
    merchants: N,
    shopsPerMerchant: 2,
    heapBytes: bytes,
    heapMiB: +(bytes / 1024 / 1024).toFixed(1),
    bytesPerMerchant: Math.round(bytes / N),
    shopLookupNs: +ns.toFixed(0),
    lookupsFound: found,
  }),
);
