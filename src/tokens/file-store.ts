/**
 * `file` store (the default): every record in one JSON file `{"version":1,"records":[...]}`.
 *
 * - `open()` loads the file. A missing file is an empty store (the directory is created). A
 *   file that cannot be parsed is never replaced: `open()` throws a StoreError naming the path,
 *   because it holds single-use refresh tokens that exist nowhere else.
 * - Every `put`/`delete` rewrites the whole file atomically: write a temp file in the same
 *   directory (mode 0600), fsync it, rename it over the target, fsync the directory. Writes are
 *   serialised; the in-memory state changes only once the new file is in place, so a failed
 *   write leaves both the file and what `get` returns as they were.
 * - One process at a time: the refresh lock is in-process only and nothing stops a second
 *   process from opening the same file. Run exactly one Countersign per file.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open as openFile, readdir, readFile, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { LocalLockTable, pairKey, type LockResult } from './local-lock.js';
import { Keyring } from './keyring.js';
import { cloneRecord, copyRecordIn, sortRecords } from './memory-store.js';
import type { RecordLedger } from './record-ledger.js';
import { openRecord, sealRecord } from './record-seal.js';
import { StoreError, UnusableRecordError, type HeldLock, type PutOptions, type PutResult, type StoreListener, type TokenRecord, type TokenStore } from './types.js';

export interface FileStoreOptions {
  /** The token file. Its directory is created when missing. */
  path: string;
  /** Lease renewal period while a lock holder runs; default lease/3; 0 = never renew. */
  lockRenewEveryMs?: number;
  /** Called with true after each successful load/write and false after each failed one. */
  onStatus?: (up: boolean) => void;
  /**
   * Only read the file (`countersign sign --merchant` beside a running gateway): nothing is
   * created, cleaned up or probed, and put/delete are refused.
   */
  readOnly?: boolean;
  /**
   * Seals every record written and opens every record read (record-seal.ts); none: plaintext.
   * When it changes (a config reload), records it now opens are taken into use, and the file
   * is rewritten when any record is not sealed with its first key.
   */
  keyring?: Keyring;
  /**
   * Quarantine: with a ledger, a record that cannot be used (undecryptable, malformed) is kept
   * in the file exactly as it is, noted in the ledger, refused by `get` and never overwritten
   * except by `put(…, { overUnusable: 'replace' })`. Without one, such a record makes `open()`
   * throw, as any corruption of the file does.
   */
  ledger?: RecordLedger;
}

/** A record kept verbatim because it cannot be used (quarantined). */
interface HeldRecord {
  upstream: string;
  merchant: string;
  raw: unknown;
  reason: string;
}

const FILE_VERSION = 1;

function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return err instanceof Error ? err.name : 'unknown error';
}

export class FileStore implements TokenStore {
  readonly kind = 'file' as const;
  /** Absolute path of the token file. */
  readonly path: string;
  readonly #dir: string;
  readonly #tempPrefix: string;
  readonly #locks: LocalLockTable;
  readonly #onStatus: ((up: boolean) => void) | undefined;
  readonly #readOnly: boolean;
  /** Committed state: exactly what the file on disk holds. Undefined until opened. */
  #records: Map<string, TokenRecord> | undefined;
  /** Quarantined records, written back untouched with every write. */
  #held = new Map<string, HeldRecord>();
  readonly #ring: Keyring;
  readonly #ledger: RecordLedger | undefined;
  #opening: Promise<void> | undefined;
  /** Tail of the write queue. */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: FileStoreOptions) {
    if (typeof options.path !== 'string' || options.path === '') {
      throw new TypeError('file store: path is required');
    }
    this.path = resolve(options.path);
    this.#dir = dirname(this.path);
    this.#tempPrefix = `.${basename(this.path)}.`;
    this.#locks = new LocalLockTable(
      options.lockRenewEveryMs === undefined ? {} : { renewEveryMs: options.lockRenewEveryMs },
    );
    this.#onStatus = options.onStatus;
    this.#readOnly = options.readOnly ?? false;
    this.#ring = options.keyring ?? new Keyring();
    this.#ledger = options.ledger;
    if (options.keyring) options.keyring.onChange(() => this.#keysChanged());
  }

  open(): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreError(`file store: ${this.path} is closed`));
    if (this.#records !== undefined) return Promise.resolve();
    this.#opening ??= this.#load().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async get(upstream: string, merchant: string): Promise<TokenRecord | undefined> {
    const key = pairKey(upstream, merchant);
    const held = this.#state('get') && this.#held.get(key);
    if (held) throw new UnusableRecordError(upstream, merchant, held.reason);
    const record = this.#state('get').get(key);
    return record === undefined ? undefined : cloneRecord(record);
  }

  async list(upstream?: string): Promise<TokenRecord[]> {
    const out: TokenRecord[] = [];
    for (const record of this.#state('list').values()) {
      if (upstream === undefined || record.upstream === upstream) out.push(cloneRecord(record));
    }
    return sortRecords(out);
  }

  async put(record: TokenRecord, options: PutOptions = {}): Promise<PutResult> {
    if (this.#readOnly) throw new StoreError(`file store: ${this.path} was opened read-only`);
    const incoming = copyRecordIn(record);
    const key = pairKey(incoming.upstream, incoming.merchant);
    const overUnusable = options.overUnusable ?? (this.#ledger ? 'refuse' : 'replace');
    this.#state('put');
    return this.#enqueue(async () => {
      const records = this.#committed();
      const held = this.#held.get(key);
      if (held && overUnusable === 'refuse') throw new UnusableRecordError(incoming.upstream, incoming.merchant, held.reason);
      const current = records.get(key);
      if (current !== undefined && current.issuedAt > incoming.issuedAt) return 'stale';
      const next = new Map(records);
      next.set(key, incoming);
      let nextHeld = this.#held;
      if (held) {
        nextHeld = new Map(this.#held);
        nextHeld.delete(key);
      }
      await this.#commit(next, 'put', nextHeld);
      return 'written';
    });
  }

  async delete(upstream: string, merchant: string): Promise<void> {
    if (this.#readOnly) throw new StoreError(`file store: ${this.path} was opened read-only`);
    const key = pairKey(upstream, merchant);
    this.#state('delete');
    return this.#enqueue(async () => {
      const records = this.#committed();
      if (!records.has(key) && !this.#held.has(key)) return;
      const next = new Map(records);
      next.delete(key);
      const nextHeld = new Map(this.#held);
      nextHeld.delete(key);
      await this.#commit(next, 'delete', nextHeld);
      this.#ledger?.removed(upstream, merchant);
    });
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

  /** Waits for queued writes to finish, then refuses further use. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.catch(() => {});
    this.#locks.clear();
  }

  // ---------------------------------------------------------------------------------------

  #state(op: string): Map<string, TokenRecord> {
    if (this.#closed) throw new StoreError(`file store: ${op} on ${this.path} after close`);
    if (this.#records === undefined) {
      throw new StoreError(`file store: ${op} on ${this.path} before open() completed`);
    }
    return this.#records;
  }

  #committed(): Map<string, TokenRecord> {
    if (this.#records === undefined) throw new StoreError(`file store: ${this.path} is not open`);
    return this.#records;
  }

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #load(): Promise<void> {
    let text: string | undefined;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') {
        this.#onStatus?.(false);
        throw new StoreError(`file store: cannot read ${this.path} (${errorCode(err)})`, { cause: err });
      }
    }
    let records: Map<string, TokenRecord>;
    if (this.#readOnly) {
      this.#records = text === undefined ? new Map() : this.#parse(text);
      return;
    }
    if (text === undefined) {
      try {
        await mkdir(this.#dir, { recursive: true, mode: 0o700 });
      } catch (err) {
        this.#onStatus?.(false);
        throw new StoreError(
          `file store: cannot create directory ${this.#dir} (${errorCode(err)})`,
          { cause: err },
        );
      }
      records = new Map();
      // Create the file now, so an unwritable location is found at start-up rather than
      // after a refresh has consumed a single-use refresh token.
      try {
        await this.#writeFile(records, 'open', this.#held);
      } catch (err) {
        this.#onStatus?.(false);
        throw err instanceof RenamedButNotSynced ? err.storeError : err;
      }
    } else {
      try {
        records = this.#parse(text);
      } catch (err) {
        this.#onStatus?.(false);
        throw err;
      }
      await this.#removeStaleTemps();
      await this.#probeWritable();
      if (this.#needsMigration) {
        // Encryption was turned on: seal the plaintext records now, not at the next write.
        try {
          await this.#writeFile(records, 'migrate', this.#held);
        } catch (err) {
          this.#onStatus?.(false);
          throw err instanceof RenamedButNotSynced ? err.storeError : err;
        }
        this.#needsMigration = false;
        const label = this.#ring.writer?.id ?? 'plaintext';
        for (const [key, rec] of records) {
          this.#labels.set(key, label);
          this.#ledger?.seen(rec.upstream, rec.merchant, label);
        }
      }
    }
    this.#records = records;
    this.#onStatus?.(true);
  }

  #parse(text: string): Map<string, TokenRecord> {
    // Reasons never quote the file's content: it holds tokens.
    const corrupt = (reason: string): StoreError =>
      new StoreError(
        `file store: token file ${this.path} is unreadable: ${reason}. ` +
          'The file was left untouched and nothing was written. Restore it from a backup or ' +
          'repair it by hand, then start again. Move it away only if every merchant can ' +
          're-authorize: the refresh tokens it holds are lost with it.',
      );
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw corrupt(`it is not valid JSON (${text.length} characters; truncated or corrupted?)`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      throw corrupt('expected a JSON object {"version":1,"records":[...]}');
    }
    const { version, records } = doc as { version?: unknown; records?: unknown };
    if (version !== FILE_VERSION) {
      throw corrupt(
        typeof version === 'number'
          ? `unsupported version ${version} (this Countersign reads version ${FILE_VERSION})`
          : 'the "version" field is missing',
      );
    }
    if (!Array.isArray(records)) throw corrupt('"records" is not an array');
    const map = new Map<string, TokenRecord>();
    const held = new Map<string, HeldRecord>();
    const labels = new Map<string, string>();
    let migrate = false;
    records.forEach((item: unknown, i: number) => {
      const named = item as { upstream?: unknown; merchant?: unknown } | null;
      const upstream = typeof named === 'object' && named !== null && typeof named.upstream === 'string' ? named.upstream : undefined;
      const merchant = typeof named === 'object' && named !== null && typeof named.merchant === 'string' ? named.merchant : undefined;
      const opened = openRecord(this.#ring, item, upstream ?? '', merchant ?? '');
      if (!opened.ok) {
        // Quarantine needs a merchant to refuse; a record naming none is corruption of the file.
        if (this.#ledger === undefined || !upstream || !merchant) throw corrupt(`records[${i}]: ${opened.reason}`);
        const key = pairKey(upstream, merchant);
        if (!map.has(key)) held.set(key, { upstream, merchant, raw: item, reason: opened.reason });
        return;
      }
      const record = opened.record;
      const key = pairKey(record.upstream, record.merchant);
      held.delete(key);
      const seen = map.get(key);
      if (seen === undefined || seen.issuedAt <= record.issuedAt) {
        map.set(key, record);
        labels.set(key, opened.label);
      }
      migrate ||= opened.migrate;
    });
    this.#held = held;
    for (const h of held.values()) this.#ledger?.unusable(h.upstream, h.merchant, h.reason);
    for (const [key, rec] of map) this.#ledger?.seen(rec.upstream, rec.merchant, labels.get(key) ?? 'plaintext');
    this.#labels = labels;
    this.#needsMigration = migrate;
    return map;
  }

  /** The label (key id or 'plaintext') of each usable record as the file holds it. */
  #labels = new Map<string, string>();
  /** The file held plaintext records when it was read and a key is configured. */
  #needsMigration = false;

  /**
   * After a keyring change: take into use the quarantined records a key now opens, and rewrite
   * the file if any record is not sealed with the first key (a key added first, encryption
   * turned on). Single process per file: no other writer can be holding an older view.
   */
  #keysChanged(): void {
    if (this.#records === undefined || this.#closed || this.#readOnly) return;
    void this.#enqueue(async () => {
      const records = this.#committed();
      let next = records;
      let nextHeld = this.#held;
      for (const [key, h] of this.#held) {
        const opened = openRecord(this.#ring, h.raw, h.upstream, h.merchant);
        if (!opened.ok) continue;
        if (next === records) next = new Map(records);
        if (nextHeld === this.#held) nextHeld = new Map(this.#held);
        next.set(key, opened.record);
        nextHeld.delete(key);
        this.#labels.set(key, opened.label);
      }
      const writer = this.#ring.writer?.id ?? 'plaintext';
      const stale = [...next.keys()].some((k) => this.#labels.get(k) !== writer);
      if (!stale && next === records) return;
      if (stale) {
        await this.#commit(next, 'reseal', nextHeld);
      } else {
        this.#records = next;
        this.#held = nextHeld;
        for (const [key, rec] of next) this.#ledger?.seen(rec.upstream, rec.merchant, this.#labels.get(key) ?? 'plaintext');
      }
    }).catch(() => {
      // reported through onStatus; the next write tries again
    });
  }

  /** Temp files left by a process killed mid-write. Only ever ours: one process per file. */
  async #removeStaleTemps(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch {
      return;
    }
    await Promise.all(
      names
        .filter((n) => n.startsWith(this.#tempPrefix) && n.endsWith('.tmp'))
        .map((n) => rm(join(this.#dir, n), { force: true }).catch(() => {})),
    );
  }

  /** Create, fsync and remove a temp file: the directory must be writable for any put. */
  async #probeWritable(): Promise<void> {
    const probe = this.#tempName();
    let handle: FileHandle | undefined;
    try {
      handle = await openFile(probe, 'wx', 0o600);
      await handle.sync();
    } catch (err) {
      this.#onStatus?.(false);
      throw new StoreError(
        `file store: directory ${this.#dir} of ${this.path} is not writable (${errorCode(err)})`,
        { cause: err },
      );
    } finally {
      await handle?.close().catch(() => {});
      await rm(probe, { force: true }).catch(() => {});
    }
  }

  #tempName(): string {
    return join(this.#dir, `${this.#tempPrefix}${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  }

  /** Write `next` durably, then make it the committed state. */
  async #commit(next: Map<string, TokenRecord>, op: string, held: Map<string, HeldRecord> = this.#held): Promise<void> {
    try {
      await this.#writeFile(next, op, held);
    } catch (err) {
      if (err instanceof RenamedButNotSynced) {
        // The new file is in place (readers and a restart see it); only the directory fsync
        // failed. Keep memory equal to the file, and still report the put as not durable.
        this.#committedAs(next, held);
        this.#onStatus?.(false);
        throw err.storeError;
      }
      this.#onStatus?.(false);
      throw err;
    }
    this.#committedAs(next, held);
    this.#onStatus?.(true);
  }

  /** The file now holds `next` sealed with the first key, and `held` untouched. */
  #committedAs(next: Map<string, TokenRecord>, held: Map<string, HeldRecord>): void {
    this.#records = next;
    this.#held = held;
    const label = this.#ring.writer?.id ?? 'plaintext';
    this.#labels = new Map([...next.keys()].map((k) => [k, label]));
    for (const rec of next.values()) this.#ledger?.seen(rec.upstream, rec.merchant, label);
  }

  async #writeFile(records: Map<string, TokenRecord>, op: string, held: Map<string, HeldRecord>): Promise<void> {
    // Every record is sealed afresh with the first key; quarantined ones go back as they were.
    const entries: Array<{ upstream: string; merchant: string; value: unknown }> = [];
    for (const rec of sortRecords([...records.values()])) entries.push({ upstream: rec.upstream, merchant: rec.merchant, value: sealRecord(this.#ring, rec) });
    for (const h of held.values()) entries.push({ upstream: h.upstream, merchant: h.merchant, value: h.raw });
    entries.sort((a, b) => (a.upstream === b.upstream ? (a.merchant < b.merchant ? -1 : a.merchant > b.merchant ? 1 : 0) : a.upstream < b.upstream ? -1 : 1));
    const doc = { version: FILE_VERSION, records: entries.map((e) => e.value) };
    const data = `${JSON.stringify(doc, null, 2)}\n`;
    const temp = this.#tempName();
    let handle: FileHandle | undefined;
    try {
      handle = await openFile(temp, 'wx', 0o600);
      await handle.writeFile(data, 'utf8');
      await handle.sync();
      await handle.close();
      handle = undefined;
      await rename(temp, this.path);
    } catch (err) {
      await handle?.close().catch(() => {});
      await rm(temp, { force: true }).catch(() => {});
      throw new StoreError(`file store: ${op} could not write ${this.path} (${errorCode(err)})`, {
        cause: err,
      });
    }
    try {
      await fsyncDirectory(this.#dir);
    } catch (err) {
      throw new RenamedButNotSynced(
        new StoreError(
          `file store: ${op} wrote ${this.path} but could not fsync its directory (${errorCode(err)})`,
          { cause: err },
        ),
      );
    }
  }
}

class RenamedButNotSynced extends Error {
  constructor(readonly storeError: StoreError) {
    super(storeError.message);
  }
}

async function fsyncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await openFile(dir, 'r');
    await handle.sync();
  } catch (err) {
    // Some platforms and file systems cannot fsync a directory; nothing more can be done there.
    const code = errorCode(err);
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EPERM') throw err;
  } finally {
    await handle?.close().catch(() => {});
  }
}
