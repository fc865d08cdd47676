/**
 * Keeta merchants and their OAuth state (docs/protocols.md 1.4–1.7, 4.2), as the simulator
 * enforces it:
 *
 * - access and refresh tokens are random opaque strings with the same lifetime;
 * - a refresh token works once: a refresh issues a NEW pair, the used refresh token is dead
 *   at once, a second use is rejected as REUSED;
 * - after a refresh (or a new authorization) the previous access token stays valid for
 *   `oldTokenGraceMs` (but never past its own expiry);
 * - refreshes of one merchant closer together than `refreshSpacingMs` are rejected (the
 *   refresh token is NOT consumed by a rejected refresh);
 * - authorization codes are single-use and live 10 minutes.
 *
 * All methods take the simulated time `now` (Unix ms) explicitly.
 */
import { randomBytes } from 'node:crypto';
import { ControlError } from '../control.js';
import { KeetaSimError } from './codes.js';

export const AUTH_CODE_LIFETIME_MS = 10 * 60 * 1000;

export interface KeetaTokenPolicy {
  tokenLifetimeSec: number;
  refreshSpacingMs: number;
  oldTokenGraceMs: number;
}

export interface IssuedPair {
  accessToken: string;
  refreshToken: string;
  /** Seconds. */
  expiresIn: number;
  /** Unix ms. */
  issuedAtTime: number;
}

/** A read-only snapshot of one merchant, for tests. */
export interface KeetaMerchantView {
  readonly merchantId: string;
  readonly shopIds: readonly string[];
  readonly brandId: number;
  readonly brandName: string;
  /** False for an account added with addAccount that has not authorised the app yet. */
  readonly authorized: boolean;
  /** '' while the account has not authorised the app. */
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly expiresIn: number;
  readonly issuedAtTime: number;
  /** issuedAtTime + expiresIn * 1000. */
  readonly expiresAtMs: number;
  /** Simulated time of the last successful refresh, null if never refreshed. */
  readonly lastRefreshAtMs: number | null;
  /** Access tokens of this merchant that are still accepted right now (current and in grace). */
  readonly validAccessTokens: readonly string[];
}

export interface RefreshCounters {
  refreshReuse: number;
}

export interface AuthCodeCounters {
  /** Codes presented a second time (or later). */
  authCodeReuse: number;
  /** Codes exchanged successfully. */
  authCodeExchanges: number;
}

interface AccessRecord {
  merchantId: string;
  expiresAtMs: number;
  /** Set when superseded: valid until then. */
  graceUntilMs: number | undefined;
  revoked: boolean;
}

interface RefreshRecord {
  merchantId: string;
  expiresAtMs: number;
  usedAtMs: number | undefined;
  revoked: boolean;
}

interface AuthCodeRecord {
  merchantId: string;
  expiresAtMs: number;
  usedAtMs: number | undefined;
}

interface MerchantRecord {
  merchantId: string;
  shopIds: string[];
  brandId: number;
  brandName: string;
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  issuedAtTime: number;
  lastRefreshAtMs: number | undefined;
}

const INT64_MAX = 9223372036854775807n;

/** Canonical decimal form of a positive int64 shop id, or undefined when it is not one. */
export function canonicalInt64(text: string): string | undefined {
  if (!/^\d{1,19}$/.test(text)) return undefined;
  const n = BigInt(text);
  if (n <= 0n || n > INT64_MAX) return undefined;
  return n.toString();
}

function randomToken(): string {
  return randomBytes(16).toString('hex');
}

export class KeetaTokenStore {
  readonly #merchants = new Map<string, MerchantRecord>();
  readonly #access = new Map<string, AccessRecord>();
  readonly #refresh = new Map<string, RefreshRecord>();
  readonly #codes = new Map<string, AuthCodeRecord>();
  /** shopId (canonical) → merchantId */
  readonly #shopOwner = new Map<string, string>();
  #nextBrandId = 10001;

  constructor(private readonly policy: KeetaTokenPolicy) {}

  addMerchant(
    merchantId: string,
    shopIds: readonly string[],
    now: number,
    expiresInSec = this.policy.tokenLifetimeSec,
    issuedAtMs = now,
    brandName?: string,
  ): IssuedPair {
    if (!Number.isInteger(expiresInSec) || expiresInSec <= 0) throw new TypeError('addMerchant: expiresInSec must be a positive integer');
    if (!Number.isFinite(issuedAtMs)) throw new TypeError('addMerchant: issuedAtMs must be a number');
    const record = this.#register('addMerchant', merchantId, shopIds, brandName);
    return this.#issue(record, Math.trunc(issuedAtMs), expiresInSec);
  }

  /**
   * A merchant that exists at Keeta but has not authorised this app yet: no tokens until an
   * authorization code is exchanged. Re-adding replaces the shops and revokes every token.
   */
  addAccount(merchantId: string, shopIds: readonly string[], brandName?: string): void {
    this.#register('addAccount', merchantId, shopIds, brandName);
  }

  /** Adds shops to a merchant (a store authorization was added). Returns the new ones. */
  addShops(merchantId: string, shopIds: readonly string[]): string[] {
    const m = this.#mustGet(merchantId);
    const added = this.#checkShops('addShops', merchantId, shopIds).filter((id) => !m.shopIds.includes(id));
    for (const id of added) {
      m.shopIds.push(id);
      this.#shopOwner.set(id, merchantId);
    }
    return added;
  }

  /** Removes shops from a merchant (a store authorization was cancelled). Returns the removed ones. */
  removeShops(merchantId: string, shopIds: readonly string[]): string[] {
    const m = this.#mustGet(merchantId);
    const wanted = new Set(this.#checkShops('removeShops', merchantId, shopIds));
    const removed = m.shopIds.filter((id) => wanted.has(id));
    m.shopIds = m.shopIds.filter((id) => !wanted.has(id));
    for (const id of removed) this.#shopOwner.delete(id);
    return removed;
  }

  /** The merchant a shop belongs to, if any. */
  ownerOf(shopId: string): string | undefined {
    return this.#shopOwner.get(shopId);
  }

  /** Merchant ids in the order they were added. */
  merchantIds(): string[] {
    return [...this.#merchants.keys()];
  }

  #checkShops(what: string, merchantId: string, shopIds: readonly string[]): string[] {
    if (!Array.isArray(shopIds)) throw new TypeError(`${what}: shopIds must be an array of int64 decimal strings`);
    const shops: string[] = [];
    for (const raw of shopIds) {
      const id = typeof raw === 'string' ? canonicalInt64(raw) : undefined;
      if (id === undefined || id !== raw) {
        throw new TypeError(`${what}: shop id ${JSON.stringify(raw)} is not a positive int64 decimal string`);
      }
      const owner = this.#shopOwner.get(id);
      if (owner !== undefined && owner !== merchantId) {
        throw new TypeError(`${what}: shop ${id} already belongs to merchant ${owner}`);
      }
      if (!shops.includes(id)) shops.push(id);
    }
    return shops;
  }

  #register(what: string, merchantId: string, shopIds: readonly string[], brandName: string | undefined): MerchantRecord {
    if (typeof merchantId !== 'string' || merchantId === '') throw new TypeError(`${what}: merchantId must be a non-empty string`);
    if (brandName !== undefined && (typeof brandName !== 'string' || brandName === '')) throw new TypeError(`${what}: brandName must be a non-empty string`);
    const shops = this.#checkShops(what, merchantId, shopIds);
    const existing = this.#merchants.get(merchantId);
    if (existing) {
      this.#revokeAll(merchantId);
      for (const id of existing.shopIds) this.#shopOwner.delete(id);
    }
    for (const id of shops) this.#shopOwner.set(id, merchantId);
    const record: MerchantRecord = {
      merchantId,
      shopIds: shops,
      brandId: existing?.brandId ?? this.#nextBrandId++,
      brandName: brandName ?? existing?.brandName ?? `Sim Brand ${merchantId}`,
      accessToken: '',
      refreshToken: '',
      expiresIn: 0,
      issuedAtTime: 0,
      lastRefreshAtMs: undefined,
    };
    this.#merchants.set(merchantId, record);
    return record;
  }

  issueAuthCode(merchantId: string, now: number): string {
    this.#mustGet(merchantId);
    const code = randomToken();
    this.#codes.set(code, { merchantId, expiresAtMs: now + AUTH_CODE_LIFETIME_MS, usedAtMs: undefined });
    return code;
  }

  /** The current access token becomes expired (it stays known, so it answers "expired"). */
  expireAccessToken(merchantId: string, now: number): void {
    const m = this.#mustGet(merchantId);
    const rec = this.#access.get(m.accessToken);
    if (rec) rec.expiresAtMs = Math.min(rec.expiresAtMs, now);
  }

  /** Every access and refresh token of the merchant (current and in grace) stops working. */
  revokeTokens(merchantId: string): void {
    this.#mustGet(merchantId);
    this.#revokeAll(merchantId);
  }

  /** The merchant withdraws the whole authorization: every token dies and the account is unauthorised again. */
  revokeAuthorization(merchantId: string): void {
    const m = this.#mustGet(merchantId);
    this.#revokeAll(merchantId);
    m.accessToken = '';
    m.refreshToken = '';
  }

  view(merchantId: string, now: number): KeetaMerchantView | undefined {
    const m = this.#merchants.get(merchantId);
    if (!m) return undefined;
    const valid: string[] = [];
    for (const [token, rec] of this.#access) {
      if (rec.merchantId === merchantId && this.#accessProblem(rec, now) === undefined) valid.push(token);
    }
    return Object.freeze({
      merchantId: m.merchantId,
      shopIds: Object.freeze([...m.shopIds]),
      brandId: m.brandId,
      brandName: m.brandName,
      authorized: m.accessToken !== '',
      accessToken: m.accessToken,
      refreshToken: m.refreshToken,
      expiresIn: m.expiresIn,
      issuedAtTime: m.issuedAtTime,
      expiresAtMs: m.issuedAtTime + m.expiresIn * 1000,
      lastRefreshAtMs: m.lastRefreshAtMs ?? null,
      validAccessTokens: Object.freeze(valid),
    });
  }

  merchantShops(merchantId: string): readonly string[] {
    return this.#mustGet(merchantId).shopIds;
  }

  merchantBrandId(merchantId: string): number {
    return this.#mustGet(merchantId).brandId;
  }

  merchantBrandName(merchantId: string): string {
    return this.#mustGet(merchantId).brandName;
  }

  /** The merchant an access token belongs to; throws ACCESS_TOKEN_INVALID otherwise. */
  authenticate(accessToken: string, now: number): string {
    const rec = this.#access.get(accessToken);
    if (!rec) throw new KeetaSimError('ACCESS_TOKEN_INVALID', 'unknown accessToken');
    const problem = this.#accessProblem(rec, now);
    if (problem) throw new KeetaSimError('ACCESS_TOKEN_INVALID', problem);
    return rec.merchantId;
  }

  /** grantType=refresh_token. */
  refresh(refreshToken: string, now: number, counters: RefreshCounters): IssuedPair {
    const rec = this.#refresh.get(refreshToken);
    if (!rec) throw new KeetaSimError('REFRESH_TOKEN_INVALID', 'unknown refreshToken');
    if (rec.revoked) throw new KeetaSimError('REFRESH_TOKEN_INVALID', 'refreshToken revoked');
    if (rec.usedAtMs !== undefined) {
      counters.refreshReuse++;
      throw new KeetaSimError('REFRESH_TOKEN_REUSED', `refreshToken was already used at ${new Date(rec.usedAtMs).toISOString()}`);
    }
    if (now >= rec.expiresAtMs) throw new KeetaSimError('REFRESH_TOKEN_INVALID', 'refreshToken expired');
    const m = this.#mustGet(rec.merchantId);
    if (m.lastRefreshAtMs !== undefined && now - m.lastRefreshAtMs < this.policy.refreshSpacingMs) {
      throw new KeetaSimError(
        'REFRESH_TOO_SOON',
        `last refresh ${now - m.lastRefreshAtMs} ms ago, minimum spacing ${this.policy.refreshSpacingMs} ms`,
      );
    }
    rec.usedAtMs = now;
    m.lastRefreshAtMs = now;
    return this.#supersede(m, now);
  }

  /** grantType=authorization_code. */
  exchangeCode(code: string, now: number, counters: AuthCodeCounters): IssuedPair {
    const rec = this.#codes.get(code);
    if (!rec) throw new KeetaSimError('AUTH_CODE_INVALID', 'unknown code');
    if (rec.usedAtMs !== undefined) {
      counters.authCodeReuse++;
      throw new KeetaSimError('AUTH_CODE_INVALID', 'code already used');
    }
    if (now >= rec.expiresAtMs) throw new KeetaSimError('AUTH_CODE_INVALID', 'code expired');
    rec.usedAtMs = now;
    counters.authCodeExchanges++;
    const m = this.#mustGet(rec.merchantId);
    // A new authorization replaces the pair: the old refresh token can no longer be used.
    const oldRefresh = this.#refresh.get(m.refreshToken);
    if (oldRefresh) oldRefresh.revoked = true;
    return this.#supersede(m, now);
  }

  #supersede(m: MerchantRecord, now: number): IssuedPair {
    const oldAccess = this.#access.get(m.accessToken);
    if (oldAccess && oldAccess.graceUntilMs === undefined) oldAccess.graceUntilMs = now + this.policy.oldTokenGraceMs;
    return this.#issue(m, now, this.policy.tokenLifetimeSec);
  }

  #issue(m: MerchantRecord, issuedAtMs: number, expiresInSec: number): IssuedPair {
    if (!Number.isInteger(expiresInSec) || expiresInSec <= 0) throw new TypeError('expiresInSec must be a positive integer');
    const accessToken = randomToken();
    const refreshToken = randomToken();
    const expiresAtMs = issuedAtMs + expiresInSec * 1000;
    this.#access.set(accessToken, { merchantId: m.merchantId, expiresAtMs, graceUntilMs: undefined, revoked: false });
    this.#refresh.set(refreshToken, { merchantId: m.merchantId, expiresAtMs, usedAtMs: undefined, revoked: false });
    m.accessToken = accessToken;
    m.refreshToken = refreshToken;
    m.expiresIn = expiresInSec;
    m.issuedAtTime = issuedAtMs;
    return { accessToken, refreshToken, expiresIn: expiresInSec, issuedAtTime: issuedAtMs };
  }

  #accessProblem(rec: AccessRecord, now: number): string | undefined {
    if (rec.revoked) return 'accessToken revoked';
    if (now >= rec.expiresAtMs) return 'accessToken expired';
    if (rec.graceUntilMs !== undefined && now >= rec.graceUntilMs) return 'accessToken replaced by a refresh and its grace period is over';
    return undefined;
  }

  #revokeAll(merchantId: string): void {
    for (const rec of this.#access.values()) if (rec.merchantId === merchantId) rec.revoked = true;
    for (const rec of this.#refresh.values()) if (rec.merchantId === merchantId) rec.revoked = true;
  }

  #mustGet(merchantId: string): MerchantRecord {
    const m = this.#merchants.get(merchantId);
    if (!m) throw new ControlError(404, `unknown merchant ${JSON.stringify(merchantId)}`);
    return m;
  }
}
