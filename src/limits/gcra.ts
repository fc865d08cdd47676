/**
 * GCRA (generic cell rate algorithm) with reservations: the arithmetic behind every rate limit,
 * pure so it can be tested with any clock. The Redis Lua script (shared-limiter.ts) is the same
 * arithmetic, line for line.
 *
 * A rule sends one request every `intervalMs` (1000 / perSecond) and may run `toleranceMs`
 * ahead of that schedule ((burst - 1) * intervalMs). Its state is one number, the theoretical
 * arrival time (TAT) of the next request. A request that arrives early is given a wait: it
 * reserves the next free slot and is sent when that slot comes, so requests queue up in slot
 * order instead of all retrying at once. When the wait would be longer than `maxWaitMs` the
 * request is refused and reserves nothing.
 *
 * Several rules can apply to one request (a path under two rules, or a rule plus the cooldown
 * after a 1009): the wait is the longest of theirs, and every rule reserves the slot at the time
 * the request is actually sent. Over any window of t ms, a rule admits at most
 * t / intervalMs + burst requests.
 */
export interface GcraRule {
  /** 1000 / perSecond. */
  intervalMs: number;
  /** (burst - 1) * intervalMs. */
  toleranceMs: number;
}

export interface GcraDecision {
  allowed: boolean;
  /** How long the request must wait before it is sent (allowed), or would have had to (refused). */
  waitMs: number;
  /** Index of the rule that set the wait (the one to blame for a refusal). */
  binding: number;
}

/**
 * Decide one request at `nowMs`. `tats[i]` is rule i's stored TAT (0 when it has none); on
 * success the new TATs are written back into `tats`.
 */
export function gcraReserve(tats: number[], nowMs: number, rules: readonly GcraRule[], maxWaitMs: number): GcraDecision {
  let waitMs = 0;
  let binding = 0;
  for (let i = 0; i < rules.length; i++) {
    const tat = Math.max(tats[i] ?? 0, nowMs);
    tats[i] = tat;
    const w = tat - rules[i]!.toleranceMs - nowMs;
    if (w > waitMs) {
      waitMs = w;
      binding = i;
    }
  }
  if (waitMs > maxWaitMs) return { allowed: false, waitMs, binding };
  const sendAt = nowMs + waitMs;
  for (let i = 0; i < rules.length; i++) tats[i] = Math.max(tats[i]!, sendAt) + rules[i]!.intervalMs;
  return { allowed: true, waitMs, binding };
}

/** The rule for `perSecond` requests a second with bursts of up to `burst`. */
export function gcraRule(perSecond: number, burst: number): GcraRule {
  const intervalMs = 1000 / perSecond;
  return { intervalMs, toleranceMs: (burst - 1) * intervalMs };
}

/**
 * Retry-After (whole seconds, at least 1) for a refused request: the earliest time the same
 * request could be admitted, if nobody else reserved meanwhile.
 */
export function retryAfterSeconds(decision: GcraDecision, maxWaitMs: number): number {
  return Math.max(1, Math.ceil((decision.waitMs - maxWaitMs) / 1000));
}
