import { channel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';

/**
 * Each sweep is published here (`{ start, pending, fired, ms }`, performance.now() times) for
 * whoever subscribes (bench/tail-probe.mjs); with no subscriber it costs one property read.
 */
export const sweepChannel = channel('countersign:deadline-sweep');

/** One pending deadline; `fire` runs once, when it passes, unless it was cleared first. */
export interface Deadline {
  at: number;
  fire(): void;
}

/**
 * Many deadlines on one coarse timer. Arming a timer (or an AbortSignal.timeout) per upstream
 * request costs more than the rest of forwarding on a busy proxy; here a request only adds
 * itself to a Set and removes itself when it is answered, and one interval, running only while
 * something is pending, fires whatever has expired. A deadline fires at most `tickMs` late.
 */
export class DeadlineSweeper {
  private readonly pending = new Set<Deadline>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly tickMs = 10,
    private readonly now: () => number = () => performance.now(),
  ) {}

  add(ms: number, fire: () => void): Deadline {
    return this.arm({ at: 0, fire }, ms);
  }

  /** Put an object of the caller's on the sweeper (its `at` is set here): no allocation of its own. */
  arm<D extends Deadline>(d: D, ms: number): D {
    d.at = this.now() + ms;
    this.pending.add(d);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), this.tickMs);
      // In-flight sockets keep the process alive; the sweeper alone does not.
      this.timer.unref();
    }
    return d;
  }

  clear(d: Deadline): void {
    this.pending.delete(d);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Fire every expired deadline; stop the timer once nothing is pending. */
  sweep(): void {
    if (this.pending.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    const t = this.now();
    const observed = sweepChannel.hasSubscribers;
    const pending = this.pending.size;
    const start = observed ? performance.now() : 0;
    let fired = 0;
    for (const d of this.pending) {
      if (d.at > t) continue;
      this.pending.delete(d);
      fired++;
      d.fire();
    }
    if (observed) sweepChannel.publish({ start, pending, fired, ms: performance.now() - start });
  }
}
