import { MemoryStore } from '../../src/tokens/memory-store.js';
import { StoreError, type TokenStore } from '../../src/tokens/types.js';

/** A memory store that records the name of every method called on it: to prove what does no store I/O. */
export function countingStore(): { store: TokenStore; calls: string[] } {
  const inner = new MemoryStore();
  const calls: string[] = [];
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store, calls };
}

/** A memory store whose `method` throws StoreError for the next `failNext(n)` calls: a store outage on demand. */
export function failingStore(method: 'put' | 'withLock'): { store: TokenStore; inner: MemoryStore; failNext(n: number): void } {
  const inner = new MemoryStore();
  let failures = 0;
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (prop === method && failures > 0) {
          failures--;
          return Promise.reject(new StoreError(`simulated ${method} failure`));
        }
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store, inner, failNext: (n) => void (failures = n) };
}
