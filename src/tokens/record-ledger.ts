import type { Logger } from '../observability/logger.js';

export interface UnusableRecord {
  upstream: string;
  merchant: string;
  reason: string;
}

/** The `encryption` label of a record that cannot be used. */
export const UNDECRYPTABLE = 'undecryptable';

/**
 * What this process knows of the at-rest state of every record it has read or written: the
 * key that seals it ('plaintext' when none), or `undecryptable` with the reason it cannot be
 * used (quarantined). Fed by the file and Redis stores; read by /admin/tokens, the
 * `countersign_store_records` metric and `store rekey`. Holds no token.
 *
 * A record entering quarantine is logged once (error, with its merchant id); it leaves
 * quarantine when a usable record is read or written under its key (an operator's import).
 */
export class RecordLedger {
  readonly #labels = new Map<string, { upstream: string; merchant: string; label: string }>();
  readonly #unusable = new Map<string, UnusableRecord>();
  readonly #log: Logger | undefined;

  constructor(log?: Logger) {
    this.#log = log;
  }

  seen(upstream: string, merchant: string, label: string): void {
    const key = `${upstream}\u0000${merchant}`;
    this.#labels.set(key, { upstream, merchant, label });
    if (this.#unusable.delete(key)) this.#log?.info({ upstream, merchant, encryption: label }, 'token record usable again');
  }

  unusable(upstream: string, merchant: string, reason: string): void {
    const key = `${upstream}\u0000${merchant}`;
    this.#labels.set(key, { upstream, merchant, label: UNDECRYPTABLE });
    if (this.#unusable.has(key)) return;
    this.#unusable.set(key, { upstream, merchant, reason });
    this.#log?.error(
      { upstream, merchant, reason },
      'token record cannot be used: this merchant is refused until its pair is imported again; every other merchant is served',
    );
  }

  removed(upstream: string, merchant: string): void {
    const key = `${upstream}\u0000${merchant}`;
    this.#labels.delete(key);
    this.#unusable.delete(key);
  }

  label(upstream: string, merchant: string): string | undefined {
    return this.#labels.get(`${upstream}\u0000${merchant}`)?.label;
  }

  isUnusable(upstream: string, merchant: string): boolean {
    return this.#unusable.has(`${upstream}\u0000${merchant}`);
  }

  unusableRecords(upstream?: string): UnusableRecord[] {
    const out = [...this.#unusable.values()].filter((r) => upstream === undefined || r.upstream === upstream);
    return out.sort((a, b) => (a.upstream === b.upstream ? (a.merchant < b.merchant ? -1 : 1) : a.upstream < b.upstream ? -1 : 1));
  }

  /** Records by label (a key id, 'plaintext' or 'undecryptable'). */
  counts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const { label } of this.#labels.values()) out.set(label, (out.get(label) ?? 0) + 1);
    return out;
  }
}
