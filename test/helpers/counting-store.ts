import { MemoryStore } from '../../src/tokens/memory-store.js';
import type { TokenStore } from '../../src/tokens/types.js';

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
