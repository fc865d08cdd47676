import { pino, type DestinationStream } from 'pino';

export interface BatchedDestination extends DestinationStream {
  /** Hand over what is pending and write everything out synchronously; then `cb`. */
  flush(cb?: (err?: Error) => void): void;
}

/**
 * The log's destination: lines logged within `delayMs` (or until 16 KiB are pending) are joined
 * and handed in one piece to pino's asynchronous writer (sonic-boom), so a busy proxy makes one
 * write syscall per batch instead of one per access-log line, and a request never waits on a
 * write. A line reaches the file at most `delayMs` after it was logged. Nothing is lost at exit:
 * the pending text is written synchronously on `flush()` and on the process's 'exit'.
 */
export function batchedDestination(fd = 1, delayMs = 5): BatchedDestination {
  const out = pino.destination({ dest: fd, sync: false });
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  const release = () => {
    clearTimeout(timer);
    timer = undefined;
    if (pending === '') return;
    const text = pending;
    pending = '';
    out.write(text);
  };
  const writeOutNow = () => {
    release();
    try {
      out.flushSync();
    } catch {
      // Nothing left to write, or the descriptor is gone: nothing more can be done.
    }
  };
  process.once('exit', writeOutNow);
  return {
    write(line: string) {
      pending += line;
      if (pending.length >= 16_384) release();
      else timer ??= setTimeout(release, delayMs);
    },
    flush(cb) {
      writeOutNow();
      cb?.();
    },
  };
}
