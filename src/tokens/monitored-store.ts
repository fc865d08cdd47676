import { UnusableRecordError, type HeldLock, type PutOptions, type StoreListener, type TokenRecord, type TokenStore } from './types.js';

/**
 * Wraps any store and reports after every operation whether it succeeded: the source of
 * `countersign_store_up` and of the `store` field of /readyz, the same for every store type.
 */
export function monitorStore(store: TokenStore, onStatus: (up: boolean) => void): TokenStore {
  const track = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      const v = await op();
      onStatus(true);
      return v;
    } catch (err) {
      // An unusable record is the store answering: one merchant is refused, the store is up.
      onStatus(err instanceof UnusableRecordError);
      throw err;
    }
  };
  return {
    kind: store.kind,
    open: () => track(() => store.open()),
    get: (u, m) => track(() => store.get(u, m)),
    list: (u) => track(() => store.list(u)),
    put: (r: TokenRecord, options?: PutOptions) => track(() => store.put(r, options)),
    delete: (u, m) => track(() => store.delete(u, m)),
    // The lock's own I/O is tracked; fn's outcome is the caller's business, not the store's.
    withLock: async (u, m, lease, fn) => {
      let fnFailed = false;
      let fnError: unknown;
      const wrapped = async (lock: HeldLock) => {
        const tracked: HeldLock = { confirm: () => track(() => lock.confirm()) };
        try {
          return await fn(tracked);
        } catch (err) {
          fnFailed = true;
          fnError = err;
          throw err;
        }
      };
      try {
        const v = await store.withLock(u, m, lease, wrapped);
        onStatus(true);
        return v;
      } catch (err) {
        if (!fnFailed || err !== fnError) onStatus(false);
        throw err;
      }
    },
    isLocked: (u, m) => track(() => store.isLocked(u, m)),
    subscribe: (l: StoreListener) => store.subscribe(l),
    close: () => store.close(),
  };
}
