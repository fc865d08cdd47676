import { GatewayError } from '../core/errors.js';

/**
 * One upstream's connections, shared fairly among callers (README "Limits and fairness").
 *
 * The upstream has `capacity` connection slots (its `connections`); a business request holds
 * one from just before it is sent until its answer is in. A caller may hold at most:
 * - its `maxInFlight` for this upstream, when configured;
 * - its guaranteed share, `capacity × weight / Σ weights` of all configured callers (at least
 *   one slot), and beyond that it may borrow idle slots only while more than a reserve of
 *   `capacity / 8` stays free. So however hard one caller floods, a caller that arrives later
 *   finds a free slot at once instead of queueing behind the flood.
 * Without configured callers there is one anonymous caller, who may use every slot.
 *
 * A request that gets no slot waits in its caller's queue; a freed slot goes first to a
 * waiting caller under its guarantee, round robin among those, then to borrowers. A request
 * that is still waiting when its deadline passes is refused with UPSTREAM_TIMEOUT "no
 * connection free within …" and was never sent.
 *
 * Hot path: with a slot free, `acquire` is two comparisons and two increments and returns
 * undefined (no promise, no allocation); `release` is a decrement and a look at the queue.
 */
export interface CallerShareConfig {
  name: string;
  weight?: number;
  /** This caller's cap on this upstream; undefined: none beyond the fair share. */
  maxInFlight?: number;
}

export interface CallerSlot {
  readonly name: string;
  inFlight: number;
  /** Slots this caller may hold without borrowing. */
  guaranteed: number;
  /** Its weight over all callers' (0..1]: its part of each rate rule's wait window. */
  rateShare: number;
  cap: number;
  readonly waiting: Waiter[];
}

interface Waiter {
  slot: CallerSlot;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

const ANONYMOUS = '';

export class FairShare {
  readonly capacity: number;
  #inFlight = 0;
  #reserve = 0;
  readonly #callers = new Map<string, CallerSlot>();
  /** Callers with waiters, in round-robin order. */
  readonly #ring: CallerSlot[] = [];
  #next = 0;

  constructor(
    capacity: number,
    callers: readonly CallerShareConfig[] | undefined,
    readonly upstream: string,
  ) {
    this.capacity = capacity;
    this.configure(callers);
  }

  /** (Re)apply the callers' weights and caps; counts in flight are kept. */
  configure(callers: readonly CallerShareConfig[] | undefined): void {
    const list = callers && callers.length > 0 ? callers : [{ name: ANONYMOUS }];
    // One caller may have several entries (token rotation): its weight and cap are the largest given.
    const merged = new Map<string, { weight: number; cap: number }>();
    for (const c of list) {
      const prev = merged.get(c.name);
      const weight = Math.max(prev?.weight ?? 0, c.weight ?? 1);
      const cap = Math.max(prev?.cap ?? 0, c.maxInFlight ?? Infinity);
      merged.set(c.name, { weight, cap });
    }
    let total = 0;
    for (const m of merged.values()) total += m.weight;
    this.#reserve = merged.size > 1 ? Math.max(1, Math.ceil(this.capacity / 8)) : 0;
    for (const [name, m] of merged) {
      const slot = this.slotOf(name);
      slot.guaranteed = Math.max(1, Math.floor((this.capacity * m.weight) / total));
      slot.rateShare = m.weight / total;
      slot.cap = m.cap;
    }
    this.#drain();
  }

  /** The counters of one caller (undefined name: the anonymous caller). */
  slotOf(name: string | undefined): CallerSlot {
    const key = name ?? ANONYMOUS;
    let slot = this.#callers.get(key);
    if (!slot) {
      // A caller unknown to the config (removed by a reload while its requests run) gets the smallest share.
      slot = { name: key, inFlight: 0, guaranteed: 1, rateShare: 1 / Math.max(1, this.#callers.size), cap: Infinity, waiting: [] };
      this.#callers.set(key, slot);
    }
    return slot;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Take a slot for one attempt. Undefined: taken now. A promise: resolves once taken, rejects
   * with UPSTREAM_TIMEOUT when none is free within `timeoutMs`. Call `release` after either.
   */
  acquire(slot: CallerSlot, timeoutMs: number): Promise<void> | undefined {
    if (slot.waiting.length === 0 && this.#admissible(slot)) {
      this.#take(slot);
      return undefined;
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        slot,
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = slot.waiting.indexOf(waiter);
          if (i !== -1) slot.waiting.splice(i, 1);
          if (slot.waiting.length === 0) this.#leaveRing(slot);
          reject(this.noConnection(slot, timeoutMs));
        }, timeoutMs),
      };
      if (slot.waiting.push(waiter) === 1) this.#ring.push(slot);
    });
  }

  /** The refusal of a request that never got a connection slot in time. */
  noConnection(slot: CallerSlot, timeoutMs: number): GatewayError {
    return new GatewayError(
      'UPSTREAM_TIMEOUT',
      `no connection free within ${timeoutMs} ms to ${this.upstream} (${this.#inFlight} of ${this.capacity} in use, ${slot.inFlight} by this caller); the request was not sent`,
    );
  }

  release(slot: CallerSlot): void {
    slot.inFlight--;
    this.#inFlight--;
    if (this.#ring.length > 0) this.#drain();
  }

  #admissible(slot: CallerSlot): boolean {
    const free = this.capacity - this.#inFlight;
    if (free <= 0 || slot.inFlight >= slot.cap) return false;
    return slot.inFlight < slot.guaranteed || free > this.#reserve;
  }

  #take(slot: CallerSlot): void {
    slot.inFlight++;
    this.#inFlight++;
  }

  /** Hand free slots to waiters: callers under their guarantee first, round robin, then borrowers. */
  #drain(): void {
    while (this.#ring.length > 0 && this.#inFlight < this.capacity) {
      const pick = this.#pick(true) ?? this.#pick(false);
      if (!pick) return;
      const waiter = pick.waiting.shift()!;
      if (pick.waiting.length === 0) this.#leaveRing(pick);
      clearTimeout(waiter.timer);
      this.#take(pick);
      waiter.resolve();
    }
  }

  #pick(underGuarantee: boolean): CallerSlot | undefined {
    const n = this.#ring.length;
    for (let k = 0; k < n; k++) {
      const i = (this.#next + k) % n;
      const slot = this.#ring[i]!;
      if (underGuarantee && slot.inFlight >= slot.guaranteed) continue;
      if (!this.#admissible(slot)) continue;
      this.#next = (i + 1) % n;
      return slot;
    }
    return undefined;
  }

  #leaveRing(slot: CallerSlot): void {
    const i = this.#ring.indexOf(slot);
    if (i === -1) return;
    this.#ring.splice(i, 1);
    if (this.#next > i) this.#next--;
    if (this.#next >= this.#ring.length) this.#next = 0;
  }
}
