import type { Clock } from '../../core/clock.js';

/**
 * KeySecure rejects timestamps older than 60 s and any in its future (docs/protocols.md 2.2), so
 * the proxy stamps with its idea of the upstream's clock: local time + a learned offset − a
 * safety margin. The offset is learned from the upstream's `Date` header when it answers 1005
 * (docs/protocols.md 4.3). `Date` has one-second resolution and is truncated, so the learned
 * offset errs early, never late: a stamp never lands in the upstream's future.
 */
export class UpstreamClock {
  #offsetMs = 0;
  #marginMs: number;

  constructor(
    private readonly clock: Clock,
    marginMs: number,
    private readonly onChange: (offsetSeconds: number) => void = () => {},
  ) {
    this.#marginMs = marginMs;
  }

  /** A new safety margin (config reload); the learned offset is kept. */
  setMargin(marginMs: number): void {
    this.#marginMs = marginMs;
  }

  get offsetMs(): number {
    return this.#offsetMs;
  }

  /** The upstream's time now, as a 13-digit millisecond stamp. */
  stamp(): string {
    return String(Math.floor(this.clock.now() + this.#offsetMs - this.#marginMs));
  }

  /** The upstream's time now, Unix ms (the same as stamp(), as a number). */
  nowMs(): number {
    return Math.floor(this.clock.now() + this.#offsetMs - this.#marginMs);
  }

  /** Convert an absolute upstream time (e.g. `expired_time`) to local time. */
  toLocal(upstreamMs: number): number {
    return upstreamMs - this.#offsetMs;
  }

  /** Learn the offset from a `Date` header received at local time `receivedAt`. */
  learn(dateHeader: string | undefined, receivedAt = this.clock.now()): boolean {
    if (!dateHeader) return false;
    const upstreamMs = Date.parse(dateHeader);
    if (Number.isNaN(upstreamMs)) return false;
    this.#offsetMs = upstreamMs - receivedAt;
    this.onChange(this.#offsetMs / 1000);
    return true;
  }
}
