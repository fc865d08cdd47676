import type { Clock } from '../core/clock.js';
import { isMerchantId, MERCHANT_ID_RULE } from '../edge/ids.js';
import { GatewayError } from '../core/errors.js';
import { decodeUtf8 } from '../proxy/upstream.js';
import { getField, JsonSyntaxError, parseJsonText, type JsonNode, type JsonObjectNode } from '../provider/steps/json-text.js';
import { UNDECRYPTABLE, type RecordLedger } from '../tokens/record-ledger.js';
import type { TokenCache } from '../tokens/token-cache.js';
import { recordUnusable, type TokenService } from '../tokens/token-service.js';
import { KEYSECURE_MERCHANT, UnusableRecordError, type PutOptions, type TokenRecord, type TokenStore } from '../tokens/types.js';

export interface AdminUpstream {
  name: string;
  /** keeta, keysecure, or a recipe upstream's type. */
  type: string;
  tokens: TokenService;
  /** Recipe upstreams: their token model (merchant tokens are imported and listed like Keeta's). */
  tokenModel?: 'none' | 'app' | 'merchant';
}

/** Whether an upstream has merchants with imported pairs (Keeta, or a recipe with merchant tokens). */
function hasMerchants(u: AdminUpstream): boolean {
  return u.type === 'keeta' || u.tokenModel === 'merchant';
}

/**
 * The admin API's token operations (README "Admin API"). Answers never contain a token:
 * only states, times, counts and failure messages.
 */
export class TokenAdmin {
  constructor(
    private readonly upstreams: ReadonlyMap<string, AdminUpstream>,
    private readonly store: TokenStore,
    private readonly cache: TokenCache,
    private readonly clock: Clock,
    /** The at-rest state of each record (`encryption`) and the quarantined ones; file and redis stores. */
    private readonly ledger?: RecordLedger,
  ) {}

  list() {
    const now = this.clock.now();
    const ledger = this.ledger;
    return {
      upstreams: [...this.upstreams.values()].map((u) => ({
        name: u.name,
        type: u.type,
        merchants: [
          ...[...this.cache.records(u.name)]
            .filter((rec) => !ledger?.isUnusable(u.name, rec.merchant))
            .map((rec) => {
              const encryption = ledger?.label(u.name, rec.merchant);
              return { ...this.describe(u, rec, now), ...(encryption !== undefined && { encryption }) };
            }),
          // Quarantined records: refused until a pair is imported; the reason names no value.
          ...(ledger?.unusableRecords(u.name) ?? []).map((r) => ({
            merchant: u.type === 'keysecure' ? null : r.merchant,
            state: UNDECRYPTABLE,
            encryption: UNDECRYPTABLE,
            error: `the stored record cannot be used: ${r.reason}; import the pair again (PUT .../token) or delete the merchant`,
          })),
        ],
      })),
    };
  }

  /**
   * One merchant's line of the listing. A record that cannot be described (times out of any
   * sane range, written by something else) shows as `invalid` instead of failing the listing
   * for every merchant.
   */
  private describe(u: AdminUpstream, rec: TokenRecord, now: number) {
    const merchant = hasMerchants(u) ? rec.merchant : null;
    try {
      const failure = u.tokens.lastFailure(rec.merchant);
      return {
        merchant,
        state: u.tokens.state(rec, now),
        expiresAt: isoTime(rec.expiresAt),
        refreshedAt: isoTime(rec.refreshedAt),
        issuedAt: isoTime(rec.issuedAt),
        shopCount: rec.shopIds.length,
        ...(rec.refreshUnknownAt !== undefined && { refreshUnknownAt: isoTime(rec.refreshUnknownAt) }),
        ...(failure && {
          lastRefreshError: { message: failure.message, at: isoTime(failure.failedAt), failures: failure.failures },
        }),
      };
    } catch {
      return { merchant, state: 'invalid', error: 'the stored record cannot be read; import the pair again or delete the merchant' };
    }
  }

  /**
   * PUT …/merchants/{m}/token: import a Keeta pair. Returns when the pair expires and whether it
   * already has: an expired pair is stored all the same (it is what the operator has), but its
   * refresh token expires with it, so the merchant has to authorize again.
   */
  async importPair(upstream: string, merchant: string, rawBody: Buffer): Promise<{ expiresAt: number; expired: boolean }> {
    const u = this.keeta(upstream);
    checkMerchantId(merchant);
    const body = parseObject(rawBody);
    const accessToken = requireToken(body, 'accessToken');
    const refreshToken = requireToken(body, 'refreshToken');
    const expiresIn = requireIntIn(body, 'expiresIn', 1, MAX_EXPIRES_IN_SEC, 'seconds, at most 10 years');
    const issuedAtTime = requireIntIn(body, 'issuedAtTime', MIN_ISSUED_AT_MS, this.clock.now() + MAX_ISSUED_AHEAD_MS, 'Unix milliseconds, not before 2015 and not more than a day ahead');
    const shopNode = getField(body, 'shopIds');
    // A quarantined record is replaced by the import (the only write that may replace it).
    const existing = this.cache.get(u.name, merchant) ?? (await this.storeGet(u.name, merchant, { unusable: 'ignore' }));
    const shopIds = shopNode ? parseShopIds(shopNode) : [...(existing?.shopIds ?? [])];
    this.checkShopOwners(u.name, merchant, shopIds);
    const record: TokenRecord = {
      upstream: u.name,
      merchant,
      accessToken,
      refreshToken,
      issuedAt: issuedAtTime,
      expiresAt: issuedAtTime + expiresIn * 1000,
      // The 60 s spacing between renewals counts from when the upstream issued this pair.
      refreshedAt: Math.min(this.clock.now(), issuedAtTime),
      shopIds,
    };
    await this.write(record, `a newer pair for merchant "${merchant}" is already stored; nothing was changed`, { overUnusable: 'replace' });
    u.tokens.forget(merchant);
    return { expiresAt: record.expiresAt, expired: record.expiresAt <= this.clock.now() };
  }

  /** PUT …/merchants/{m}/shops */
  async replaceShops(upstream: string, merchant: string, rawBody: Buffer): Promise<void> {
    const u = this.keeta(upstream);
    checkMerchantId(merchant);
    const body = parseObject(rawBody);
    const node = getField(body, 'shopIds');
    if (!node) throw new GatewayError('BAD_REQUEST', 'shopIds: required');
    const shopIds = parseShopIds(node);
    this.checkShopOwners(u.name, merchant, shopIds);
    // Under the refresh lock: a renewal running meanwhile would write the old shop list back.
    await this.underLock(u.name, merchant, async () => {
      const current = await this.storeGet(u.name, merchant);
      if (!current) throw new GatewayError('NOT_FOUND', `no merchant "${merchant}" of ${u.name}; import its token first`);
      await this.write({ ...current, shopIds }, 'the pair changed while the shops were written; try again');
    });
  }

  /** Run `fn` holding the merchant's refresh lock, waiting (up to ~10 s) for a renewal to end. */
  private async underLock(upstream: string, merchant: string, fn: () => Promise<void>): Promise<void> {
    for (let i = 0; i < 100; i++) {
      let outcome;
      try {
        outcome = await this.store.withLock(upstream, merchant, 10_000, fn);
      } catch (err) {
        if (err instanceof GatewayError) throw err;
        throw new GatewayError('STORE_UNAVAILABLE', 'the token store cannot be reached; nothing was changed', { cause: err });
      }
      if (outcome.acquired) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new GatewayError('CONFLICT', 'a token renewal of this merchant is still running; try again');
  }

  /** POST …/merchants/{m}/refresh (Keeta) and …/refresh (KeySecure). */
  async refresh(upstream: string, merchant?: string): Promise<{ expiresAt: string }> {
    const u = this.upstreams.get(upstream);
    if (!u) throw new GatewayError('NOT_FOUND', `no upstream "${upstream}"`);
    if (hasMerchants(u) && merchant === undefined) {
      throw new GatewayError('BAD_REQUEST', `${upstream} is a ${u.type === 'keeta' ? 'Keeta' : u.type} upstream: refresh one merchant with POST /admin/upstreams/${upstream}/merchants/{merchant}/refresh`);
    }
    if (u.tokenModel === 'none') throw new GatewayError('BAD_REQUEST', `${upstream} has no tokens`);
    if (!hasMerchants(u) && merchant !== undefined) {
      throw new GatewayError('BAD_REQUEST', `${upstream} is a ${u.type === 'keysecure' ? 'KeySecure' : u.type} upstream with one token: POST /admin/upstreams/${upstream}/refresh`);
    }
    if (merchant !== undefined) checkMerchantId(merchant);
    const m = merchant ?? KEYSECURE_MERCHANT;
    if (hasMerchants(u) && !this.cache.get(u.name, m) && !(await this.storeGet(u.name, m))) {
      throw new GatewayError('NOT_FOUND', `no merchant "${m}" of ${u.name}`);
    }
    const rec = await u.tokens.refresh(m, 'admin');
    return { expiresAt: new Date(rec.expiresAt).toISOString() };
  }

  /** DELETE …/merchants/{m} */
  async forget(upstream: string, merchant: string): Promise<void> {
    const u = this.keeta(upstream);
    checkMerchantId(merchant);
    try {
      await this.store.delete(u.name, merchant);
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      throw new GatewayError('STORE_UNAVAILABLE', 'the token store cannot be reached; nothing was deleted', { cause: err });
    }
    this.cache.delete(u.name, merchant);
    u.tokens.forget(merchant);
  }

  private keeta(upstream: string): AdminUpstream {
    const u = this.upstreams.get(upstream);
    if (!u) throw new GatewayError('NOT_FOUND', `no upstream "${upstream}"`);
    if (!hasMerchants(u)) throw new GatewayError('BAD_REQUEST', `${upstream} is a ${u.type} upstream; merchants belong to Keeta upstreams and recipes with merchant tokens`);
    return u;
  }

  private checkShopOwners(upstream: string, merchant: string, shopIds: string[]): void {
    for (const shop of shopIds) {
      const owner = this.cache.merchantForShop(upstream, shop);
      if (owner !== undefined && owner !== merchant) {
        throw new GatewayError('CONFLICT', `shopId ${shop} already belongs to merchant "${owner}"; remove it there first`);
      }
    }
  }

  private async storeGet(upstream: string, merchant: string, opts: { unusable?: 'ignore' } = {}): Promise<TokenRecord | undefined> {
    try {
      return await this.store.get(upstream, merchant);
    } catch (err) {
      if (err instanceof UnusableRecordError) {
        if (opts.unusable === 'ignore') return undefined;
        throw recordUnusable(err);
      }
      if (err instanceof GatewayError) throw err;
      throw new GatewayError('STORE_UNAVAILABLE', 'the token store cannot be reached', { cause: err });
    }
  }

  private async write(record: TokenRecord, staleMessage: string, options?: PutOptions): Promise<void> {
    let result;
    try {
      result = await this.store.put(record, options);
    } catch (err) {
      if (err instanceof UnusableRecordError) throw recordUnusable(err);
      if (err instanceof GatewayError) throw err;
      throw new GatewayError('STORE_UNAVAILABLE', 'the token store cannot be reached; nothing was changed', { cause: err });
    }
    if (result === 'stale') throw new GatewayError('CONFLICT', staleMessage);
    this.cache.set(record);
  }
}

function checkMerchantId(m: string): void {
  if (!isMerchantId(m)) throw new GatewayError('BAD_REQUEST', MERCHANT_ID_RULE);
}

/** Keeta issues 90-day pairs; anything beyond 10 years is a mistake, not a token. */
const MAX_EXPIRES_IN_SEC = 10 * 365 * 86_400;
/** 2015-01-01: older than any Keeta token. */
const MIN_ISSUED_AT_MS = Date.UTC(2015, 0, 1);
/** A pair cannot have been issued in the future, give or take clock skew. */
const MAX_ISSUED_AHEAD_MS = 86_400_000;

function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

function parseObject(raw: Buffer): JsonObjectNode {
  // Never silently replaced: a token with a byte turned into U+FFFD is another token.
  const text = decodeUtf8(raw);
  if (text === undefined) throw new GatewayError('BAD_JSON', 'the body is not valid UTF-8');
  let node: JsonNode;
  try {
    node = parseJsonText(text);
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw new GatewayError('BAD_JSON', `the body is not valid JSON: ${err.message}`);
    throw err;
  }
  if (node.kind !== 'object') throw new GatewayError('BAD_JSON', 'the body must be a JSON object');
  return node;
}

/** Keeta's tokens are 32 hex digits; anything past this is a mistake, not a token. */
export const MAX_TOKEN_CHARS = 1024;
/** More shops than any brand has. */
export const MAX_SHOP_IDS = 100_000;

/** A token: no whitespace or control characters, at most MAX_TOKEN_CHARS. The message never repeats it. */
function requireToken(body: JsonObjectNode, key: string): string {
  const n = getField(body, key);
  if (n?.kind !== 'string' || n.value === '') throw new GatewayError('BAD_REQUEST', `${key}: required, a non-empty string`);
  if (n.value.length > MAX_TOKEN_CHARS) throw new GatewayError('BAD_REQUEST', `${key}: at most ${MAX_TOKEN_CHARS} characters (got ${n.value.length})`);
  if (/[\s\p{Cc}\p{Cf}]/u.test(n.value)) throw new GatewayError('BAD_REQUEST', `${key}: no spaces, line breaks or control characters`);
  return n.value;
}

function requireIntIn(body: JsonObjectNode, key: string, min: number, max: number, unit: string): number {
  const n = getField(body, key);
  const v = n?.kind === 'number' && /^\d{1,16}$/.test(n.lexeme) ? Number(n.lexeme) : NaN;
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new GatewayError('BAD_REQUEST', `${key}: required, a whole number from ${min} to ${max} (${unit})`);
  }
  return v;
}

/** shopIds are int64: kept as exact digit strings, whether sent as JSON numbers or strings. */
function parseShopIds(node: JsonNode): string[] {
  if (node.kind !== 'array') throw new GatewayError('BAD_REQUEST', 'shopIds: expected an array of numbers');
  if (node.items.length > MAX_SHOP_IDS) throw new GatewayError('BAD_REQUEST', `shopIds: at most ${MAX_SHOP_IDS} (got ${node.items.length})`);
  const out = new Set<string>();
  for (const item of node.items) {
    const text = item.kind === 'number' ? item.lexeme : item.kind === 'string' ? item.value : '';
    if (!/^\d{1,20}$/.test(text)) throw new GatewayError('BAD_REQUEST', 'shopIds: every item must be a whole number (int64)');
    out.add(text.replace(/^0+(?=\d)/, ''));
  }
  return [...out];
}
