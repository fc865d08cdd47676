/**
 * The token store contract shared by every store (memory, file, redis) and both token
 * managers (Keeta, KeySecure).
 *
 * A record is one credential of one upstream: a Keeta merchant's access/refresh pair with its
 * shops, or a KeySecure Api-Key's Access-Token (merchant = KEYSECURE_MERCHANT). Records are
 * plain JSON-serialisable data. Secrets live only in `accessToken` and `refreshToken`; nothing
 * that logs or reports a record may print those two fields.
 */
export interface TokenRecord {
  upstream: string;
  merchant: string;
  accessToken: string;
  /** Keeta only: single-use refresh token. */
  refreshToken?: string;
  /** When the pair was issued by the upstream, Unix ms. Orders pairs: newer wins. */
  issuedAt: number;
  /** Absolute expiry, Unix ms. */
  expiresAt: number;
  /** When this pair was obtained by a refresh (or imported), Unix ms. */
  refreshedAt: number;
  /** Keeta only: shopIds served by this merchant, as exact decimal strings (int64-safe). */
  shopIds: string[];
  /** Keeta only: when the merchant revoked this authorization (webhook), Unix ms. Never renewed or used again. */
  revokedAt?: number;
  /**
   * Keeta only: when a refresh with this pair's refresh token was sent and its answer lost
   * (timeout or broken connection after sending), Unix ms. The upstream may have spent the
   * refresh token, so it is never sent again: the access token serves while valid, and the
   * merchant needs a new pair (OAuth or an import), which clears this.
   */
  refreshUnknownAt?: number;
}

/** Merchant key used for the single token of a KeySecure upstream. */
export const KEYSECURE_MERCHANT = '_';

export type StoreKind = 'memory' | 'file' | 'redis';

/** Result of a conditional write. */
export type PutResult = 'written' | 'stale';

export interface TokenStore {
  readonly kind: StoreKind;

  /** Resolves once the store answered (loads the file, pings Redis). Throws if it cannot. */
  open(): Promise<void>;

  get(upstream: string, merchant: string): Promise<TokenRecord | undefined>;

  /** Every record (of one upstream when given). Used to warm the in-process cache. */
  list(upstream?: string): Promise<TokenRecord[]>;

  /**
   * Durably write `record`. When a record with the same key and a strictly greater
   * `issuedAt` is already stored, nothing is written and 'stale' is returned: a slow writer
   * can never undo a newer refresh. Equal `issuedAt` overwrites (metadata updates such as the
   * shop list). Resolves only after the write is durable (file: fsync + rename; redis: reply).
   */
  put(record: TokenRecord, options?: PutOptions): Promise<PutResult>;

  /** Forget a record. No error when it does not exist. */
  delete(upstream: string, merchant: string): Promise<void>;

  /**
   * Run `fn` while holding the refresh lock for (upstream, merchant) across every process that
   * shares the store. The lock has a lease of `leaseMs`, renewed while `fn` runs and released
   * when it settles (only by its owner). Resolves `{ acquired: false }` at once when someone
   * else holds it. Throws StoreError when the store cannot be asked.
   */
  withLock<T>(
    upstream: string,
    merchant: string,
    leaseMs: number,
    fn: (lock: HeldLock) => Promise<T>,
  ): Promise<{ acquired: true; value: T } | { acquired: false }>;

  /** True while someone (any process) holds the lock. */
  isLocked(upstream: string, merchant: string): Promise<boolean>;

  /**
   * Be told when a record changes in another process (redis pub/sub; a no-op for memory and
   * file, which are single-process). `resync` is called after a reconnect, when changes may
   * have been missed. Returns an unsubscribe function.
   */
  subscribe(listener: StoreListener): () => void;

  close(): Promise<void>;
}

/** The lock `fn` holds inside `withLock`. */
export interface HeldLock {
  /**
   * Confirm the lock is still ours and start a full lease from now; throws StoreError when it
   * is not (the lease ran out) or the store cannot be asked. Called right before an action
   * that must not run twice (spending a single-use refresh token).
   */
  confirm(): Promise<void>;
}

export interface StoreListener {
  changed(upstream: string, merchant: string): void;
  resync(): void;
}

/** Thrown by a store when it cannot be reached or cannot write. Never carries a token. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * A record the store holds but cannot use: no configured key opens it, it is malformed, or it
 * names another upstream or merchant than the key it is stored under. Its merchant is refused
 * (TOKEN_UNAVAILABLE) until an operator imports a new pair; every other merchant is served.
 * A StoreError, so a caller that only knows StoreError still never uses the record; the store
 * itself did answer. The message names the merchant and the reason, never a value.
 */
export class UnusableRecordError extends StoreError {
  readonly unusable = true;
  constructor(
    readonly upstream: string,
    readonly merchant: string,
    readonly reason: string,
  ) {
    super(`the token record of ${upstream} merchant ${JSON.stringify(merchant)} cannot be used: ${reason}`);
  }
}

/** Options of `put`. */
export interface PutOptions {
  /**
   * What to do when the stored record is unusable (UnusableRecordError). A store that
   * quarantines (one built with a RecordLedger) refuses by default: only an operator's import
   * passes 'replace'. A store built without one replaces it, as it always did.
   */
  overUnusable?: 'refuse' | 'replace';
}
