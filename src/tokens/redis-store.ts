/**
 * `redis` store: shared by every replica.
 *
 * Key layout (names are URI-encoded inside keys, so ':' in a name is unambiguous):
 *   {prefix}token:{upstream}:{merchant}  string, the JSON record
 *   {prefix}index:{upstream}             set of the upstream's merchant names
 *   {prefix}upstreams                    set of upstream names that have records
 *   {prefix}lock:{upstream}:{merchant}   refresh lock: random owner id, PX lease
 *   {prefix}events                       pub/sub channel, messages {"upstream","merchant"}
 *
 * `put` and `delete` are Lua scripts: the newer-wins check, the write, the index update and
 * the change notification happen atomically (a crash between write and publish cannot lose
 * a notification). Locks: SET NX PX, renewed by compare-and-pexpire while the holder runs,
 * released by compare-and-del (never someone else's lock).
 *
 * Failure behaviour: no offline queue and no command retries, so when Redis is down every
 * operation fails at once with a StoreError; the connection keeps reconnecting in the
 * background (capped backoff) and the store works again as soon as Redis is back.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { checkLease, renewInterval, type LockResult } from './local-lock.js';
import { copyRecordIn, parseTokenRecord, sortRecords } from './memory-store.js';
import { StoreError, type PutResult, type StoreListener, type TokenRecord, type TokenStore } from './types.js';

export interface RedisStoreOptions {
  /** e.g. redis://127.0.0.1:6379/0 (rediss:// for TLS). */
  url: string;
  /** Prefix of every key and of the channel. Default 'countersign:'. */
  keyPrefix?: string;
  /** Lease renewal period while a lock holder runs; default lease/3; 0 = never renew. */
  lockRenewEveryMs?: number;
  /** Budget of `open()` and of one connection attempt. Default 2000. */
  connectTimeoutMs?: number;
  /** A command without a reply within this fails. Default 2000. */
  commandTimeoutMs?: number;
  /** Called with true after each successful operation (and on reconnect), false after each
   *  failed one and on connection loss. Drives `countersign_store_up`. */
  onStatus?: (up: boolean) => void;
}

class LuaScript {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }
}

/**
 * KEYS: record, index, upstreams. ARGV: json, issuedAt, merchant, upstream, channel, message.
 * Writes unless the stored record has a strictly greater issuedAt. Returns 1 written, 0 stale.
 */
const PUT = new LuaScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, obj = pcall(cjson.decode, cur)
  if ok and type(obj) == 'table' then
    local stored = tonumber(obj['issuedAt'])
    if stored and stored > tonumber(ARGV[2]) then
      return 0
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
`);

/** KEYS: record, index, upstreams. ARGV: merchant, upstream, channel, message. */
const DELETE = new LuaScript(`
local n = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[3], ARGV[2])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
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

const MGET_CHUNK = 500;

/** host:port/db of a Redis URL, without credentials. */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    const db = u.pathname && u.pathname !== '/' ? u.pathname : '';
    return `${u.hostname}:${u.port || '6379'}${db}`;
  } catch {
    return '(unparseable url)';
  }
}

/** An error's message, with any of `secrets` blanked out and its length bounded. */
function describeError(err: unknown, secrets: readonly string[]): string {
  let message = err instanceof Error ? err.message : String(err);
  for (const s of secrets) if (s !== '') message = message.split(s).join('[redacted]');
  return message.length > 300 ? `${message.slice(0, 300)}...` : message;
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

export class RedisStore implements TokenStore {
  readonly kind = 'redis' as const;
  readonly keyPrefix: string;
  readonly #url: string;
  readonly #where: string;
  readonly #client: Redis;
  readonly #options: RedisOptions;
  readonly #renewEveryMs: number | undefined;
  readonly #connectTimeoutMs: number;
  readonly #onStatus: ((up: boolean) => void) | undefined;
  readonly #listeners = new Set<StoreListener>();
  #sub: Redis | undefined;
  #closed = false;

  constructor(options: RedisStoreOptions) {
    if (typeof options.url !== 'string' || options.url === '') {
      throw new TypeError('redis store: url is required');
    }
    this.#url = options.url;
    this.#where = describeUrl(options.url);
    this.keyPrefix = options.keyPrefix ?? 'countersign:';
    if (options.lockRenewEveryMs !== undefined) renewInterval(1, options.lockRenewEveryMs);
    this.#renewEveryMs = options.lockRenewEveryMs;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 2000;
    this.#onStatus = options.onStatus;
    this.#options = {
      lazyConnect: true,
      // Fail fast: a command issued while disconnected is rejected at once, and a command in
      // flight when the connection drops is rejected, never silently re-sent later.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      autoResubscribe: false,
      connectTimeout: this.#connectTimeoutMs,
      commandTimeout: options.commandTimeoutMs ?? 2000,
      // Keep reconnecting in the background forever: 100 ms, 200 ms, ... capped at 2 s.
      retryStrategy: (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 6), 2000),
    };
    this.#client = new Redis(this.#url, this.#options);
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
      const json = await this.#client.get(this.#recordKey(upstream, merchant));
      return json === null ? undefined : this.#parse(json, upstream, merchant);
    });
  }

  list(upstream?: string): Promise<TokenRecord[]> {
    return this.#op('list', [], async () => {
      const upstreams =
        upstream === undefined ? await this.#client.smembers(this.#upstreamsKey()) : [upstream];
      const out: TokenRecord[] = [];
      for (const u of upstreams) {
        const merchants = await this.#client.smembers(this.#indexKey(u));
        for (let i = 0; i < merchants.length; i += MGET_CHUNK) {
          const chunk = merchants.slice(i, i + MGET_CHUNK);
          const values = await this.#client.mget(...chunk.map((m) => this.#recordKey(u, m)));
          values.forEach((json, j) => {
            // null: deleted between SMEMBERS and MGET.
            if (json !== null) out.push(this.#parse(json, u, chunk[j] ?? ''));
          });
        }
      }
      return sortRecords(out);
    });
  }

  async put(record: TokenRecord): Promise<PutResult> {
    const r = copyRecordIn(record);
    const secrets = [r.accessToken, r.refreshToken ?? ''];
    return this.#op('put', secrets, async () => {
      const result = await this.#eval(
        PUT,
        [this.#recordKey(r.upstream, r.merchant), this.#indexKey(r.upstream), this.#upstreamsKey()],
        [
          JSON.stringify(r),
          String(r.issuedAt),
          r.merchant,
          r.upstream,
          this.#channel(),
          JSON.stringify({ upstream: r.upstream, merchant: r.merchant }),
        ],
      );
      return result === 1 ? 'written' : 'stale';
    });
  }

  delete(upstream: string, merchant: string): Promise<void> {
    return this.#op('delete', [], async () => {
      await this.#eval(
        DELETE,
        [this.#recordKey(upstream, merchant), this.#indexKey(upstream), this.#upstreamsKey()],
        [merchant, upstream, this.#channel(), JSON.stringify({ upstream, merchant })],
      );
    });
  }

  async withLock<T>(
    upstream: string,
    merchant: string,
    leaseMs: number,
    fn: () => Promise<T>,
  ): Promise<LockResult<T>> {
    const lease = checkLease(leaseMs);
    const every = renewInterval(lease, this.#renewEveryMs);
    const key = this.#lockKey(upstream, merchant);
    const owner = randomUUID();
    const reply = await this.#op('withLock', [], () =>
      this.#client.set(key, owner, 'PX', lease, 'NX'),
    );
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

    try {
      const value = await fn();
      return { acquired: true, value };
    } finally {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      try {
        await this.#eval(RELEASE, [key], [owner]);
        this.#status(true);
      } catch {
        // Redis unreachable: the lease releases the lock when it runs out.
        this.#status(false);
      }
    }
  }

  isLocked(upstream: string, merchant: string): Promise<boolean> {
    return this.#op('isLocked', [], async () => {
      return (await this.#client.exists(this.#lockKey(upstream, merchant))) === 1;
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

  #recordKey(upstream: string, merchant: string): string {
    return `${this.keyPrefix}token:${encodeURIComponent(upstream)}:${encodeURIComponent(merchant)}`;
  }

  #indexKey(upstream: string): string {
    return `${this.keyPrefix}index:${encodeURIComponent(upstream)}`;
  }

  #upstreamsKey(): string {
    return `${this.keyPrefix}upstreams`;
  }

  #lockKey(upstream: string, merchant: string): string {
    return `${this.keyPrefix}lock:${encodeURIComponent(upstream)}:${encodeURIComponent(merchant)}`;
  }

  #channel(): string {
    return `${this.keyPrefix}events`;
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

  #parse(json: string, upstream: string, merchant: string): TokenRecord {
    const where = `redis store: record of upstream ${JSON.stringify(upstream)} merchant ${JSON.stringify(merchant)}`;
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      throw new StoreError(`${where} is not valid JSON`);
    }
    const record = parseTokenRecord(value);
    if (typeof record === 'string') throw new StoreError(`${where} is invalid: ${record}`);
    if (record.upstream !== upstream || record.merchant !== merchant) {
      throw new StoreError(`${where} names another upstream or merchant`);
    }
    return record;
  }

  /** Resolves once `client` is ready; rejects on the first failed attempt or the timeout. */
  #waitReady(client: Redis): Promise<void> {
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
    const sub = new Redis(this.#url, { ...this.#options, lazyConnect: false });
    this.#sub = sub;
    sub.on('error', () => {}); // reconnects by itself; the main connection reports status
    sub.on('ready', () => {
      void this.#activate(sub);
    });
    sub.on('message', (channel: string, message: string) => {
      if (channel === this.#channel()) this.#onMessage(message);
    });
  }

  /** (Re)subscribe after a (re)connection, then tell listeners to resync. */
  async #activate(sub: Redis): Promise<void> {
    try {
      await sub.subscribe(this.#channel());
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
