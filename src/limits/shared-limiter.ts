import { createHash } from 'node:crypto';
import type { RedisClient as Redis } from '../tokens/redis-connection.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../observability/logger.js';
import type { GcraDecision } from './gcra.js';
import type { Limiter, LimitKey, LocalLimiter } from './local-limiter.js';

/**
 * gcra.ts's arithmetic as one Lua script, so the read-decide-write of every rule a request falls
 * under is atomic across replicas. Time is Redis's own (`TIME`), so replicas whose clocks differ
 * still share one schedule; waits come back relative, in ms.
 *
 * KEYS: one per rule (all of one upstream share a hash tag, so the script is Cluster-safe).
 * ARGV: [1] now in ms ('' = Redis TIME; tests pass a value), [2] maxWaitMs, then for rule i
 * (1-based) [1 + 2i] intervalMs and [2 + 2i] toleranceMs.
 * Returns {allowed (1|0), waitMs (string, fractional), binding (0-based rule index)}.
 * A TAT is kept as text with 3 decimals and expires once it lies a second in the past, where an
 * absent key means the same thing.
 */
export const GCRA_LUA = `
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local maxWait = tonumber(ARGV[2])
local tats = {}
local wait = 0
local binding = 0
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if tat < now then tat = now end
  tats[i] = tat
  local w = tat - tonumber(ARGV[2 + 2 * i]) - now
  if w > wait then
    wait = w
    binding = i - 1
  end
end
if wait > maxWait then
  return {0, string.format('%.3f', wait), binding}
end
local sendAt = now + wait
for i = 1, #KEYS do
  local tat = tats[i]
  if tat < sendAt then tat = sendAt end
  local nextTat = tat + tonumber(ARGV[1 + 2 * i])
  redis.call('SET', KEYS[i], string.format('%.3f', nextTat), 'PX', math.ceil(nextTat - now) + 1000)
end
return {1, string.format('%.3f', wait), binding}
`;
export const GCRA_SHA = createHash('sha1').update(GCRA_LUA).digest('hex');

export interface SharedLimiterOptions {
  client: Redis;
  /** Decides while Redis cannot be reached. */
  fallback: LocalLimiter;
  clock: Clock;
  log: Logger;
  /** Called for every decision taken per process because Redis could not be reached. */
  onLocalDecision?(upstream: string): void;
  /** After a failed call, decide locally this long before asking Redis again. Default 1000. */
  retryAfterMs?: number;
  /** Texts blanked out of logged error messages (the Redis password). */
  secrets?: readonly string[];
}

/**
 * Rate limits shared by every replica through Redis, falling back to per-process limits while
 * Redis is unreachable (not connected, or a call failed or timed out), and back to Redis once
 * it answers again. Each switch is logged once; every local decision is counted.
 */
export class SharedLimiter implements Limiter {
  readonly #client: Redis;
  readonly #fallback: LocalLimiter;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #onLocal: (upstream: string) => void;
  readonly #retryAfterMs: number;
  readonly #secrets: readonly string[];
  #skipUntil = 0;
  #shared = true;

  constructor(options: SharedLimiterOptions) {
    this.#client = options.client;
    this.#fallback = options.fallback;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#onLocal = options.onLocalDecision ?? (() => {});
    this.#retryAfterMs = options.retryAfterMs ?? 1000;
    this.#secrets = (options.secrets ?? []).filter((x) => x !== '');
  }

  async reserve(upstream: string, keys: readonly LimitKey[], maxWaitMs: number): Promise<GcraDecision> {
    if (this.#client.status === 'ready' && this.#clock.now() >= this.#skipUntil) {
      try {
        const decision = await runGcra(this.#client, keys, maxWaitMs);
        if (!this.#shared) {
          this.#shared = true;
          this.#log.info('rate limits are shared through Redis again');
        }
        return decision;
      } catch (err) {
        this.#skipUntil = this.#clock.now() + this.#retryAfterMs;
        this.#goLocal(err instanceof Error ? err.message : String(err));
      }
    } else {
      this.#goLocal(`connection ${this.#client.status}`);
    }
    this.#onLocal(upstream);
    return this.#fallback.reserve(upstream, keys, maxWaitMs);
  }

  /** Waits (up to `timeoutMs`) for the first connection, so a starting replica shares from its first request. */
  async open(timeoutMs = 2000): Promise<void> {
    if (this.#client.status === 'ready') return;
    // A lazily connecting client starts here; a failure is retried in the background.
    if (this.#client.status === 'wait') this.#client.connect().catch(() => {});
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#client.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.#client.once('ready', done);
    });
  }

  #goLocal(reason: string): void {
    if (!this.#shared) return;
    this.#shared = false;
    for (const secret of this.#secrets) reason = reason.split(secret).join('[redacted]');
    this.#log.warn({ reason: reason.slice(0, 200) }, 'rate limits: Redis unreachable; each replica now limits on its own');
  }

  async close(): Promise<void> {
    this.#client.disconnect();
  }
}

/** Run the script once (EVALSHA, loading it on NOSCRIPT). `nowMs` overrides Redis TIME (tests). */
export async function runGcra(client: Redis, keys: readonly LimitKey[], maxWaitMs: number, nowMs?: number): Promise<GcraDecision> {
  const args: Array<string | number> = [nowMs === undefined ? '' : nowMs, maxWaitMs];
  for (const k of keys) args.push(k.intervalMs, k.toleranceMs);
  const names = keys.map((k) => k.key);
  let reply: unknown;
  try {
    reply = await client.evalsha(GCRA_SHA, names.length, ...names, ...args);
  } catch (err) {
    if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err;
    reply = await client.eval(GCRA_LUA, names.length, ...names, ...args);
  }
  const [allowed, wait, binding] = reply as [number, string, number];
  return { allowed: allowed === 1, waitMs: Number(wait), binding };
}
