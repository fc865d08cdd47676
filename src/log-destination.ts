import { writeSync } from 'node:fs';
import type { DestinationStream } from 'pino';

export interface BatchedDestination extends DestinationStream {
  /** Hand over what is pending; `cb` once it has been written out. */
  flush(cb?: (err?: Error) => void): void;
}

/**
 * The log's destination: lines logged within `delayMs` (or until 16 KiB are pending) are joined
 * and written in one piece, so a busy proxy makes one write per batch instead of one per
 * access-log line. A line reaches its destination at most `delayMs` after it was logged.
 *
 * Standard output is written through Node's own stream for it (`process.stdout`), which picks
 * the right kind of write for what fd 1 is: a pipe (a container's stdout, read by the runtime)
 * is written without blocking and without the thread pool, and a slow reader only queues the
 * text in memory; a file (or /dev/null) is written synchronously, one short write per batch,
 * as nginx writes its buffered access log. Any other descriptor is written synchronously.
 *
 * Nothing is lost at shutdown: `flush()` hands over what is pending and calls back once it is
 * written (the server awaits it); an 'exit' hook writes whatever is still pending synchronously.
 */
export function batchedDestination(fd = 1, delayMs = 5): BatchedDestination {
  const stream = fd === 1 ? process.stdout : undefined;
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  const take = () => {
    clearTimeout(timer);
    timer = undefined;
    const text = pending;
    pending = '';
    return text;
  };
  const release = () => {
    const text = take();
    if (text === '') return;
    if (stream) {
      stream.write(text);
      return;
    }
    try {
      writeAllSync(fd, text);
    } catch {
      // A descriptor that refuses the write (closed, non-blocking and full) loses this batch
      // rather than stopping the proxy.
    }
  };
  process.once('exit', () => {
    const text = take();
    if (text === '') return;
    try {
      writeAllSync(fd, text);
    } catch {
      // The descriptor is gone: nothing more can be done.
    }
  });
  return {
    write(line: string) {
      pending += line;
      if (pending.length >= 16_384) release();
      else timer ??= setTimeout(release, delayMs);
    },
    flush(cb) {
      const text = take();
      if (stream) {
        // Called back once this text, and everything handed over before it, is written.
        stream.write(text, (err) => cb?.(err ?? undefined));
        return;
      }
      try {
        if (text !== '') writeAllSync(fd, text);
        cb?.();
      } catch (err) {
        cb?.(err as Error);
      }
    },
  };
}

function writeAllSync(fd: number, text: string): void {
  let buf = Buffer.from(text, 'utf8');
  while (buf.length > 0) buf = buf.subarray(writeSync(fd, buf));
}
