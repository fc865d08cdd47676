import type { Clock } from '../core/clock.js';
import { gcraReserve, type GcraDecision, type GcraRule } from './gcra.js';

/** One rule's budget as a limiter sees it: where its state lives and its arithmetic. */
export interface LimitKey extends GcraRule {
  /** The state's name: `{keyPrefix}ratelimit:{<upstream>}:<rule>`. */
  key: string;
}

/** Decides whether a request under some rules may go now, later (wait), or not at all. */
export interface Limiter {
  /** `upstream` only names the caller for metrics and logs. */
  reserve(upstream: string, keys: readonly LimitKey[], maxWaitMs: number): GcraDecision | Promise<GcraDecision>;
  /** Resolves once the limiter can decide as configured, or has given up for now; never rejects. */
  open(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The per-process limiter: GCRA state in a Map, time from the injected clock. Used on its own
 * with the memory and file stores, and as the fallback of the shared limiter while Redis cannot
 * be reached. The Map holds one number per configured rule, so it stays small.
 */
export class LocalLimiter implements Limiter {
  readonly #tats = new Map<string, number>();

  constructor(private readonly clock: Clock) {}

  reserve(_upstream: string, keys: readonly LimitKey[], maxWaitMs: number): GcraDecision {
    const tats = keys.map((k) => this.#tats.get(k.key) ?? 0);
    const decision = gcraReserve(tats, this.clock.now(), keys, maxWaitMs);
    if (decision.allowed) keys.forEach((k, i) => this.#tats.set(k.key, tats[i]!));
    return decision;
  }

  async open(): Promise<void> {}

  async close(): Promise<void> {}
}
