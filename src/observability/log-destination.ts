import { pino, type DestinationStream } from 'pino';

export interface BatchedDestination extends DestinationStream {
  /** Write out what is pending, synchronously; then `cb`. */
  flush(cb?: (err?: Error) => void): void;
}

/**
 * The log's destination: lines logged within `delayMs` (or until 16 KiB are pending) are joined
 * and written in one piece, so a busy proxy makes one write per batch instead of one per
 * access-log line. A line reaches its destination at most `delayMs` after it was logged.
 *
 * A batch is written synchronously on the event loop, through pino's own destination
 * (sonic-boom in sync mode): one short write system call per batch, as nginx writes a buffered
 * access log. No thread-pool round trip per batch (its two context switches cost more than the
 * write on a busy core), and no queue that an exit could drop: nothing is lost at shutdown or at
 * any exit, the 'exit' hook writes what is pending. Should the reader of a pipe stop reading,
 * writes wait for it (Docker's default "blocking" log delivery does the same); should it go
 * away (EPIPE), pino's destination stops logging and the proxy keeps serving.
 */
export function batchedDestination(fd = 1, delayMs = 5): BatchedDestination {
  const out = pino.destination({ dest: fd, sync: true });
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  const release = () => {
    clearTimeout(timer);
    timer = undefined;
    if (pending === '') return;
    const text = pending;
    pending = '';
    try {
      out.write(text);
    } catch {
      // The descriptor refuses the write (closed, or an error other than a broken pipe): this
      // batch is lost rather than the proxy stopping.
    }
  };
  process.once('exit', release);
  return {
    write(line: string) {
      pending += line;
      if (pending.length >= 16_384) release();
      else timer ??= setTimeout(release, delayMs);
    },
    flush(cb) {
      release();
      cb?.();
    },
  };
}
