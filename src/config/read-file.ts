import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * Reading the config file and `<key>File` secrets without ever hanging on them. A FIFO (or a
 * device) blocks a plain read until something writes to it, and a file on a stalled network
 * mount blocks until the mount answers: during a reload that would stop health, proxy and
 * ingress alike. So a file is opened non-blocking, refused unless it is a regular file, and,
 * on reload, read asynchronously with a time bound (the read that hangs occupies a libuv
 * worker, never the event loop, and is abandoned when the bound passes).
 */

/** The file is not a regular file; `code` ENOTREG. */
export class NotRegularFileError extends Error {
  readonly code = 'ENOTREG';
  constructor(readonly file: string, readonly kind: string) {
    super(`${file} is not a regular file (it is a ${kind})`);
  }
}

/** The file could not be read within the bound; `code` ETIMEDOUT. */
export class FileReadTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(readonly file: string, readonly ms: number) {
    super(`${file} could not be read within ${ms} ms`);
  }
}

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

function kindOf(st: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'device';
  return 'special file';
}

/** Synchronous, for start-up: a FIFO or device is refused instead of blocking. */
export function readRegularFileSync(file: string): string {
  const fd = openSync(file, OPEN_FLAGS);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new NotRegularFileError(file, kindOf(st));
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Asynchronous and bounded, for reloads: rejects with FileReadTimeoutError after `timeoutMs`. */
export function readRegularFile(file: string, timeoutMs: number): Promise<string> {
  let handle: FileHandle | undefined;
  let abandoned = false;
  const read = (async () => {
    const fh = await open(file, OPEN_FLAGS);
    if (abandoned) {
      void fh.close().catch(() => {});
      throw new FileReadTimeoutError(file, timeoutMs);
    }
    handle = fh;
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new NotRegularFileError(file, kindOf(st));
      return await fh.readFile('utf8');
    } finally {
      handle = undefined;
      void fh.close().catch(() => {});
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abandoned = true;
      void handle?.close().catch(() => {});
      reject(new FileReadTimeoutError(file, timeoutMs));
    }, timeoutMs);
  });
  read.catch(() => {});
  return Promise.race([read, late]).finally(() => clearTimeout(timer));
}

/** Why a file could not be read, in parentheses, for a config problem line (never its content). */
export function readFailure(err: unknown): string {
  if (err instanceof NotRegularFileError) return `(not a regular file: it is a ${err.kind}; give a regular file)`;
  if (err instanceof FileReadTimeoutError) return `(no answer within ${err.ms} ms: a stalled mount?)`;
  return `(${(err as NodeJS.ErrnoException).code ?? 'error'})`;
}
