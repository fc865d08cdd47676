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
import { cloneRecord, copyRecordIn, parseTokenRecord, sortRecords } from './memory-store.js';
import { StoreError, type HeldLock, type PutResult, type StoreListener, type TokenRecord, type TokenStore } from './types.js';

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
    const record = this.#state('get').get(pairKey(upstream, merchant));
    return record === undefined ? undefined : cloneRecord(record);
  }

  async list(upstream?: string): Promise<TokenRecord[]> {
    const out: TokenRecord[] = [];
    for (const record of this.#state('list').values()) {
      if (upstream === undefined || record.upstream === upstream) out.push(cloneRecord(record));
    }
    return sortRecords(out);
  }

  async put(record: TokenRecord): Promise<PutResult> {
    if (this.#readOnly) throw new StoreError(`file store: ${this.path} was opened read-only`);
    const incoming = copyRecordIn(record);
    const key = pairKey(incoming.upstream, incoming.merchant);
    this.#state('put');
    return this.#enqueue(async () => {
      const records = this.#committed();
      const current = records.get(key);
      if (current !== undefined && current.issuedAt > incoming.issuedAt) return 'stale';
      const next = new Map(records);
      next.set(key, incoming);
      await this.#commit(next, 'put');
      return 'written';
    });
  }

  async delete(upstream: string, merchant: string): Promise<void> {
    if (this.#readOnly) throw new StoreError(`file store: ${this.path} was opened read-only`);
    const key = pairKey(upstream, merchant);
    this.#state('delete');
    return this.#enqueue(async () => {
      const records = this.#committed();
      if (!records.has(key)) return;
      const next = new Map(records);
      next.delete(key);
      await this.#commit(next, 'delete');
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
        await this.#writeFile(records, 'open');
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
    records.forEach((item: unknown, i: number) => {
      const record = parseTokenRecord(item);
      if (typeof record === 'string') throw corrupt(`records[${i}]: ${record}`);
      const key = pairKey(record.upstream, record.merchant);
      const seen = map.get(key);
      if (seen === undefined || seen.issuedAt <= record.issuedAt) map.set(key, record);
    });
    return map;
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
  async #commit(next: Map<string, TokenRecord>, op: string): Promise<void> {
    try {
      await this.#writeFile(next, op);
    } catch (err) {
      if (err instanceof RenamedButNotSynced) {
        // The new file is in place (readers and a restart see it); only the directory fsync
        // failed. Keep memory equal to the file, and still report the put as not durable.
        this.#records = next;
        this.#onStatus?.(false);
        throw err.storeError;
      }
      this.#onStatus?.(false);
      throw err;
    }
    this.#records = next;
    this.#onStatus?.(true);
  }

  async #writeFile(records: Map<string, TokenRecord>, op: string): Promise<void> {
    const doc = { version: FILE_VERSION, records: sortRecords([...records.values()]) };
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
