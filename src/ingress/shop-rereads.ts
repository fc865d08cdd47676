import type { Clock } from '../core/clock.js';

export interface ShopRereadLimit {
  /** Re-reads a merchant may have at once before the rate applies. */
  burst: number;
  /** One more re-read per this many ms. */
  intervalMs: number;
}

interface MerchantState {
  tokens: number;
  refilledAt: number;
  running: boolean;
  /** The re-read that covers every request made since the running one started. */
  queued: { promise: Promise<number>; resolve(n: number): void; reject(err: unknown): void; revokeIfEmpty: boolean } | undefined;
  timer: NodeJS.Timeout | undefined;
}

/**
 * The gateway's own upstream calls that pushes trigger (a merchant's shops re-read after a
 * store-authorization event), limited per merchant: at most one re-read of a merchant at a
 * time, a token bucket (`burst`, one more per `intervalMs`) on how often one starts, and every
 * request coalesced into the next re-read, which starts after the request was made (so the
 * change that caused the push is seen). However many pushes arrive, a merchant costs Keeta at
 * most `burst` re-reads at once and one per interval after that.
 */
export class ShopRereads {
  readonly #state = new Map<string, MerchantState>();
  #closed = false;

  constructor(
    private readonly deps: {
      limit: ShopRereadLimit;
      clock: Clock;
      /** Re-read one merchant; `revokeIfEmpty` when a cancellation asked for it. Resolves with the shop count. */
      read(merchant: string, revokeIfEmpty: boolean): Promise<number>;
    },
  ) {}

  /**
   * A re-read of `merchant` that starts after this call: resolves with its shop count, or
   * rejects with its error. Requests made while one is queued share it.
   */
  request(merchant: string, revokeIfEmpty = false): Promise<number> {
    const s = this.#of(merchant);
    if (!s.queued) {
      let resolve!: (n: number) => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<number>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Settled by its callers through `await`; a caller that stopped waiting must not leave it unhandled.
      promise.catch(() => {});
      s.queued = { promise, resolve, reject, revokeIfEmpty };
    }
    s.queued.revokeIfEmpty ||= revokeIfEmpty;
    const { promise } = s.queued;
    this.#pump(merchant, s);
    return promise;
  }

  close(): void {
    this.#closed = true;
    for (const s of this.#state.values()) {
      if (s.timer) clearTimeout(s.timer);
      s.timer = undefined;
      s.queued?.reject(new Error('the gateway is shutting down'));
      s.queued = undefined;
    }
  }

  #of(merchant: string): MerchantState {
    let s = this.#state.get(merchant);
    if (!s) {
      s = { tokens: this.deps.limit.burst, refilledAt: this.deps.clock.now(), running: false, queued: undefined, timer: undefined };
      this.#state.set(merchant, s);
    }
    return s;
  }

  #pump(merchant: string, s: MerchantState): void {
    if (this.#closed || s.running || !s.queued || s.timer) return;
    const { burst, intervalMs } = this.deps.limit;
    const now = this.deps.clock.now();
    const earned = Math.floor((now - s.refilledAt) / intervalMs);
    if (earned > 0) {
      s.tokens = Math.min(burst, s.tokens + earned);
      s.refilledAt = s.refilledAt + earned * intervalMs;
    }
    // A full bucket earns nothing: its next token counts from the moment one is taken.
    if (s.tokens >= burst) s.refilledAt = now;
    if (s.tokens < 1) {
      s.timer = setTimeout(() => {
        s.timer = undefined;
        this.#pump(merchant, s);
      }, Math.max(1, s.refilledAt + intervalMs - now));
      s.timer.unref();
      return;
    }
    s.tokens -= 1;
    const job = s.queued;
    s.queued = undefined;
    s.running = true;
    this.deps.read(merchant, job.revokeIfEmpty).then(job.resolve, job.reject).finally(() => {
      s.running = false;
      if (s.queued) this.#pump(merchant, s);
    });
  }
}
