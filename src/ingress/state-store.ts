import type { RedisClient as Redis } from '../tokens/redis-connection.js';
import type { Clock } from '../core/clock.js';

/**
 * Short-lived shared state of the ingress side: OAuth `state`s, claimed authorization codes and
 * delivered message ids. Every replica sharing the token store must see the same values, so with
 * a Redis token store this lives in the same Redis (RedisIngressStore); with a memory or file
 * store there is one process and an in-process map is enough (MemoryIngressStore).
 *
 * Every value expires after its ttl. Compare-and-set operations take the expected value, so a
 * replica that lost its claim (lease expired) cannot overwrite or delete another one's.
 */
export interface IngressStore {
  readonly kind: 'memory' | 'redis';
  get(key: string): Promise<string | undefined>;
  /** Write (or overwrite) a value. */
  put(key: string, value: string, ttlMs: number): Promise<void>;
  /** Read and delete in one step: only one caller ever gets a value. */
  take(key: string): Promise<string | undefined>;
  /** Write only when the key is absent; true when written. */
  claim(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** Replace the value only while it still equals `expected`; true when replaced. */
  replaceIf(key: string, expected: string, value: string, ttlMs: number): Promise<boolean>;
  /** Delete only while the value equals `expected`; true when deleted. */
  deleteIf(key: string, expected: string): Promise<boolean>;
  close(): Promise<void>;
}

interface Entry {
  value: string;
  expiresAt: number;
}

/** One process: a map with expiry, swept as it grows. */
export class MemoryIngressStore implements IngressStore {
  readonly kind = 'memory';
  readonly #entries = new Map<string, Entry>();
  #writesSinceSweep = 0;

  constructor(private readonly clock: Clock) {}

  async get(key: string): Promise<string | undefined> {
    return this.#live(key)?.value;
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    this.#set(key, value, ttlMs);
  }

  async take(key: string): Promise<string | undefined> {
    const e = this.#live(key);
    this.#entries.delete(key);
    return e?.value;
  }

  async claim(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.#live(key)) return false;
    this.#set(key, value, ttlMs);
    return true;
  }

  async replaceIf(key: string, expected: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.#live(key)?.value !== expected) return false;
    this.#set(key, value, ttlMs);
    return true;
  }

  async deleteIf(key: string, expected: string): Promise<boolean> {
    if (this.#live(key)?.value !== expected) return false;
    this.#entries.delete(key);
    return true;
  }

  async close(): Promise<void> {
    this.#entries.clear();
  }

  /** Entries held now, expired ones included until the next sweep (for tests). */
  get size(): number {
    return this.#entries.size;
  }

  #live(key: string): Entry | undefined {
    const e = this.#entries.get(key);
    if (e && e.expiresAt <= this.clock.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return e;
  }

  #set(key: string, value: string, ttlMs: number): void {
    this.#entries.set(key, { value, expiresAt: this.clock.now() + ttlMs });
    if (++this.#writesSinceSweep >= 1000) {
      this.#writesSinceSweep = 0;
      const now = this.clock.now();
      for (const [k, e] of this.#entries) if (e.expiresAt <= now) this.#entries.delete(k);
    }
  }
}

const TAKE = "local v = redis.call('GET', KEYS[1]); if v then redis.call('DEL', KEYS[1]) end; return v";
const REPLACE_IF = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]); return 1 end; return 0";
const DELETE_IF = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]); return 1 end; return 0";

/**
 * Shared by every replica through Redis. Takes an ioredis client (its `keyPrefix` applies);
 * the client belongs to the caller unless `ownsClient` is set.
 */
export class RedisIngressStore implements IngressStore {
  readonly kind = 'redis';

  constructor(
    private readonly client: Redis,
    private readonly opts: { ownsClient?: boolean } = {},
  ) {}

  async get(key: string): Promise<string | undefined> {
    return (await this.client.get(key)) ?? undefined;
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    await this.client.set(key, value, 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async take(key: string): Promise<string | undefined> {
    const v = (await this.client.eval(TAKE, 1, key)) as string | null;
    return v ?? undefined;
  }

  async claim(key: string, value: string, ttlMs: number): Promise<boolean> {
    return (await this.client.set(key, value, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')) === 'OK';
  }

  async replaceIf(key: string, expected: string, value: string, ttlMs: number): Promise<boolean> {
    return (await this.client.eval(REPLACE_IF, 1, key, expected, value, String(Math.max(1, Math.ceil(ttlMs))))) === 1;
  }

  async deleteIf(key: string, expected: string): Promise<boolean> {
    return (await this.client.eval(DELETE_IF, 1, key, expected)) === 1;
  }

  async close(): Promise<void> {
    if (this.opts.ownsClient) this.client.disconnect();
  }
}
