import type { KeyObject } from 'node:crypto';
import type { StoreEncryptionConfig } from '../config/store-encryption.js';

export interface RingKey {
  readonly id: string;
  readonly key: KeyObject;
}

export type PlaintextPolicy = 'migrate' | 'refuse';

/**
 * The keys that seal token records (`store.encryption`): the first one writes, every one is
 * tried when reading. Updated in place on a config reload, so the stores built once at start
 * follow it: add a key, reload, `store rekey`, remove the old key, with no restart.
 */
export class Keyring {
  #keys: readonly RingKey[] = [];
  #byId = new Map<string, RingKey>();
  #plaintext: PlaintextPolicy = 'migrate';
  readonly #listeners = new Set<() => void>();

  constructor(config?: StoreEncryptionConfig) {
    this.update(config);
  }

  /** Take the keys of `config` (none: records are written in plaintext). */
  update(config: StoreEncryptionConfig | undefined): void {
    const keys: RingKey[] = [];
    for (const entry of config?.keys ?? []) {
      if (entry.key === undefined) throw new TypeError(`store.encryption: key "${entry.id}" was not loaded from its keyFile`);
      keys.push({ id: entry.id, key: entry.key });
    }
    this.#keys = keys;
    this.#byId = new Map(keys.map((k) => [k.id, k]));
    this.#plaintext = config?.plaintext ?? 'migrate';
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch {
        // a listener's failure is its own
      }
    }
  }

  /** Be told after every update (a config reload). Returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Whether records are sealed at all. */
  get enabled(): boolean {
    return this.#keys.length > 0;
  }

  /** The key that seals every write; undefined without encryption. */
  get writer(): RingKey | undefined {
    return this.#keys[0];
  }

  get plaintext(): PlaintextPolicy {
    return this.#plaintext;
  }

  /** The key named `id` first (when configured), then every other key: the order to try. */
  candidates(id: string | undefined): RingKey[] {
    const named = id === undefined ? undefined : this.#byId.get(id);
    return named ? [named, ...this.#keys.filter((k) => k !== named)] : [...this.#keys];
  }

  get ids(): string[] {
    return this.#keys.map((k) => k.id);
  }
}
