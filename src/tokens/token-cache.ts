import type { TokenRecord } from './types.js';

interface UpstreamEntries {
  readonly records: Map<string, TokenRecord>;
  /** shopId → merchant */
  readonly shops: Map<string, string>;
}

/**
 * The in-process copy of every token record, in front of the store: a request whose cached
 * token is valid does no store I/O. Also the shop index (shopId → merchant), O(1).
 *
 * One pair of maps per upstream, keyed by plain strings (no key building per lookup).
 * Records are replaced whole, never mutated, so a reader holding one sees a consistent pair.
 */
export class TokenCache {
  readonly #upstreams = new Map<string, UpstreamEntries>();

  static key(upstream: string, merchant: string): string {
    return `${upstream}\u0000${merchant}`;
  }

  get(upstream: string, merchant: string): TokenRecord | undefined {
    return this.#upstreams.get(upstream)?.records.get(merchant);
  }

  merchantForShop(upstream: string, shopId: string): string | undefined {
    return this.#upstreams.get(upstream)?.shops.get(shopId);
  }

  /**
   * Store `record` unless the cache already holds a strictly newer pair for the same key.
   * Returns the record now cached.
   */
  set(record: TokenRecord): TokenRecord {
    const u = this.#entries(record.upstream);
    const prev = u.records.get(record.merchant);
    if (prev && prev.issuedAt > record.issuedAt) return prev;
    if (prev) unindex(u, prev);
    const frozen = Object.freeze({ ...record, shopIds: Object.freeze([...record.shopIds]) as string[] });
    u.records.set(record.merchant, frozen);
    for (const shop of frozen.shopIds) u.shops.set(shop, record.merchant);
    return frozen;
  }

  delete(upstream: string, merchant: string): void {
    const u = this.#upstreams.get(upstream);
    const prev = u?.records.get(merchant);
    if (!u || !prev) return;
    unindex(u, prev);
    u.records.delete(merchant);
  }

  *records(upstream?: string): IterableIterator<TokenRecord> {
    if (upstream !== undefined) {
      const u = this.#upstreams.get(upstream);
      if (u) yield* u.records.values();
      return;
    }
    for (const u of this.#upstreams.values()) yield* u.records.values();
  }

  get size(): number {
    let n = 0;
    for (const u of this.#upstreams.values()) n += u.records.size;
    return n;
  }

  #entries(upstream: string): UpstreamEntries {
    let u = this.#upstreams.get(upstream);
    if (!u) this.#upstreams.set(upstream, (u = { records: new Map(), shops: new Map() }));
    return u;
  }
}

function unindex(u: UpstreamEntries, record: TokenRecord): void {
  for (const shop of record.shopIds) if (u.shops.get(shop) === record.merchant) u.shops.delete(shop);
}
