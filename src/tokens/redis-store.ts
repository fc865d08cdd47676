/**
 * `redis` store: shared by every replica. Works against one server, a Sentinel-managed master
 * or a Redis Cluster (the client comes from redis-connection.ts).
 *
 * Key layout. Upstream and merchant names are URI-encoded inside keys, so ':' in a name is
 * unambiguous and no name can contain '{' or '}'. The `{...}` part is the Cluster hash tag:
 * every key of one merchant lands in the same slot, so each script below touches one slot.
 *   {prefix}token:{<upstream>:<merchant>}  string, the JSON record
 *   {prefix}lock:{<upstream>:<merchant>}   refresh lock: random owner id, PX lease
 *   {prefix}index:{<upstream>}             set of the upstream's merchant names
 *   {prefix}upstreams                      set of upstream names that ever had records
 *   {prefix}events                         pub/sub channel, messages {"upstream","merchant"}
 *
 * `put` and `delete` are one-key Lua scripts: the newer-wins check, the write and the change
 * notification happen atomically (a crash between write and publish cannot lose a
 * notification). The index sets live in other slots and are updated by separate commands,
 * ordered so a crash leaves at worst an index entry without a record (skipped by `list`),
 * never a record missing from the index. No command or transaction spans two slots.
 *
 * Locks: SET NX PX with a random owner value, renewed by compare-and-pexpire while the holder
 * runs, released by compare-and-delete (never someone else's lock). An acquisition whose
 * answer never arrived (Redis stalled, connection cut) may still be executed later by Redis:
 * its owner value is then released in the background as soon as Redis answers, so a lock
 * nobody believes it holds does not block renewals until its lease ends.
 *
 * Failure behaviour: no offline queue and no command retries, so when Redis is down every
 * operation fails at once with a StoreError; the connection keeps reconnecting in the
 * background (capped backoff) and the store works again as soon as Redis is back.
 */
import { createHash, randomUUID } from 'node:crypto';
import { checkLease, renewInterval, type LockResult } from './local-lock.js';
import { Keyring } from './keyring.js';
import { copyRecordIn, sortRecords } from './memory-store.js';
import type { RecordLedger } from './record-ledger.js';
import { openRecord, sealRecord, type OpenedRecord } from './record-seal.js';
import { createRedisClient, describeRedisTarget, type RedisClient, type RedisConnectionConfig } from './redis-connection.js';
import { StoreError, UnusableRecordError, type HeldLock, type PutOptions, type PutResult, type StoreListener, type TokenRecord, type TokenStore } from './types.js';

export interface RedisStoreOptions extends RedisConnectionConfig {
  /** Prefix of every key and of the channel. Default 'countersign:'. */
  keyPrefix?: string;
  /** Lease renewal period while a lock holder runs; default lease/3; 0 = never renew. */
  lockRenewEveryMs?: number;
  /** Budget of `open()` and of one connection attempt. Default 5000. */
  connectTimeoutMs?: number;
  /** A command without a reply within this fails. Default 2000. */
  commandTimeoutMs?: number;
  /** Called with true after each successful operation (and on reconnect), false after each
   *  failed one and on connection loss. Drives `countersign_store_up`. */
  onStatus?: (up: boolean) => void;
  /** Seals every write and opens every read (record-seal.ts); none: plaintext records. */
  keyring?: Keyring;
  /**
   * Quarantine: with a ledger, a record that cannot be used (undecryptable, malformed, naming
   * another upstream or merchant) is left out of `list`, noted in the ledger, and never
   * overwritten except by `put(…, { overUnusable: 'replace' })`. Without one, `list` throws
   * on it and `put` replaces it.
   */
  ledger?: RecordLedger;
}

class LuaScript {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }
}

/**
 * KEYS: record. ARGV: '1' when a value was read (then ARGV[2] is it) or '0' when none was,
 * the new value, channel, message. Compare-and-set: writes only when the record is still what
 * the caller read (the newer-wins check and the quarantine check are made on the opened
 * record, which only this process can open). Returns 1 written, 0 changed meanwhile.
 */
const PUT = new LuaScript(`
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if cur ~= ARGV[2] then return 0 end
elseif cur then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`);

/** Compare-and-set attempts of one put before it gives up (each lost to a concurrent write). */
const PUT_ATTEMPTS = 20;

/** KEYS: record. ARGV: channel, message. */
const DELETE = new LuaScript(`
local n = redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return n
`);

/** KEYS: lock. ARGV: owner, leaseMs. 1 when renewed, 0 when the lock is no longer ours. */
const RENEW = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`);

/** KEYS: lock. ARGV: owner. Deletes the lock only when it is still ours. */
const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`);

/** Records fetched at once by `list` (one GET each: the keys live in different slots). */
const GET_BATCH = 500;
/** How long an acquisition of unknown outcome is cleaned up after, at most. */
const ORPHAN_CLEANUP_MS = 120_000;

/** An error's message, with any of `secrets` blanked out and its length bounded. */
function describeError(err: unknown, secrets: readonly string[]): string {
  let message = err instanceof Error ? err.message : String(err);
  for (const s of secrets) if (s !== '') message = message.split(s).join('[redacted]');
  return message.length > 300 ? `${message.slice(0, 300)}...` : message;
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/** The key names of the layout above, exported for tests and tools. */
export function redisKeys(prefix: string) {
  const tag = (upstream: string, merchant: string) => `{${encodeURIComponent(upstream)}:${encodeURIComponent(merchant)}}`;
  return {
    record: (upstream: string, merchant: string) => `${prefix}token:${tag(upstream, merchant)}`,
    lock: (upstream: string, merchant: string) => `${prefix}lock:${tag(upstream, merchant)}`,
    index: (upstream: string) => `${prefix}index:{${encodeURIComponent(upstream)}}`,
    upstreams: () => `${prefix}upstreams`,
    channel: () => `${prefix}events`,
  };
}

export class RedisStore implements TokenStore {
  readonly kind = 'redis' as const;
  readonly keyPrefix: string;
  readonly #connection: RedisConnectionConfig;
  readonly #where: string;
  readonly #client: RedisClient;
  readonly #keys: ReturnType<typeof redisKeys>;
  readonly #renewEveryMs: number | undefined;
  readonly #connectTimeoutMs: number;
  readonly #commandTimeoutMs: number;
  readonly #onStatus: ((up: boolean) => void) | undefined;
  readonly #listeners = new Set<StoreListener>();
  /** Background releases of acquisitions whose answer never arrived. */
  readonly #orphans = new Set<NodeJS.Timeout>();
  readonly #ring: Keyring;
  readonly #ledger: RecordLedger | undefined;
  #sub: RedisClient | undefined;
  #closed = false;

  constructor(options: RedisStoreOptions) {
    if (!options.url && !options.sentinels && !options.nodes) {
      throw new TypeError('redis store: url, sentinels or nodes is required');
    }
    this.#connection = options;
    this.#where = describeRedisTarget(options);
    this.keyPrefix = options.keyPrefix ?? 'countersign:';
    this.#keys = redisKeys(this.keyPrefix);
    if (options.lockRenewEveryMs !== undefined) renewInterval(1, options.lockRenewEveryMs);
    this.#renewEveryMs = options.lockRenewEveryMs;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.#commandTimeoutMs = options.commandTimeoutMs ?? 2000;
    this.#onStatus = options.onStatus;
    this.#ring = options.keyring ?? new Keyring();
    this.#ledger = options.ledger;
    this.#client = this.#newClient('store', true);
    // A listener is required: without one ioredis prints every connection error.
    this.#client.on('error', () => this.#status(false));
    this.#client.on('close', () => this.#status(false));
    this.#client.on('ready', () => this.#status(true));
  }

  async open(): Promise<void> {
    if (this.#closed) throw new StoreError(`redis store: open on ${this.#where} after close`);
    try {
      await this.#waitReady(this.#client);
      await this.#client.ping();
    } catch (err) {
      this.#status(false);
      throw new StoreError(`redis store: cannot reach ${this.#where} (${describeError(err, [])})`);
    }
    this.#status(true);
  }

  get(upstream: string, merchant: string): Promise<TokenRecord | undefined> {
    return this.#op('get', [], async () => {
      const json = await this.#client.get(this.#keys.record(upstream, merchant));
      return json === null ? undefined : this.#decode(json, upstream, merchant);
    });
  }

  list(upstream?: string): Promise<TokenRecord[]> {
    return this.#op('list', [], async () => {
      const upstreams = upstream === undefined ? await this.#client.smembers(this.#keys.upstreams()) : [upstream];
      const out: TokenRecord[] = [];
      for (const u of upstreams) {
        const merchants = await this.#client.smembers(this.#keys.index(u));
        for (let i = 0; i < merchants.length; i += GET_BATCH) {
          const chunk = merchants.slice(i, i + GET_BATCH);
          // One GET per key (no MGET: in a Cluster the keys live in different slots); ioredis
          // writes them back to back, so a batch costs about one round trip.
          const values = await Promise.all(chunk.map((m) => this.#client.get(this.#keys.record(u, m))));
          values.forEach((json, j) => {
            // null: deleted between SMEMBERS and GET, or an index entry left by a crash.
            if (json === null) return;
            try {
              out.push(this.#decode(json, u, chunk[j] ?? ''));
            } catch (err) {
              // Quarantined: noted in the ledger, the other merchants are listed.
              if (!(err instanceof UnusableRecordError) || this.#ledger === undefined) throw err;
            }
          });
        }
      }
      return sortRecords(out);
    });
  }

  async put(record: TokenRecord, options: PutOptions = {}): Promise<PutResult> {
    const r = copyRecordIn(record);
    const secrets = [r.accessToken, r.refreshToken ?? ''];
    const overUnusable = options.overUnusable ?? (this.#ledger ? 'refuse' : 'replace');
    return this.#op('put', secrets, async () => {
      // Index first: a crash after it leaves an entry without a record, which list() skips.
      await this.#client.sadd(this.#keys.upstreams(), r.upstream);
      await this.#client.sadd(this.#keys.index(r.upstream), r.merchant);
      const key = this.#keys.record(r.upstream, r.merchant);
      const message = JSON.stringify({ upstream: r.upstream, merchant: r.merchant });
      for (let attempt = 0; attempt < PUT_ATTEMPTS; attempt++) {
        const cur = await this.#client.get(key);
        if (cur !== null) {
          const opened = this.#open(cur, r.upstream, r.merchant);
          if (!opened.ok) {
            if (overUnusable === 'refuse') {
              this.#ledger?.unusable(r.upstream, r.merchant, opened.reason);
              throw new UnusableRecordError(r.upstream, r.merchant, opened.reason);
            }
          } else if (opened.record.issuedAt > r.issuedAt) {
            return 'stale';
          }
        }
        const sealed = JSON.stringify(sealRecord(this.#ring, r));
        const written = await this.#eval(PUT, [key], [cur === null ? '0' : '1', cur ?? '', sealed, this.#keys.channel(), message]);
        if (written === 1) {
          this.#ledger?.seen(r.upstream, r.merchant, this.#ring.writer?.id ?? 'plaintext');
          return 'written';
        }
      }
      throw new StoreError(`redis store: put of ${r.upstream} merchant ${JSON.stringify(r.merchant)} lost ${PUT_ATTEMPTS} races with other writers in a row`);
    });
  }

  delete(upstream: string, merchant: string): Promise<void> {
    return this.#op('delete', [], async () => {
      await this.#eval(DELETE, [this.#keys.record(upstream, merchant)], [this.#keys.channel(), JSON.stringify({ upstream, merchant })]);
      // Record first, index after: a crash in between leaves an index entry list() skips.
      await this.#client.srem(this.#keys.index(upstream), merchant);
      this.#ledger?.removed(upstream, merchant);
    });
  }

  async withLock<T>(
    upstream: string,
    merchant: string,
    leaseMs: number,
    fn: (lock: HeldLock) => Promise<T>,
  ): Promise<LockResult<T>> {
    const lease = checkLease(leaseMs);
    const every = renewInterval(lease, this.#renewEveryMs);
    const key = this.#keys.lock(upstream, merchant);
    const owner = randomUUID();
    let reply: string | null;
    try {
      reply = await this.#op('withLock', [], () => this.#client.set(key, owner, 'PX', lease, 'NX'));
    } catch (err) {
      // The SET may have reached Redis and run (or run later, once a stalled Redis resumes):
      // then a lock exists that nobody believes they hold. Release it as soon as Redis answers.
      this.#releaseOrphan(key, owner);
      throw err;
    }
    if (reply !== 'OK') return { acquired: false };

    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const scheduleRenewal = (): void => {
      timer = setTimeout(() => {
        void (async () => {
          if (stopped) return;
          try {
            const renewed = await this.#eval(RENEW, [key], [owner, String(lease)]);
            this.#status(true);
            // 0: the lease ran out and someone else may hold the lock now; stop renewing.
            if (renewed !== 1) stopped = true;
          } catch {
            this.#status(false); // transient: try again next period
          }
          if (!stopped) scheduleRenewal();
        })();
      }, every);
      timer.unref();
    };
    if (every > 0) scheduleRenewal();

    const held: HeldLock = {
      confirm: async () => {
        const renewed = await this.#op('confirm lock', [], () => this.#eval(RENEW, [key], [owner, String(lease)]));
        if (renewed !== 1) {
          stopped = true;
          throw new StoreError(`redis store: the refresh lock of ${upstream} merchant ${JSON.stringify(merchant)} was lost (its lease ran out)`);
        }
      },
    };
    try {
      const value = await fn(held);
      return { acquired: true, value };
    } finally {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      try {
        await this.#eval(RELEASE, [key], [owner]);
        this.#status(true);
      } catch {
        // Unknown whether the release ran: keep trying; the lease ends it anyway.
        this.#status(false);
        this.#releaseOrphan(key, owner);
      }
    }
  }

  isLocked(upstream: string, merchant: string): Promise<boolean> {
    return this.#op('isLocked', [], async () => {
      return (await this.#client.exists(this.#keys.lock(upstream, merchant))) === 1;
    });
  }

  /**
   * Listen to `{prefix}events` on a second connection (opened on the first call). `changed`
   * is called for every put/delete by any instance, this one included. `resync` is called
   * each time the subscription becomes active: the first time and after every reconnect,
   * since changes made meanwhile were missed.
   */
  subscribe(listener: StoreListener): () => void {
    if (this.#closed) return () => {};
    this.#listeners.add(listener);
    this.#ensureSubscriber();
    return () => {
      this.#listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    for (const t of this.#orphans) clearTimeout(t);
    this.#orphans.clear();
    const sub = this.#sub;
    this.#sub = undefined;
    sub?.disconnect();
    if (this.#client.status === 'ready') {
      try {
        await this.#client.quit();
        return;
      } catch {
        // fall through
      }
    }
    this.#client.disconnect();
  }

  // ---------------------------------------------------------------------------------------

  #newClient(role: string, lazy: boolean): RedisClient {
    return createRedisClient(this.#connection, role, {
      connectTimeoutMs: this.#connectTimeoutMs,
      commandTimeoutMs: this.#commandTimeoutMs,
      lazyConnect: lazy,
    });
  }

  /**
   * Compare-and-delete `owner`'s lock in the background, every 250 ms until Redis answers
   * (either way: deleted, or not ours / not there), for at most ORPHAN_CLEANUP_MS. Commands
   * on one connection run in order, so a release sent after a stalled SET runs after it.
   */
  #releaseOrphan(key: string, owner: string): void {
    const deadline = Date.now() + ORPHAN_CLEANUP_MS;
    const attempt = (): void => {
      const timer = setTimeout(() => {
        this.#orphans.delete(timer);
        if (this.#closed) return;
        this.#eval(RELEASE, [key], [owner]).then(
          () => this.#status(true),
          () => {
            if (Date.now() < deadline) attempt();
          },
        );
      }, 250);
      timer.unref();
      this.#orphans.add(timer);
    };
    // The first try goes out at once, right behind the SET on the same connection.
    this.#eval(RELEASE, [key], [owner]).then(
      () => this.#status(true),
      () => attempt(),
    );
  }

  #status(up: boolean): void {
    if (this.#closed || this.#onStatus === undefined) return;
    try {
      this.#onStatus(up);
    } catch {
      // a hook must not break the store
    }
  }

  /** Run one store operation: StoreError (no secrets, no raw cause) on failure. */
  async #op<T>(op: string, secrets: readonly string[], run: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreError(`redis store: ${op} on ${this.#where} after close`);
    let value: T;
    try {
      value = await run();
    } catch (err) {
      if (err instanceof StoreError) throw err; // corrupt data: Redis itself answered
      this.#status(false);
      // The raw error is not attached as `cause`: ioredis errors may carry the command's
      // arguments, which include tokens.
      throw new StoreError(`redis store: ${op} failed on ${this.#where} (${describeError(err, secrets)})`);
    }
    this.#status(true);
    return value;
  }

  async #eval(script: LuaScript, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await this.#client.evalsha(script.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return await this.#client.eval(script.source, keys.length, ...keys, ...args);
    }
  }

  /** What is stored under (upstream, merchant), opened; no side effect. */
  #open(json: string, upstream: string, merchant: string): OpenedRecord {
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      return { ok: false, reason: 'malformed: not valid JSON' };
    }
    return openRecord(this.#ring, value, upstream, merchant);
  }

  /**
   * The usable record stored as `json`, noted in the ledger; UnusableRecordError (noted too)
   * when it cannot be used. A plaintext record, once a key is configured, is written back
   * sealed in the background (only if it is still the same value).
   */
  #decode(json: string, upstream: string, merchant: string): TokenRecord {
    const opened = this.#open(json, upstream, merchant);
    if (!opened.ok) {
      this.#ledger?.unusable(upstream, merchant, opened.reason);
      throw new UnusableRecordError(upstream, merchant, opened.reason);
    }
    this.#ledger?.seen(upstream, merchant, opened.label);
    if (opened.migrate) this.#migrate(json, opened.record);
    return opened.record;
  }

  #migrate(json: string, record: TokenRecord): void {
    const { upstream, merchant } = record;
    const sealed = JSON.stringify(sealRecord(this.#ring, record));
    this.#eval(PUT, [this.#keys.record(upstream, merchant)], ['1', json, sealed, this.#keys.channel(), JSON.stringify({ upstream, merchant })]).then(
      (written) => {
        if (written === 1) this.#ledger?.seen(upstream, merchant, this.#ring.writer?.id ?? 'plaintext');
      },
      () => {}, // read again later, migrated then
    );
  }

  /** Resolves once `client` is ready; rejects on the first failed attempt or the timeout. */
  #waitReady(client: RedisClient): Promise<void> {
    if (client.status === 'ready') return Promise.resolve();
    if (client.status === 'end') return Promise.reject(new Error('connection closed'));
    if (client.status === 'wait') client.connect().catch(() => {}); // outcome arrives as events
    return new Promise<void>((resolve, reject) => {
      let lastError: unknown;
      const onError = (err: unknown): void => {
        lastError = err;
      };
      const onReady = (): void => {
        cleanup();
        resolve();
      };
      const onClose = (): void => {
        cleanup();
        reject(lastError ?? new Error('connection closed'));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(lastError ?? new Error(`no connection within ${this.#connectTimeoutMs} ms`));
      }, this.#connectTimeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        client.off('error', onError);
        client.off('ready', onReady);
        client.off('close', onClose);
        client.off('end', onClose);
      };
      client.on('error', onError);
      client.on('ready', onReady);
      client.on('close', onClose);
      client.on('end', onClose);
    });
  }

  #ensureSubscriber(): void {
    if (this.#sub !== undefined) return;
    const sub = this.#newClient('events', false);
    this.#sub = sub;
    sub.on('error', () => {}); // reconnects by itself; the main connection reports status
    sub.on('ready', () => {
      void this.#activate(sub);
    });
    sub.on('message', (channel: string, message: string) => {
      if (channel === this.#keys.channel()) this.#onMessage(message);
    });
  }

  /** (Re)subscribe after a (re)connection, then tell listeners to resync. */
  async #activate(sub: RedisClient): Promise<void> {
    try {
      await sub.subscribe(this.#keys.channel());
    } catch {
      return; // the connection dropped again; the next 'ready' retries
    }
    if (this.#closed || sub !== this.#sub) return;
    for (const listener of [...this.#listeners]) {
      try {
        listener.resync();
      } catch {
        // a listener's failure is its own
      }
    }
  }

  #onMessage(message: string): void {
    let upstream: unknown;
    let merchant: unknown;
    try {
      ({ upstream, merchant } = JSON.parse(message) as { upstream?: unknown; merchant?: unknown });
    } catch {
      return;
    }
    if (typeof upstream !== 'string' || typeof merchant !== 'string') return;
    for (const listener of [...this.#listeners]) {
      try {
        listener.changed(upstream, merchant);
      } catch {
        // a listener's failure is its own
      }
    }
  }
}
