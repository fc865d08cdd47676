/**
 * In-process refresh locks for the single-process stores (memory, file).
 *
 * A lock is an entry { owner, expiresAt } keyed by upstream and merchant. While `fn` runs the
 * lease is renewed every `renewEveryMs` (default lease/3); a lease that was not renewed in
 * time has expired and can be taken over. Release only removes the caller's own entry, so a
 * holder whose lease expired can never release the lock of whoever took it over.
 */

import { StoreError, type HeldLock } from './types.js';

export type LockResult<T> = { acquired: true; value: T } | { acquired: false };

/** Key of one (upstream, merchant) pair, unambiguous whatever characters the names hold. */
export function pairKey(upstream: string, merchant: string): string {
  return JSON.stringify([upstream, merchant]);
}

/** Throws a TypeError unless `leaseMs` is a usable lease; returns it as whole milliseconds. */
export function checkLease(leaseMs: number): number {
  if (typeof leaseMs !== 'number' || !Number.isFinite(leaseMs) || leaseMs <= 0) {
    throw new TypeError('withLock: leaseMs must be a positive number of milliseconds');
  }
  return Math.ceil(leaseMs);
}

/**
 * How often a lease of `leaseMs` is renewed: `configured` when given (0 = never renew: the
 * lease then caps how long one holder keeps the lock), else a third of the lease.
 */
export function renewInterval(leaseMs: number, configured: number | undefined): number {
  if (configured === undefined) return Math.max(1, Math.floor(leaseMs / 3));
  if (!Number.isFinite(configured) || configured < 0) {
    throw new TypeError('lockRenewEveryMs must be a number >= 0');
  }
  return configured;
}

interface LockEntry {
  expiresAt: number;
}

export class LocalLockTable {
  readonly #held = new Map<string, LockEntry>();
  readonly #now: () => number;
  readonly #renewEveryMs: number | undefined;

  constructor(options: { renewEveryMs?: number; now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
    if (options.renewEveryMs !== undefined) renewInterval(1, options.renewEveryMs);
    this.#renewEveryMs = options.renewEveryMs;
  }

  isLocked(key: string): boolean {
    const entry = this.#held.get(key);
    if (entry === undefined) return false;
    if (entry.expiresAt <= this.#now()) {
      this.#held.delete(key);
      return false;
    }
    return true;
  }

  async withLock<T>(key: string, leaseMs: number, fn: (lock: HeldLock) => Promise<T>): Promise<LockResult<T>> {
    const lease = checkLease(leaseMs);
    if (this.isLocked(key)) return { acquired: false };
    const entry: LockEntry = { expiresAt: this.#now() + lease };
    this.#held.set(key, entry);
    const every = renewInterval(lease, this.#renewEveryMs);
    let timer: NodeJS.Timeout | undefined;
    if (every > 0) {
      timer = setInterval(() => {
        if (this.#held.get(key) === entry) entry.expiresAt = this.#now() + lease;
        else clearInterval(timer);
      }, every);
      timer.unref();
    }
    const held: HeldLock = {
      confirm: async () => {
        if (this.#held.get(key) !== entry) throw new StoreError('the refresh lock was lost: its lease ran out');
        entry.expiresAt = this.#now() + lease;
      },
    };
    try {
      const value = await fn(held);
      return { acquired: true, value };
    } finally {
      if (timer !== undefined) clearInterval(timer);
      if (this.#held.get(key) === entry) this.#held.delete(key);
    }
  }

  /** Forget every lock (store closed). */
  clear(): void {
    this.#held.clear();
  }
}
