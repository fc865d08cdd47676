import { randomUUID } from 'node:crypto';
import type { IngressStore } from './state-store.js';

/**
 * Exactly-once work shared by every replica: a message id (or an authorization code) is first
 * claimed for a lease, then marked done with a payload for a retention period, or released so a
 * retry can do the work again. A second arrival while the first holds the claim waits for its
 * outcome (bounded), so concurrent duplicates produce one delivery and one consistent answer.
 */
export type ClaimOutcome =
  | { kind: 'claimed'; claim: Claim }
  /** Someone completed it: their payload. */
  | { kind: 'done'; payload: string }
  /** Someone else still holds it after `waitMs`. */
  | { kind: 'busy' };

export interface Claim {
  /** Mark the work done: later arrivals get `payload` for `ttlMs`. False when the lease was lost meanwhile. */
  complete(payload: string, ttlMs: number): Promise<boolean>;
  /** Give the work back (it failed): the next arrival does it again. */
  release(): Promise<void>;
}

const PENDING = 'pending:';
const DONE = 'done:';

export async function claimOnce(store: IngressStore, key: string, opts: { leaseMs: number; waitMs: number; pollMs?: number }): Promise<ClaimOutcome> {
  const mine = PENDING + randomUUID();
  const deadline = Date.now() + opts.waitMs;
  for (;;) {
    if (await store.claim(key, mine, opts.leaseMs)) {
      return {
        kind: 'claimed',
        claim: {
          complete: (payload, ttlMs) => store.replaceIf(key, mine, DONE + payload, ttlMs),
          release: async () => {
            await store.deleteIf(key, mine);
          },
        },
      };
    }
    const current = await store.get(key);
    if (current?.startsWith(DONE)) return { kind: 'done', payload: current.slice(DONE.length) };
    if (current === undefined) continue; // released or expired between the two calls: claim again
    if (Date.now() >= deadline) return { kind: 'busy' };
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 50));
  }
}

/** The payload of a completed key, without claiming it. */
export async function doneValue(store: IngressStore, key: string): Promise<string | undefined> {
  const v = await store.get(key);
  return v?.startsWith(DONE) ? v.slice(DONE.length) : undefined;
}
