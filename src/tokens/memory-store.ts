/**
 * `memory` store: a bounded in-process LRU, for tests and throwaway runs. Nothing survives a
 * restart, and the least recently used records are dropped once `max` is reached.
 *
 * Also home of the record helpers every store shares (validation and copying).
 */
import { LRUCache } from 'lru-cache';
import { LocalLockTable, pairKey, type LockResult } from './local-lock.js';
import type { HeldLock, PutResult, StoreListener, TokenRecord, TokenStore } from './types.js';

/**
 * Checks that `value` is a well-formed token record and returns a fresh deep copy holding only
 * the known fields, or a reason (naming fields only, never a value) why it is not.
 */
export function parseTokenRecord(value: unknown): TokenRecord | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return 'not an object';
  }
  const v = value as Record<string, unknown>;
  for (const field of ['upstream', 'merchant', 'accessToken'] as const) {
    if (typeof v[field] !== 'string') return `${field} must be a string`;
  }
  if (v['upstream'] === '') return 'upstream must not be empty';
  if (v['merchant'] === '') return 'merchant must not be empty';
  if (v['refreshToken'] !== undefined && typeof v['refreshToken'] !== 'string') {
    return 'refreshToken must be a string when present';
  }
  for (const field of ['issuedAt', 'expiresAt', 'refreshedAt'] as const) {
    const n = v[field];
    if (typeof n !== 'number' || !Number.isFinite(n)) return `${field} must be a finite number`;
  }
  const shopIds = v['shopIds'];
  if (!Array.isArray(shopIds) || !shopIds.every((s) => typeof s === 'string')) {
    return 'shopIds must be an array of strings';
  }
  const record: TokenRecord = {
    upstream: v['upstream'] as string,
    merchant: v['merchant'] as string,
    accessToken: v['accessToken'] as string,
    issuedAt: v['issuedAt'] as number,
    expiresAt: v['expiresAt'] as number,
    refreshedAt: v['refreshedAt'] as number,
    shopIds: [...(shopIds as string[])],
  };
  if (v['refreshToken'] !== undefined) record.refreshToken = v['refreshToken'] as string;
  if (v['revokedAt'] !== undefined) {
    if (typeof v['revokedAt'] !== 'number' || !Number.isFinite(v['revokedAt'])) return 'revokedAt must be a finite number when present';
    record.revokedAt = v['revokedAt'];
  }
  if (v['refreshUnknownAt'] !== undefined) {
    if (typeof v['refreshUnknownAt'] !== 'number' || !Number.isFinite(v['refreshUnknownAt'])) return 'refreshUnknownAt must be a finite number when present';
    record.refreshUnknownAt = v['refreshUnknownAt'];
  }
  return record;
}

/** A validated deep copy of a record handed to `put`; a TypeError (no values) when malformed. */
export function copyRecordIn(record: TokenRecord): TokenRecord {
  const parsed = parseTokenRecord(record);
  if (typeof parsed === 'string') throw new TypeError(`put: invalid token record: ${parsed}`);
  return parsed;
}

/** A deep copy of a stored record, so callers cannot mutate stored state. */
export function cloneRecord(record: TokenRecord): TokenRecord {
  const copy: TokenRecord = { ...record, shopIds: [...record.shopIds] };
  return copy;
}

/** Records in a stable order: by upstream, then merchant. */
export function sortRecords(records: TokenRecord[]): TokenRecord[] {
  return records.sort((a, b) =>
    a.upstream === b.upstream
      ? a.merchant < b.merchant
        ? -1
        : a.merchant > b.merchant
          ? 1
          : 0
      : a.upstream < b.upstream
        ? -1
        : 1,
  );
}

export interface MemoryStoreOptions {
  /** Most records kept; the least recently used are dropped beyond it. Default 100_000. */
  max?: number;
  /** Lease renewal period while a lock holder runs; default lease/3; 0 = never renew. */
  lockRenewEveryMs?: number;
  /** Called with true after each successful operation (drives `countersign_store_up`). */
  onStatus?: (up: boolean) => void;
}

export class MemoryStore implements TokenStore {
  readonly kind = 'memory' as const;
  readonly #records: LRUCache<string, TokenRecord>;
  readonly #locks: LocalLockTable;
  readonly #onStatus: ((up: boolean) => void) | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    const max = options.max ?? 100_000;
    if (!Number.isInteger(max) || max <= 0) throw new TypeError('memory store: max must be a positive integer');
    this.#records = new LRUCache<string, TokenRecord>({ max });
    this.#locks = new LocalLockTable(
      options.lockRenewEveryMs === undefined ? {} : { renewEveryMs: options.lockRenewEveryMs },
    );
    this.#onStatus = options.onStatus;
  }

  async open(): Promise<void> {
    this.#up();
  }

  async get(upstream: string, merchant: string): Promise<TokenRecord | undefined> {
    const record = this.#records.get(pairKey(upstream, merchant));
    this.#up();
    return record === undefined ? undefined : cloneRecord(record);
  }

  async list(upstream?: string): Promise<TokenRecord[]> {
    const out: TokenRecord[] = [];
    for (const record of this.#records.values()) {
      if (upstream === undefined || record.upstream === upstream) out.push(cloneRecord(record));
    }
    this.#up();
    return sortRecords(out);
  }

  async put(record: TokenRecord): Promise<PutResult> {
    const incoming = copyRecordIn(record);
    const key = pairKey(incoming.upstream, incoming.merchant);
    const current = this.#records.peek(key);
    this.#up();
    if (current !== undefined && current.issuedAt > incoming.issuedAt) return 'stale';
    this.#records.set(key, incoming);
    return 'written';
  }

  async delete(upstream: string, merchant: string): Promise<void> {
    this.#records.delete(pairKey(upstream, merchant));
    this.#up();
  }

  withLock<T>(
    upstream: string,
    merchant: string,
    leaseMs: number,
    fn: (lock: HeldLock) => Promise<T>,
  ): Promise<LockResult<T>> {
    return this.#locks.withLock(pairKey(upstream, merchant), leaseMs, fn);
  }

  async isLocked(upstream: string, merchant: string): Promise<boolean> {
    return this.#locks.isLocked(pairKey(upstream, merchant));
  }

  /** Single process: nothing changes behind our back, so there is nothing to report. */
  subscribe(_listener: StoreListener): () => void {
    return () => {};
  }

  async close(): Promise<void> {
    this.#locks.clear();
  }

  #up(): void {
    this.#onStatus?.(true);
  }
}
