import type { Clock } from '../core/clock.js';
import { GatewayError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics, RefreshTrigger, TokenSnapshot, TokenState } from '../observability/metrics.js';
import { TokenCache } from './token-cache.js';
import { KEYSECURE_MERCHANT, StoreError, UnusableRecordError, type HeldLock, type TokenRecord, type TokenStore } from './types.js';

/**
 * The token lifecycle of one upstream, whatever its protocol: serve the cached token, renew it
 * ahead of expiry (in the background while it is still valid, in the foreground once it is
 * not), one renewal at a time per merchant in this process (single-flight) and across every
 * process sharing the store (the store's lock), the new pair written durably before it is
 * used, the old pair kept when anything fails, failed renewals backed off.
 *
 * The protocol-specific part is the TokenSource: how a new record is obtained.
 */
export interface TokenSource {
  /** Obtain a new record from the upstream. `current` is the stored record, if any. */
  obtain(merchant: string, current: TokenRecord | undefined): Promise<TokenRecord>;
  /** Whether a record can be obtained without one already stored (KeySecure: yes; Keeta: no). */
  readonly obtainsFromNothing: boolean;
}

export interface TokenServiceOptions {
  upstream: string;
  store: TokenStore;
  cache: TokenCache;
  clock: Clock;
  metrics: Metrics;
  log: Logger;
  source: TokenSource;
  refreshBeforeMs: number;
  /** Minimum time between two renewals of one merchant (Keeta: 60 s). */
  spacingMs: number;
  /** Lease of the store lock held while a renewal runs (renewed while it runs). */
  lockLeaseMs?: number;
  /**
   * Longest a caller's request waits for a renewal (its own or another process's) before it
   * gets TOKEN_UNAVAILABLE; the renewal itself goes on. The upstream's `timeout`; 0 = no bound.
   */
  waitMs?: number;
  /** How often a waiter polls the store while another process renews. */
  waitPollMs?: number;
  /** Largest backoff after repeated failures. */
  maxBackoffMs?: number;
  /** How long a renewed pair's write is retried while the lock is still held. */
  writeRetryMs?: number;
}

interface FailureState {
  failures: number;
  failedAt: number;
  nextAttemptAt: number;
  message: string;
}

/** A token the proxy cannot serve now; maps to TOKEN_UNAVAILABLE with Retry-After. */
export function tokenUnavailable(message: string, retryAfterMs: number, cause?: unknown): GatewayError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new GatewayError('TOKEN_UNAVAILABLE', message, { headers: { 'Retry-After': String(seconds) }, cause });
}

/** The stored record cannot be used (quarantined): refused until an operator imports a pair. */
export function recordUnusable(err: UnusableRecordError): GatewayError {
  const what = err.merchant === KEYSECURE_MERCHANT ? `the ${err.upstream} token` : `the ${err.upstream} token of merchant "${err.merchant}"`;
  return tokenUnavailable(`${what} cannot be used: ${err.reason}; import the pair again (docs/deploy.md)`, 60_000, err);
}

export function storeUnavailable(cause: unknown): GatewayError {
  // Not open yet is not unreachable: the STARTING refusal goes out as it is.
  if (cause instanceof GatewayError && cause.code === 'STARTING') return cause;
  return new GatewayError('STORE_UNAVAILABLE', 'the token store cannot be reached and no cached token is valid', {
    headers: { 'Retry-After': '5' },
    cause,
  });
}

export class TokenService {
  readonly upstream: string;
  readonly #o: Required<TokenServiceOptions>;
  readonly #inflight = new Map<string, Promise<TokenRecord>>();
  readonly #failures = new Map<string, FailureState>();
  /** Renewal refused for spacing: no new attempt (and no store I/O for one) before this time. */
  readonly #notBefore = new Map<string, number>();
  /** New pairs obtained but not yet written: never used, never lost, written again until it works. */
  readonly #pendingWrites = new Map<string, TokenRecord>();
  #pendingTimer: NodeJS.Timeout | undefined;
  #scheduler: NodeJS.Timeout | undefined;
  /** The scheduler pass under way, so passes never overlap and close() can wait for it. */
  #ticking: Promise<void> | undefined;
  #closing = false;

  constructor(options: TokenServiceOptions) {
    this.#o = { lockLeaseMs: 30_000, waitMs: 0, waitPollMs: 50, maxBackoffMs: 15 * 60_000, writeRetryMs: 20_000, ...options };
    this.upstream = options.upstream;
  }

  /**
   * The cached record when it is outside its refresh window, else undefined (then `current()`
   * decides). Synchronous, no store I/O and no side effect: the proxy's hot path takes a token
   * without a promise when this answers.
   */
  fresh(merchant: string): TokenRecord | undefined {
    const o = this.#o;
    const cached = o.cache.get(this.upstream, merchant);
    return cached && cached.revokedAt === undefined && o.clock.now() < cached.expiresAt - o.refreshBeforeMs ? cached : undefined;
  }

  /**
   * The record to use for a request now. No store I/O when the cached token is outside its
   * refresh window. Inside the window a renewal starts in the background and the still-valid
   * token is used; an expired (or missing) token waits for the renewal.
   */
  async current(merchant: string): Promise<TokenRecord | undefined> {
    const o = this.#o;
    const cached = o.cache.get(this.upstream, merchant);
    // A revoked merchant takes the slow path, which refuses it.
    if (cached && cached.revokedAt === undefined) {
      const now = o.clock.now();
      // The hot path: a cached token outside its window, no store I/O and no timer.
      if (now < cached.expiresAt - o.refreshBeforeMs) return cached;
      if (now < cached.expiresAt) {
        if (cached.refreshUnknownAt === undefined && !this.#inBackoff(merchant, now)) this.#refresh(merchant, 'on_demand').catch(() => {});
        return cached;
      }
    }
    // Expired or not cached: the caller waits for the store or a renewal, at most waitMs.
    return this.#bounded(this.#currentSlow(merchant, cached), merchant);
  }

  async #currentSlow(merchant: string, cached: TokenRecord | undefined): Promise<TokenRecord | undefined> {
    const o = this.#o;
    let rec = cached;
    if (!rec) rec = await this.#load(merchant);
    if (!rec) return o.source.obtainsFromNothing ? this.#refresh(merchant, 'on_demand') : undefined;
    if (rec.revokedAt !== undefined) {
      throw tokenUnavailable(`merchant "${merchant}" of ${this.upstream} revoked its authorization; it must connect again`, 3_600_000);
    }
    const now = o.clock.now();
    if (now < rec.expiresAt - o.refreshBeforeMs) return rec;
    if (now < rec.expiresAt) {
      if (rec.refreshUnknownAt === undefined && !this.#inBackoff(merchant, now)) this.#refresh(merchant, 'on_demand').catch(() => {});
      return rec;
    }
    return this.#refresh(merchant, 'on_demand');
  }

  /**
   * Renew now (single-flight). With `rejectedToken`, the upstream refused that token: any
   * other, newer token in the store is taken instead of renewing again.
   */
  refresh(merchant: string, trigger: RefreshTrigger, rejectedToken?: string): Promise<TokenRecord> {
    const p = this.#refresh(merchant, trigger, rejectedToken);
    // A caller's request waits at most waitMs; the admin API and the scheduler wait it out.
    return trigger === 'on_demand' || trigger === 'rejected' ? this.#bounded(p, merchant) : p;
  }

  /**
   * `p`, or TOKEN_UNAVAILABLE once `waitMs` has passed (the renewal behind `p` goes on and
   * its result is used by later requests).
   */
  #bounded<T>(p: Promise<T>, merchant: string): Promise<T> {
    const ms = this.#o.waitMs;
    if (!(ms > 0)) return p;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(tokenUnavailable(`the ${this.upstream} token of merchant "${merchant}" is being renewed and was not ready within ${ms} ms`, 2000)),
        ms,
      );
    });
    return Promise.race([p, late]).finally(() => clearTimeout(timer));
  }

  #refresh(merchant: string, trigger: RefreshTrigger, rejectedToken?: string): Promise<TokenRecord> {
    const key = TokenCache.key(this.upstream, merchant);
    const running = this.#inflight.get(key);
    if (running) return running;
    if (this.#closing) return Promise.reject(tokenUnavailable('the proxy is shutting down', 5000));
    const failure = this.#activeFailure(key);
    const now = this.#o.clock.now();
    if (trigger !== 'admin' && failure && failure.nextAttemptAt > now) {
      return Promise.reject(
        tokenUnavailable(`token renewal for ${this.upstream} is backing off after a failure: ${failure.message}`, failure.nextAttemptAt - now),
      );
    }
    const p = this.#renew(merchant, trigger, rejectedToken).finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }

  /** Background renewal of every cached token inside its window. */
  startScheduler(intervalMs: number): void {
    this.stopScheduler();
    this.#scheduler = setInterval(() => {
      if (!this.#ticking) void this.tick();
    }, intervalMs);
    this.#scheduler.unref();
  }

  stopScheduler(): void {
    if (this.#scheduler) clearInterval(this.#scheduler);
    this.#scheduler = undefined;
  }

  /** One scheduler pass; returns when its renewals have settled. Exposed for tests. */
  tick(): Promise<void> {
    this.#ticking ??= this.#tick().finally(() => (this.#ticking = undefined));
    return this.#ticking;
  }

  async #tick(): Promise<void> {
    const now = this.#o.clock.now();
    const due: string[] = [];
    for (const rec of this.#o.cache.records(this.upstream)) {
      if (rec.revokedAt !== undefined || rec.refreshUnknownAt !== undefined) continue;
      if (now >= rec.expiresAt - this.#o.refreshBeforeMs && !this.#inBackoff(rec.merchant, now)) due.push(rec.merchant);
    }
    // A few at a time: a bulk import expiring together must not flood the upstream.
    for (let i = 0; i < due.length && !this.#closing; i += 4) {
      await Promise.all(
        due.slice(i, i + 4).map((m) =>
          this.refresh(m, 'proactive').catch((err: unknown) => {
            this.#o.log.debug({ ...logFields(this.upstream, m), err: describe(err) }, 'proactive renewal did not complete');
          }),
        ),
      );
    }
  }

  state(rec: TokenRecord, now = this.#o.clock.now()): TokenState {
    if (rec.revokedAt !== undefined) return 'revoked';
    if (rec.refreshUnknownAt !== undefined) return 'refresh_unknown';
    if (now >= rec.expiresAt) return 'expired';
    if (this.#activeFailure(TokenCache.key(rec.upstream, rec.merchant), rec)) return 'refresh_failed';
    if (now >= rec.expiresAt - this.#o.refreshBeforeMs) return 'expiring';
    return 'valid';
  }

  lastFailure(merchant: string): { message: string; failedAt: number; failures: number } | undefined {
    const f = this.#activeFailure(TokenCache.key(this.upstream, merchant));
    return f && { message: f.message, failedAt: f.failedAt, failures: f.failures };
  }

  *snapshots(): IterableIterator<TokenSnapshot> {
    const now = this.#o.clock.now();
    for (const rec of this.#o.cache.records(this.upstream)) yield { upstream: this.upstream, state: this.state(rec, now), expiresAt: rec.expiresAt };
  }

  /** Forget in-process state of a merchant (after an admin delete or a new import). */
  forget(merchant: string): void {
    const key = TokenCache.key(this.upstream, merchant);
    this.#failures.delete(key);
    this.#notBefore.delete(key);
    this.#pendingWrites.delete(key);
  }

  /**
   * Stop renewing: no new renewal starts, the scheduler stops between batches, renewals under
   * way finish, and pairs still waiting for their write get one last try (an error is logged
   * if even that fails: the pair exists only in this process).
   */
  async close(): Promise<void> {
    this.#closing = true;
    this.stopScheduler();
    await this.#ticking;
    await Promise.allSettled([...this.#inflight.values()]);
    if (this.#pendingTimer) clearTimeout(this.#pendingTimer);
    this.#pendingTimer = undefined;
    await this.#flushPendingWrites();
    if (this.#pendingWrites.size) {
      this.#o.log.error({ upstream: this.upstream, pairs: this.#pendingWrites.size }, 'renewed tokens could not be written before shutdown and are lost');
    }
  }

  async #load(merchant: string): Promise<TokenRecord | undefined> {
    try {
      const rec = await this.#o.store.get(this.upstream, merchant);
      return rec && this.#o.cache.set(rec);
    } catch (err) {
      if (err instanceof UnusableRecordError) throw recordUnusable(err);
      throw storeUnavailable(err);
    }
  }

  #inBackoff(merchant: string, now: number): boolean {
    const key = TokenCache.key(this.upstream, merchant);
    const f = this.#activeFailure(key);
    return (f !== undefined && f.nextAttemptAt > now) || (this.#notBefore.get(key) ?? 0) > now;
  }

  /** The last renewal failure, unless the pair in use was renewed after it (here or by another replica). */
  #activeFailure(key: string, rec?: TokenRecord): FailureState | undefined {
    const f = this.#failures.get(key);
    if (!f) return undefined;
    const current = rec ?? this.#recordFor(key);
    if (current && current.refreshedAt > f.failedAt) {
      this.#failures.delete(key);
      return undefined;
    }
    return f;
  }

  #recordFor(key: string): TokenRecord | undefined {
    return this.#o.cache.get(this.upstream, key.slice(this.upstream.length + 1));
  }

  #clearState(key: string): void {
    this.#failures.delete(key);
    this.#notBefore.delete(key);
  }

  async #renew(merchant: string, trigger: RefreshTrigger, rejectedToken: string | undefined): Promise<TokenRecord> {
    const o = this.#o;
    const key = TokenCache.key(this.upstream, merchant);
    const before = o.cache.get(this.upstream, merchant);
    let attempted = false;
    /** A token obtained under the lock whose write failed, with the failure. */
    let unwritten: { rec: TokenRecord; cause: unknown } | undefined;
    try {
      const pending = this.#pendingWrites.get(key);
      if (pending && (!before || pending.issuedAt > before.issuedAt)) {
        // The upstream already rotated the pair; the new one only awaits its write.
        await this.#persist(pending);
        this.#clearState(key);
        return this.#adopt(pending);
      }
      const underLock = async (lock: HeldLock): Promise<TokenRecord> => {
        let stored = await o.store.get(this.upstream, merchant);
        // The store may hold an older pair than this process, or none (a Redis restored from an
        // older snapshot, a lagging replica promoted, data lost in a restart). Only the newest
        // pair's refresh token is still good: write it back, then renew from it.
        if (before && (!stored || stored.issuedAt < before.issuedAt)) {
          await this.#persist(before);
          o.log.warn(logFields(this.upstream, merchant), 'the store held an older pair than this instance; the newer pair was written back');
          stored = before;
        }
        if (stored && stored !== before && isNewer(stored, before, rejectedToken)) return stored;
        if (!stored && !o.source.obtainsFromNothing) {
          throw new GatewayError('UNKNOWN_MERCHANT', `merchant "${merchant}" of ${this.upstream} has no token (import one through the admin API)`);
        }
        const now = o.clock.now();
        if (stored && (trigger === 'proactive' || trigger === 'on_demand') && now < stored.expiresAt - o.refreshBeforeMs) return stored;
        if (stored?.refreshUnknownAt !== undefined) throw refreshTokenMaybeSpent(this.upstream, merchant, stored.refreshUnknownAt);
        if (stored && o.spacingMs > 0 && now - stored.refreshedAt < o.spacingMs) {
          this.#notBefore.set(key, stored.refreshedAt + o.spacingMs);
          throw tokenUnavailable(
            `${this.upstream} merchant "${merchant}" was renewed less than ${Math.round(o.spacingMs / 1000)} s ago; renewals are spaced`,
            stored.refreshedAt + o.spacingMs - now,
          );
        }
        // Still ours, with a full lease from now: the token call (at most the upstream's
        // timeout) ends before the lease does even if Redis cannot be reached to renew it.
        await lock.confirm();
        attempted = true;
        let next: TokenRecord;
        try {
          next = await o.source.obtain(merchant, stored);
        } catch (err) {
          if (err instanceof TokenOutcomeUnknownError && stored) await this.#markOutcomeUnknown(stored, trigger, err);
          throw err;
        }
        o.metrics.tokenRefreshes.inc({ upstream: this.upstream, trigger, result: 'success' });
        if (o.source.obtainsFromNothing) {
          // No single-use secret to protect: use the new token now, write it when the store answers.
          try {
            const written = await o.store.put(next);
            if (written === 'stale') return (await o.store.get(this.upstream, merchant)) ?? next;
          } catch (err) {
            unwritten = { rec: next, cause: err };
          }
          return next;
        }
        try {
          // Retried while the lock is held, so no other replica renews from the old pair.
          const written = await this.#persistHoldingLock(next);
          if (written === 'stale') return (await o.store.get(this.upstream, merchant)) ?? next;
        } catch (err) {
          this.#pendingWrites.set(key, next);
          this.#schedulePendingWrites();
          o.log.error(
            { ...logFields(this.upstream, merchant), err: describe(err) },
            'renewed token could not be written to the store; the old pair stays in use and the write is retried',
          );
          throw storeUnavailable(err);
        }
        return next;
      };
      let outcome = await o.store.withLock(this.upstream, merchant, o.lockLeaseMs, underLock);
      let rec = outcome.acquired ? outcome.value : await this.#waitForOther(merchant, before, rejectedToken);
      if (rec === undefined) {
        // The holder let go without a usable result, and a token can be had from nothing: renew.
        outcome = await o.store.withLock(this.upstream, merchant, o.lockLeaseMs, underLock);
        rec = outcome.acquired ? outcome.value : await this.#waitForOther(merchant, before, rejectedToken);
        if (rec === undefined) throw tokenUnavailable(`another instance renewed the ${this.upstream} token without a usable result`, 5000);
      }
      this.#clearState(key);
      if (outcome.acquired && attempted) {
        o.log.info({ ...logFields(this.upstream, merchant), trigger, expiresAt: new Date(rec.expiresAt).toISOString() }, 'token renewed');
      }
      const adopted = this.#adopt(rec);
      if (unwritten?.rec === rec) this.#deferWrite(key, adopted, unwritten.cause);
      return adopted;
    } catch (err) {
      if (!attempted && isStoreFailure(err) && !this.#closing) {
        // The store cannot be reached, so neither can the cross-replica lock.
        if (o.source.obtainsFromNothing) return this.#renewWithoutLock(merchant, trigger, before, err);
        this.#keepCurrent(merchant, trigger, before, err);
      }
      if (attempted && !(err instanceof GatewayError && err.code === 'STORE_UNAVAILABLE')) {
        o.metrics.tokenRefreshes.inc({ upstream: this.upstream, trigger, result: 'failure' });
      }
      throw this.#recordFailure(key, merchant, trigger, err, attempted, before);
    }
  }

  /**
   * A refresh was sent with `stored`'s single-use refresh token and its answer is lost: the
   * upstream may have rotated the pair. That refresh token is never sent again (a second use
   * would be refused, or worse): the record is marked `refreshUnknownAt` in the store, so every
   * replica and every restart sees it, and it is an alarm of its own (metric, log line naming
   * the merchant, admin state `refresh_unknown`). The access token serves while it is valid;
   * a new pair (OAuth or an import) clears the mark.
   */
  async #markOutcomeUnknown(stored: TokenRecord, trigger: RefreshTrigger, err: TokenOutcomeUnknownError): Promise<void> {
    const o = this.#o;
    const marked: TokenRecord = { ...stored, shopIds: [...stored.shopIds], refreshUnknownAt: o.clock.now() };
    o.metrics.tokenRefreshUnknown.inc({ upstream: this.upstream });
    let written = true;
    try {
      await this.#persistHoldingLock(marked);
    } catch {
      written = false;
    }
    o.cache.set(marked);
    o.log.error(
      { ...logFields(this.upstream, stored.merchant), trigger, err: err.message, markWritten: written },
      'token refresh sent but its answer was lost: the refresh token may be spent and is not sent again; the merchant is refresh_unknown until it connects again (OAuth) or a new pair is imported',
    );
  }

  /**
   * Degraded mode, for a token that can be obtained from nothing (KeySecure): renew without the
   * cross-replica lock (this process still renews once at a time: single-flight), use the new
   * token at once, and write it to the store as soon as the store answers again. A few
   * duplicate token calls across replicas are the price; a stalled Redis must not stop traffic.
   */
  async #renewWithoutLock(merchant: string, trigger: RefreshTrigger, before: TokenRecord | undefined, cause: unknown): Promise<TokenRecord> {
    const o = this.#o;
    const key = TokenCache.key(this.upstream, merchant);
    o.metrics.storeDegraded.inc({ upstream: this.upstream, action: 'renewed_without_lock' });
    o.log.warn(
      { ...logFields(this.upstream, merchant), trigger, err: describe(cause) },
      'token store unreachable: renewing without the cross-replica lock; the token is written to the store once it answers',
    );
    let next: TokenRecord;
    try {
      next = await o.source.obtain(merchant, before);
    } catch (err) {
      o.metrics.tokenRefreshes.inc({ upstream: this.upstream, trigger, result: 'failure' });
      throw this.#recordFailure(key, merchant, trigger, err, true, before);
    }
    o.metrics.tokenRefreshes.inc({ upstream: this.upstream, trigger, result: 'success' });
    this.#clearState(key);
    const adopted = this.#adopt(next);
    this.#deferWrite(key, adopted);
    return adopted;
  }

  /**
   * Degraded mode, for a single-use refresh token (Keeta): never refresh without the lock (a
   * refresh token must not be spent twice). The current token keeps serving while it is valid.
   */
  #keepCurrent(merchant: string, trigger: RefreshTrigger, before: TokenRecord | undefined, cause: unknown): void {
    const o = this.#o;
    o.metrics.storeDegraded.inc({ upstream: this.upstream, action: 'kept_current_token' });
    const valid = before !== undefined && o.clock.now() < before.expiresAt;
    o.log.warn(
      { ...logFields(this.upstream, merchant), trigger, currentTokenValid: valid, err: describe(cause) },
      `token store unreachable: no refresh without the cross-replica lock; ${afterFailedRenewal(before, o.clock.now())}`,
    );
  }

  /** A token in use that the store does not have yet: written every second until it lands. */
  #deferWrite(key: string, rec: TokenRecord, cause?: unknown): void {
    this.#pendingWrites.set(key, rec);
    this.#schedulePendingWrites();
    if (cause !== undefined) {
      this.#o.log.warn(
        { ...logFields(this.upstream, rec.merchant), err: describe(cause) },
        'renewed token is in use but could not be written to the store yet; the write is retried',
      );
    }
  }

  /** Another process holds the lock: wait until it publishes a newer pair or lets go. */
  async #waitForOther(merchant: string, before: TokenRecord | undefined, rejectedToken: string | undefined): Promise<TokenRecord | undefined> {
    const o = this.#o;
    // Real time, not the injected clock: this is how long we are willing to wait, not a token time.
    const deadline = Date.now() + o.lockLeaseMs + 2000;
    for (;;) {
      await sleep(o.waitPollMs);
      const stored = await o.store.get(this.upstream, merchant);
      if (stored && isNewer(stored, before, rejectedToken)) return stored;
      if (!before && stored) return stored;
      const locked = await o.store.isLocked(this.upstream, merchant);
      if (!locked) {
        const last = await o.store.get(this.upstream, merchant);
        if (last && (isNewer(last, before, rejectedToken) || !before)) return last;
        if (before && o.clock.now() < before.expiresAt && !rejectedToken) return before;
        if (o.source.obtainsFromNothing) return undefined;
        throw tokenUnavailable(`another instance renewed the ${this.upstream} token without a usable result`, 5000);
      }
      if (Date.now() > deadline) {
        throw tokenUnavailable(`timed out waiting for another instance to renew the ${this.upstream} token`, 5000);
      }
    }
  }

  async #persist(rec: TokenRecord): Promise<'written' | 'stale'> {
    let lastErr: unknown;
    for (let i = 0; i < 3; i++) {
      try {
        return await this.#o.store.put(rec);
      } catch (err) {
        lastErr = err;
        await sleep(50 * (i + 1));
      }
    }
    throw lastErr;
  }

  async #persistHoldingLock(rec: TokenRecord): Promise<'written' | 'stale'> {
    const deadline = Date.now() + this.#o.writeRetryMs;
    for (;;) {
      try {
        return await this.#o.store.put(rec);
      } catch (err) {
        if (err instanceof UnusableRecordError || this.#closing || Date.now() + 500 > deadline) throw err;
        await sleep(500);
      }
    }
  }

  #adopt(rec: TokenRecord): TokenRecord {
    this.#pendingWrites.delete(TokenCache.key(rec.upstream, rec.merchant));
    return this.#o.cache.set(rec);
  }

  /** Pairs whose write failed are written again every second until it works. */
  #schedulePendingWrites(): void {
    if (this.#pendingTimer || this.#closing) return;
    this.#pendingTimer = setTimeout(async () => {
      this.#pendingTimer = undefined;
      await this.#flushPendingWrites();
      if (this.#pendingWrites.size) this.#schedulePendingWrites();
    }, 1000);
    this.#pendingTimer.unref();
  }

  async #flushPendingWrites(): Promise<void> {
    for (const [key, rec] of this.#pendingWrites) {
      try {
        await this.#o.store.put(rec);
        this.#adopt(rec);
        this.#clearState(key);
        this.#o.log.info(logFields(rec.upstream, rec.merchant), 'renewed token written to the store after an earlier failure');
      } catch {
        /* still failing; the caller decides whether to try again */
      }
    }
  }

  #recordFailure(key: string, merchant: string, trigger: RefreshTrigger, err: unknown, attempted: boolean, before: TokenRecord | undefined): GatewayError {
    const o = this.#o;
    const now = o.clock.now();
    if (err instanceof UnusableRecordError) return recordUnusable(err);
    const gw = err instanceof GatewayError ? err : err instanceof StoreError ? storeUnavailable(err) : undefined;
    // Refusals that say nothing about the upstream (spacing, unknown merchant) are not failures.
    if (gw && (gw.code === 'UNKNOWN_MERCHANT' || (gw.code === 'TOKEN_UNAVAILABLE' && !(err instanceof TokenFetchError)))) return gw;
    // The store failed before the upstream was asked: no upstream backoff, a short pause only.
    if (!attempted) {
      this.#notBefore.set(key, now + 2000);
      return gw ?? storeUnavailable(err);
    }
    const prev = this.#failures.get(key);
    const failures = (prev?.failures ?? 0) + 1;
    const base = Math.max(o.spacingMs, 2000);
    const backoff = Math.min(o.maxBackoffMs, base * 2 ** (failures - 1));
    const message = describe(err);
    this.#failures.set(key, { failures, failedAt: now, nextAttemptAt: now + backoff, message });
    o.log.warn({ ...logFields(this.upstream, merchant), trigger, failures, retryInMs: backoff, err: message }, afterFailedRenewal(before, now));
    return gw ?? tokenUnavailable(`cannot renew the ${this.upstream} token: ${message}`, backoff, err);
  }
}

/** What a failed renewal leaves the merchant with, for the log line that reports it. */
function afterFailedRenewal(current: TokenRecord | undefined, now: number): string {
  if (current !== undefined && now < current.expiresAt) {
    return `token renewal failed; the current token stays in use until it expires at ${new Date(current.expiresAt).toISOString()}`;
  }
  if (current !== undefined) {
    return `token renewal failed and the current token expired at ${new Date(current.expiresAt).toISOString()}; requests for this merchant are refused with TOKEN_UNAVAILABLE until a renewal succeeds`;
  }
  return 'token renewal failed and there is no current token; requests are refused with TOKEN_UNAVAILABLE until a renewal succeeds';
}

/** The upstream refused to issue a token; message is safe to show (no token in it). */
export class TokenFetchError extends Error {
  override readonly name: string = 'TokenFetchError';
}

/**
 * A token call was sent and its answer lost (timeout or a broken connection after sending):
 * the upstream may have executed it. For a single-use refresh token that is `refresh_unknown`.
 */
export class TokenOutcomeUnknownError extends TokenFetchError {
  override readonly name = 'TokenOutcomeUnknownError';
}

function refreshTokenMaybeSpent(upstream: string, merchant: string, at: number): GatewayError {
  return tokenUnavailable(
    `the last refresh of ${upstream} merchant "${merchant}" (${new Date(at).toISOString()}) was sent and its answer lost, so its refresh token may be spent and is not sent again: connect the merchant again (OAuth) or import a new pair`,
    3_600_000,
  );
}

/** The store could not be reached (as opposed to the upstream refusing something). */
function isStoreFailure(err: unknown): boolean {
  if (err instanceof UnusableRecordError) return false;
  return err instanceof StoreError || (err instanceof GatewayError && err.code === 'STORE_UNAVAILABLE');
}

function isNewer(stored: TokenRecord, before: TokenRecord | undefined, rejectedToken: string | undefined): boolean {
  // Another token only counts when it is newer than ours too: two replicas that each renewed
  // while the store was unreachable hold different tokens, and the other one may be as dead.
  if (rejectedToken !== undefined) return stored.accessToken !== rejectedToken && (before === undefined || stored.issuedAt >= before.issuedAt);
  return before !== undefined && stored.issuedAt > before.issuedAt;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Who a token log line is about: the upstream and, for Keeta, the merchant (ids are not secrets). */
function logFields(upstream: string, merchant: string): { upstream: string; merchant?: string } {
  return merchant === KEYSECURE_MERCHANT ? { upstream } : { upstream, merchant };
}
