import { Gauge, type Registry } from 'prom-client';
import type { RecordLedger } from './record-ledger.js';

/**
 * `countersign_store_records{store, encryption}`: the records this process has read or written,
 * by the key that seals them (its id), `plaintext` or `undecryptable`. Counted from the ledger
 * at each scrape; no label ever carries a token or a merchant id.
 */
export function registerStoreRecordsGauge(registry: Registry, store: string, ledger: RecordLedger): void {
  if (registry.getSingleMetric('countersign_store_records')) return;
  new Gauge({
    name: 'countersign_store_records',
    help: 'Token records in the store, by encryption: a key id, plaintext or undecryptable.',
    labelNames: ['store', 'encryption'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.set({ store, encryption: 'undecryptable' }, 0);
      for (const [encryption, n] of ledger.counts()) this.set({ store, encryption }, n);
    },
  });
}
