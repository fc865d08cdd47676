import type { StoreEncryptionConfig } from '../config/store-encryption.js';
import { startingError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { createStore, type StoreConfig } from './create-store.js';
import { Keyring } from './keyring.js';
import { monitorStore } from './monitored-store.js';
import { RecordLedger } from './record-ledger.js';
import { registerStoreRecordsGauge } from './store-records-metric.js';
import { TokenCache } from './token-cache.js';
import { UnusableRecordError, type TokenRecord, type TokenStore } from './types.js';

export interface StoreLifecycleOptions {
  /** The store config; used to build the store unless `store` is given. */
  config: StoreConfig;
  store?: TokenStore;
  cache: TokenCache;
  metrics: Metrics;
  log: Logger;
  /** Whether records of `upstream` belong in the cache (a configured upstream). Asked each time, so it may change. */
  knows(upstream: string): boolean;
  /** Called once the store is open and the cache warm (starts the renewal schedulers). */
  onOpen?(): void;
  /** How often to retry opening an unreachable Redis at start. Default 2000. */
  retryMs?: number;
  /** `store.encryption` (file and redis). */
  encryption?: StoreEncryptionConfig | undefined;
}

/**
 * The token store's life inside one process, beside the cache it feeds: build it, report
 * whether it answers (`countersign_store_up`, the `store` field of /readyz), open it (retrying
 * a Redis that is not up yet), warm the cache, follow other replicas' changes, and resync
 * after a reconnect. One object that outlives anything rebuilt around it.
 */
export class StoreLifecycle {
  /**
   * The store every part of the app uses: each operation reports whether the store answered,
   * and until the store is open (and the cache warm) each is refused with STARTING.
   */
  readonly store: TokenStore;
  /** The keys sealing records at rest; updated in place by `updateKeys` (config reload). */
  readonly keyring: Keyring;
  /** What is known of each record at rest: its key, or why it cannot be used. */
  readonly ledger: RecordLedger;
  /** The same store without the gate: what opening, warming and following use. */
  readonly #inner: TokenStore;
  readonly #o: StoreLifecycleOptions;
  readonly #kind: TokenStore['kind'];
  #up = false;
  #opened = false;
  #closed = false;
  #unsubscribe: (() => void) | undefined;
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(options: StoreLifecycleOptions) {
    this.#o = options;
    const { metrics } = options;
    // Operations report through monitorStore; the Redis store also reports connection loss itself.
    this.keyring = new Keyring(options.encryption);
    this.ledger = new RecordLedger(options.log);
    const base =
      options.store ?? createStore(options.config, { onStatus: (up) => this.#setUp(up), keyring: this.keyring, ledger: this.ledger });
    this.#kind = base.kind;
    if (base.kind !== 'memory') registerStoreRecordsGauge(metrics.registry, base.kind, this.ledger);
    // After the file store took the new keys in (its own listener comes first): read every
    // record again, so records a new key opens are served and the ledger is current.
    this.keyring.onChange(() => {
      if (!this.#opened || this.#closed) return;
      this.#resync().catch((err: unknown) => options.log.warn({ err: (err as Error).message }, 'reading the token store after a key change failed'));
    });
    metrics.storeUp.set({ store: base.kind }, 0);
    this.#inner = monitorStore(base, (up) => this.#setUp(up));
    this.store = gateUntilOpen(this.#inner, () => this.#opened);
  }

  /** The store answered its last operation. */
  get up(): boolean {
    return this.#up;
  }

  /** The store has answered once and the cache is warm. */
  get opened(): boolean {
    return this.#opened;
  }

  /**
   * Open the store, warm the cache, subscribe to changes, then `onOpen`. A Redis that cannot
   * be reached yet is retried in the background (readiness stays "starting"); any other
   * failure (a corrupt file) is the operator's to fix and is thrown.
   */
  async start(): Promise<void> {
    try {
      await this.#openOnce();
    } catch (err) {
      if (this.store.kind !== 'redis') throw err;
      this.#o.log.warn({ store: this.store.kind, err: (err as Error).message }, 'token store unreachable at start; retrying');
      this.#scheduleRetry();
    }
  }

  /**
   * A reloaded config's `store.encryption`: the keyring changes in place when its keys or
   * policy differ (the stores follow it), and nothing happens otherwise.
   */
  updateKeys(encryption: StoreEncryptionConfig | undefined): void {
    const next = encryption?.keys ?? [];
    const same =
      (encryption?.plaintext ?? 'migrate') === this.keyring.plaintext &&
      next.length === this.keyring.ids.length &&
      next.every((k, i) => {
        const cur = this.keyring.candidates(k.id)[0];
        return this.keyring.ids[i] === k.id && cur !== undefined && k.key !== undefined && cur.key.equals(k.key);
      });
    if (same) return;
    this.keyring.update(encryption);
    this.#o.log.info({ keys: this.keyring.ids, plaintext: this.keyring.plaintext }, 'token store keys reloaded');
  }

  /** Stop retrying and following changes; the store itself is closed by `closeStore`. */
  stop(): void {
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  async closeStore(): Promise<void> {
    this.stop();
    await this.#inner.close();
  }

  #setUp(up: boolean): void {
    if (up !== this.#up) {
      this.#o.log[up ? 'info' : 'warn']({ store: this.#o.config.type }, up ? 'token store reachable' : 'token store unreachable');
    }
    this.#up = up;
    this.#o.metrics.storeUp.set({ store: this.#kind }, up ? 1 : 0);
  }

  #scheduleRetry(): void {
    if (this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#openOnce().catch(() => this.#scheduleRetry());
    }, this.#o.retryMs ?? 2000);
    this.#retryTimer.unref();
  }

  async #openOnce(): Promise<void> {
    const { store, cache, log } = { store: this.#inner, cache: this.#o.cache, log: this.#o.log };
    await store.open();
    await this.#warm();
    if (this.#closed) return;
    this.#unsubscribe = store.subscribe({
      changed: (upstream, merchant) => {
        if (!this.#o.knows(upstream)) return;
        store.get(upstream, merchant).then(
          (rec) => (rec ? cache.set(rec) : cache.delete(upstream, merchant)),
          (err: unknown) => {
            // Quarantined: this merchant is refused from now on, in this replica too.
            if (err instanceof UnusableRecordError) cache.delete(upstream, merchant);
          },
        );
      },
      resync: () => {
        this.#resync().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'resync with the token store failed'));
      },
    });
    this.#opened = true;
    this.#o.onOpen?.();
    log.info({ store: store.kind, tokens: cache.size }, 'token store open');
  }

  async #warm(): Promise<void> {
    for (const rec of await this.#inner.list()) if (this.#o.knows(rec.upstream)) this.#o.cache.set(rec);
  }

  /**
   * After a reconnect: take every change missed meanwhile, and write back any pair this process
   * holds that is newer than the store's (a Redis that came back from an older snapshot), so
   * the newest refresh token survives this process. A merchant deleted elsewhere while this
   * replica was cut off may come back; deleting it again is safer than losing a token.
   */
  async #resync(): Promise<void> {
    const { store, cache, log } = { store: this.#inner, cache: this.#o.cache, log: this.#o.log };
    const stored = new Map<string, TokenRecord>();
    for (const rec of await store.list()) {
      if (!this.#o.knows(rec.upstream)) continue;
      stored.set(TokenCache.key(rec.upstream, rec.merchant), rec);
      cache.set(rec);
    }
    for (const rec of [...cache.records()]) {
      if (this.ledger.isUnusable(rec.upstream, rec.merchant)) {
        // The store holds an unusable record for it: refused, and never overwritten.
        cache.delete(rec.upstream, rec.merchant);
        continue;
      }
      const s = stored.get(TokenCache.key(rec.upstream, rec.merchant));
      if (!s || s.issuedAt < rec.issuedAt) {
        try {
          await store.put(rec);
        } catch (err) {
          if (!(err instanceof UnusableRecordError)) throw err;
          cache.delete(rec.upstream, rec.merchant);
          continue;
        }
        log.warn({ upstream: rec.upstream, merchant: rec.merchant }, 'the store had lost a newer pair held by this instance; it was written back');
      }
    }
  }
}

/** `store`, refusing every operation with STARTING until `open()` says it is open. */
function gateUntilOpen(store: TokenStore, open: () => boolean): TokenStore {
  const gate = <T>(op: () => Promise<T>): Promise<T> => (open() ? op() : Promise.reject(startingError()));
  return {
    kind: store.kind,
    open: () => store.open(),
    get: (u, m) => gate(() => store.get(u, m)),
    list: (u) => gate(() => store.list(u)),
    put: (r, o) => gate(() => store.put(r, o)),
    delete: (u, m) => gate(() => store.delete(u, m)),
    withLock: (u, m, lease, fn) => gate(() => store.withLock(u, m, lease, fn)),
    isLocked: (u, m) => gate(() => store.isLocked(u, m)),
    subscribe: (l) => store.subscribe(l),
    close: () => store.close(),
  };
}
