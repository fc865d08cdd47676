import { FileStore } from './file-store.js';
import type { Keyring } from './keyring.js';
import type { RecordLedger } from './record-ledger.js';
import { MemoryStore } from './memory-store.js';
import type { RedisConnectionConfig } from './redis-connection.js';
import { RedisStore } from './redis-store.js';
import type { TokenStore } from './types.js';

export type StoreConfig =
  | { type: 'memory'; maxEntries?: number }
  | { type: 'file'; path: string }
  | ({ type: 'redis'; keyPrefix?: string } & RedisConnectionConfig);

export interface StoreHooks {
  /** true after each successful store operation, false after a failed one or a lost
   *  connection: drives `countersign_store_up`. */
  onStatus?(up: boolean): void;
  /** Seals records at rest (file and redis; memory holds nothing at rest). */
  keyring?: Keyring;
  /** Quarantines unusable records instead of failing on them (file and redis). */
  ledger?: RecordLedger;
}

/** Build (not open) the store the config names. */
export function createStore(cfg: StoreConfig, hooks: StoreHooks = {}): TokenStore {
  const onStatus = hooks.onStatus === undefined ? undefined : (up: boolean) => hooks.onStatus?.(up);
  const common = onStatus === undefined ? {} : { onStatus };
  const atRest = { ...(hooks.keyring && { keyring: hooks.keyring }), ...(hooks.ledger && { ledger: hooks.ledger }) };
  switch (cfg.type) {
    case 'memory':
      return new MemoryStore({ ...common, ...(cfg.maxEntries === undefined ? {} : { max: cfg.maxEntries }) });
    case 'file':
      return new FileStore({ path: cfg.path, ...common, ...atRest });
    case 'redis':
      return new RedisStore({ ...cfg, ...common, ...atRest });
    default: {
      const unknown: never = cfg;
      throw new TypeError(`unknown store type ${JSON.stringify((unknown as { type?: unknown }).type)}`);
    }
  }
}
