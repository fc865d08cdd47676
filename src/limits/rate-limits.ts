import type { Clock } from '../core/clock.js';
import { COOLDOWN_RULE, type RateLimitedConfig, type RateLimitRuleConfig, type UpstreamConfig } from '../config/schema.js';
import { globToRegExp } from '../edge/callers.js';
import { GatewayError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { gcraRule, retryAfterSeconds } from './gcra.js';
import type { Limiter, LimitKey } from './local-limiter.js';

/**
 * Upstream back-pressure: per-upstream rate limits by path, and the cooldown after the
 * upstream says "too frequent" (KeySecure 1009).
 *
 * Two halves, so a config reload can rebuild the rules without losing what was counted:
 * - `RateLimitState`, built once per process: the limiter (whose budgets live in Redis or in
 *   its own map, keyed by upstream and rule name) and each upstream's cooldown deadline.
 * - `UpstreamRateLimits`, built from one upstream's config by `buildRateLimits`, as often as the
 *   config changes. It only holds compiled rules; a rule keeps its budget across rebuilds as
 *   long as its name stays.
 *
 * The hot path asks `admit(path)` once per upstream attempt. For a path under no rule, outside a
 * cooldown, that is one Map lookup (plus one RegExp test per glob rule) and returns undefined:
 * no allocation, no Redis call.
 */
export interface RateLimitState {
  readonly limiter: Limiter;
  /** Prefix of every budget's key (the store's keyPrefix with Redis, else ''). */
  readonly keyPrefix: string;
  /** True when budgets are shared through Redis (and may fall back to per-process ones). */
  readonly shared: boolean;
  /** The upstream's cooldown deadline (ms), one mutable holder per upstream name. */
  cooldownFor(upstream: string): { until: number };
  /** Connect the limiter (bounded wait; never fails: an unreachable Redis means per-process limits). */
  open(): Promise<void>;
  close(): Promise<void>;
}

export function createRateLimitState(limiter: Limiter, opts: { keyPrefix?: string; shared?: boolean } = {}): RateLimitState {
  const cooldowns = new Map<string, { until: number }>();
  return {
    limiter,
    keyPrefix: opts.keyPrefix ?? '',
    shared: opts.shared ?? false,
    cooldownFor(upstream) {
      let c = cooldowns.get(upstream);
      if (!c) cooldowns.set(upstream, (c = { until: 0 }));
      return c;
    },
    open: () => limiter.open(),
    close: () => limiter.close(),
  };
}

interface CompiledRule extends LimitKey {
  name: string;
  perSecond: number;
  maxWaitMs: number;
}

/** The rules one request falls under, with what the limiter needs precomputed. */
interface RuleSet {
  rules: readonly CompiledRule[];
  /** The smallest maxWait of the rules: a request under several rules waits at most that. */
  maxWaitMs: number;
  /** The same set plus the cooldown rule, built the first time a cooldown needs it. */
  withCooldown?: RuleSet;
}

function ruleSet(rules: readonly CompiledRule[]): RuleSet {
  return { rules, maxWaitMs: Math.min(...rules.map((r) => r.maxWaitMs)) };
}

export interface RateLimitDeps {
  state: RateLimitState;
  metrics: Metrics;
  clock: Clock;
  log: Logger;
  /** Waits for the limiter's answer; tests may shorten it. */
  sleep?: (ms: number) => Promise<void>;
}

/** Who asks, for the fair share of a rule's wait window (proxy/fair-share.ts sets rateShare). */
export interface RateCaller {
  readonly name: string;
  readonly rateShare: number;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class UpstreamRateLimits {
  readonly #upstream: string;
  readonly #exact = new Map<string, RuleSet>();
  readonly #globs: Array<{ pattern: RegExp; rule: CompiledRule }> = [];
  readonly #cooldownRule: CompiledRule | undefined;
  readonly #cooldownOnly: RuleSet | undefined;
  readonly #cooldownMs: number;
  readonly #cooldown: { until: number };
  readonly #deps: RateLimitDeps;
  readonly #sleep: (ms: number) => Promise<void>;
  /** Requests of each caller (and rule set) waiting for their slot now, when the caller has a share. */
  readonly #waiting = new Map<string, number>();

  constructor(upstream: string, rules: readonly RateLimitRuleConfig[], onRateLimited: RateLimitedConfig | undefined, deps: RateLimitDeps) {
    this.#upstream = upstream;
    this.#deps = deps;
    this.#sleep = deps.sleep ?? defaultSleep;
    this.#cooldown = deps.state.cooldownFor(upstream);
    const compile = (name: string, perSecond: number, burst: number, maxWaitMs: number): CompiledRule => ({
      name,
      perSecond,
      maxWaitMs,
      key: `${deps.state.keyPrefix}ratelimit:{${upstream}}:${name}`,
      ...gcraRule(perSecond, burst),
    });
    const exactRules = new Map<string, CompiledRule[]>();
    for (const r of rules) {
      const rule = compile(r.name, r.perSecond, r.burst, r.maxWait);
      for (const p of new Set(r.paths)) {
        if (p.includes('*')) this.#globs.push({ pattern: globToRegExp(p), rule });
        else exactRules.set(p, [...(exactRules.get(p) ?? []), rule]);
      }
    }
    for (const [p, list] of exactRules) this.#exact.set(p, ruleSet(list));
    this.#cooldownMs = onRateLimited?.cooldown ?? 0;
    if (onRateLimited && this.#cooldownMs > 0) {
      this.#cooldownRule = compile(COOLDOWN_RULE, onRateLimited.perSecond, 1, onRateLimited.maxWait);
      this.#cooldownOnly = ruleSet([this.#cooldownRule]);
      deps.metrics.rateLimitCooldowns.inc({ upstream }, 0);
    }
    const names = rules.map((r) => r.name);
    if (this.#cooldownRule) names.push(COOLDOWN_RULE);
    if (names.length > 0) deps.metrics.registerRateLimitRules(upstream, names, deps.state.shared);
  }

  /** Whether anything here can ever hold a request back (else the upstream needs no entry). */
  get active(): boolean {
    return this.#exact.size > 0 || this.#globs.length > 0 || this.#cooldownRule !== undefined;
  }

  /**
   * Before each upstream attempt. Undefined when nothing limits `path` now; otherwise a promise
   * that resolves when the request may be sent, or rejects with RATE_LIMITED.
   *
   * `caller.rateShare` (0..1] is the caller's fair share of the budget (its weight over all
   * callers'): of the slots a rule's wait window holds (maxWait × perSecond), a caller may
   * have at most its share waiting at a time in this process; beyond that its request is
   * refused at once. A flooding caller therefore fills only its part of the window, and
   * another caller's request finds a slot within maxWait instead of a 429 (README "Limits
   * and fairness").
   */
  admit(path: string, caller?: RateCaller): Promise<void> | undefined {
    let set = this.#rulesFor(path);
    if (this.#cooldownRule && this.#cooldown.until > this.#deps.clock.now()) {
      set = set ? (set.withCooldown ??= ruleSet([...set.rules, this.#cooldownRule])) : this.#cooldownOnly;
    }
    return set && this.#pass(set, caller);
  }

  /** The upstream answered "too frequent": pace it at the cooldown rate for a while. */
  slowDown(): void {
    if (!this.#cooldownRule) return;
    const now = this.#deps.clock.now();
    if (this.#cooldown.until <= now) {
      this.#deps.log.warn(
        { upstream: this.#upstream, cooldownMs: this.#cooldownMs, perSecond: this.#cooldownRule.perSecond },
        'the upstream answered "too frequent"; pacing it for the cooldown',
      );
    }
    this.#cooldown.until = now + this.#cooldownMs;
    this.#deps.metrics.rateLimitCooldowns.inc({ upstream: this.#upstream });
  }

  #rulesFor(path: string): RuleSet | undefined {
    const exact = this.#exact.get(path);
    if (this.#globs.length === 0) return exact;
    let matched: CompiledRule[] | undefined;
    for (const g of this.#globs) {
      if (g.pattern.test(path)) (matched ??= exact ? [...exact.rules] : []).push(g.rule);
    }
    return matched ? ruleSet(matched) : exact;
  }

  async #pass(set: RuleSet, caller: RateCaller | undefined): Promise<void> {
    const { metrics, state } = this.#deps;
    const maxWaitMs = set.maxWaitMs;
    let waitingKey: string | undefined;
    if (caller && caller.rateShare < 1) {
      const slowest = Math.max(...set.rules.map((r) => r.intervalMs));
      const allowance = Math.max(1, Math.floor((caller.rateShare * maxWaitMs) / slowest));
      waitingKey = `${caller.name}\u0000${set.rules[0]!.name}`;
      const waiting = this.#waiting.get(waitingKey) ?? 0;
      if (waiting >= allowance) {
        const rule = set.rules[0]!;
        metrics.rateLimited.inc({ upstream: this.#upstream, rule: rule.name });
        throw new GatewayError(
          'RATE_LIMITED',
          `${this.#upstream} allows ${rule.perSecond}/s under rule "${rule.name}"; caller "${caller.name}" already has its share (${allowance}) of that rate waiting. Retry after 1 s`,
          { headers: { 'Retry-After': '1' } },
        );
      }
    }
    const decision = await state.limiter.reserve(this.#upstream, set.rules, maxWaitMs);
    const rule = set.rules[decision.binding] ?? set.rules[0]!;
    const labels = { upstream: this.#upstream, rule: rule.name };
    if (!decision.allowed) {
      metrics.rateLimited.inc(labels);
      const retryAfter = retryAfterSeconds(decision, maxWaitMs);
      const what = rule.name === COOLDOWN_RULE ? `is paced at ${rule.perSecond}/s after it answered "too frequent"` : `allows ${rule.perSecond}/s under rule "${rule.name}"`;
      throw new GatewayError('RATE_LIMITED', `${this.#upstream} ${what}; that rate is used up for longer than ${maxWaitMs} ms. Retry after ${retryAfter} s`, {
        headers: { 'Retry-After': String(retryAfter) },
      });
    }
    metrics.rateLimitWaitSeconds.observe(labels, decision.waitMs / 1000);
    if (decision.waitMs > 0) {
      metrics.rateLimitWaits.inc(labels);
      if (waitingKey === undefined) {
        await this.#sleep(decision.waitMs);
        return;
      }
      this.#waiting.set(waitingKey, (this.#waiting.get(waitingKey) ?? 0) + 1);
      try {
        await this.#sleep(decision.waitMs);
      } finally {
        const left = this.#waiting.get(waitingKey)! - 1;
        if (left > 0) this.#waiting.set(waitingKey, left);
        else this.#waiting.delete(waitingKey);
      }
    }
  }
}

/**
 * Each upstream's limits from config, only for upstreams that have any. Call again with a new
 * config (and the same state) to replace them.
 */
export function buildRateLimits(upstreams: Record<string, UpstreamConfig>, deps: RateLimitDeps): Map<string, UpstreamRateLimits> {
  const out = new Map<string, UpstreamRateLimits>();
  for (const [name, cfg] of Object.entries(upstreams)) {
    const limits = new UpstreamRateLimits(name, cfg.rateLimits, cfg.type === 'keysecure' ? cfg.onRateLimited : undefined, deps);
    if (limits.active) out.set(name, limits);
  }
  return out;
}
